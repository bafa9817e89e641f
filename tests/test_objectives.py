"""Objectives: with common random numbers, the loss is lowest at the true score."""

import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.objectives import batch_loss, dsm_loss, ssm_loss


@pytest.mark.parametrize("objective", [dsm_loss, ssm_loss])
@pytest.mark.parametrize("weighting", ["song", "likelihood"])
def test_loss_is_minimised_by_the_true_score(mixture, objective, weighting):
    sde = sdegen.VPSDE()
    true = mixture.score(sde)
    x0 = mixture.sample(jax.random.key(0), 20_000)
    key = jax.random.key(1)

    def loss(score):
        return float(batch_loss(objective, sde, score, x0, key, t_eps=1e-3,
                                weighting=weighting))

    best = loss(true)
    for perturbed in (lambda x, t: 1.2 * true(x, t),
                      lambda x, t: true(x, t) + jnp.array([0.3, -0.2]),
                      lambda x, t: true(x + 0.1, t)):
        assert loss(perturbed) > best


def test_dsm_excess_loss_is_the_weighted_score_error(mixture):
    """E[DSM(s)] - E[DSM(s*)] = E[λ(t) ‖s - s*‖²] (Vincent 2011): check with s = s* + c."""
    sde = sdegen.VPSDE()
    true = mixture.score(sde)
    c = jnp.array([0.5, -0.25])
    x0 = mixture.sample(jax.random.key(0), 50_000)
    key = jax.random.key(2)
    base = batch_loss(dsm_loss, sde, true, x0, key, t_eps=1e-3)
    shifted = batch_loss(dsm_loss, sde, lambda x, t: true(x, t) + c, x0, key, t_eps=1e-3)
    # λ = σ(t)², t ~ U[1e-3, 1]: E[σ(t)²] by quadrature
    ts = jnp.linspace(1e-3, 1.0, 20_001)
    expected = jnp.mean(jax.vmap(sde.std)(ts) ** 2) * jnp.sum(c**2)
    assert jnp.allclose(shifted - base, expected, rtol=0.05)
