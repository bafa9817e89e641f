"""Toy data: the documented ideal NLLs are the entropies of the samplers as implemented."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdegen.data import IDEAL_NLL, TOY_DATASETS, checkerboard_log_prob, eight_gaussians


def test_8gaussians_entropy_is_the_published_ideal_nll():
    mix = eight_gaussians()
    x = mix.sample(jax.random.key(0), 200_000)
    entropy = -float(jnp.mean(jax.vmap(mix.log_prob)(x)))
    assert abs(entropy - IDEAL_NLL["8gaussians"]) < 0.01


def test_checkerboard_is_uniform_on_area_32():
    x = TOY_DATASETS["checkerboard"](jax.random.key(0), 100_000)
    lp = jax.vmap(checkerboard_log_prob)(x)
    assert np.all(np.asarray(lp) == pytest.approx(-IDEAL_NLL["checkerboard"]))
    # 4x4 cells of side 2 on [-4, 4]^2: 8 occupied, each with ~1/8 of the mass
    cells = np.floor(np.asarray(x) / 2.0).astype(int)
    _, counts = np.unique(cells, axis=0, return_counts=True)
    assert len(counts) == 8 and np.all(np.abs(counts / len(x) - 1 / 8) < 0.01)


@pytest.mark.parametrize("name", list(TOY_DATASETS))
def test_toy_datasets_are_seeded_and_finite(name):
    a = TOY_DATASETS[name](jax.random.key(3), 256)
    b = TOY_DATASETS[name](jax.random.key(3), 256)
    c = TOY_DATASETS[name](jax.random.key(4), 256)
    assert a.shape == (256, 2) and np.all(np.isfinite(a))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
