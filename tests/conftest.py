"""Test set-up: float64 everywhere (analytic comparisons to tight tolerances), small shapes,
and one shared analytic oracle. The jaxtyping import hook + beartype checks `sdegen`'s
annotations during tests (see `addopts` in pyproject.toml)."""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)

# JAX's persistent compilation cache, in the checkout (git-ignored), as `sdegen`'s CLI keeps one
# (`sdegen.cli.enable_compile_cache`; not imported here: sdegen must be imported after the
# jaxtyping hook is installed). Identical programs built by different tests compile once, and a
# second `make test` reuses them; CLI subprocesses of the tests share it through the variable.
_cache = os.environ.setdefault("SDEGEN_COMPILE_CACHE",
                               str(Path(__file__).resolve().parents[1] / ".cache" / "jax"))
if _cache.lower() != "off" and not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(scope="session")
def mixture():
    from sdegen.data import GaussianMixture

    return GaussianMixture([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.0, 1.0], [2.0, -2.0]],
                           [0.3, 0.5, 0.4])
