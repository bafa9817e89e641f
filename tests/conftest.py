"""Test set-up: float64 everywhere (analytic comparisons to tight tolerances), small shapes,
and one shared analytic oracle. The jaxtyping import hook + beartype checks `sdegen`'s
annotations during tests (see `addopts` in pyproject.toml)."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def mixture():
    from sdegen.data import GaussianMixture

    return GaussianMixture([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.0, 1.0], [2.0, -2.0]],
                           [0.3, 0.5, 0.4])
