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


# --- shared linear SDEs and an NFE counter (test_sample, test_samplers, test_likelihood,
# test_processes, test_solver_objects). sdegen is imported inside the fixtures, after the
# jaxtyping hook is installed.

SDE_NAMES = ("vp", "subvp", "ve")


@pytest.fixture(params=SDE_NAMES)
def sde_name(request):
    """Parametrises a test over the three linear SDEs (keys of `sdes` / `long_sdes`)."""
    return request.param


@pytest.fixture(scope="session")
def sdes():
    """VP, sub-VP and VE with the default schedules (VE: σ_max = 20, enough for 2-D data)."""
    import sdegen

    return {"vp": sdegen.VPSDE(), "subvp": sdegen.SubVPSDE(),
            "ve": sdegen.VESDE(sigma_min=0.01, sigma_max=20.0)}


@pytest.fixture(scope="session")
def long_sdes():
    """The same SDEs run long enough that p_T equals the prior to < 1e-4 nats (likelihoods)."""
    import sdegen

    return {"vp": sdegen.VPSDE(beta_min=0.1, beta_max=40.0),
            "subvp": sdegen.SubVPSDE(beta_min=0.1, beta_max=40.0),
            "ve": sdegen.VESDE(sigma_min=0.01, sigma_max=300.0)}


@pytest.fixture
def nfe_counter():
    """`counted, calls = nfe_counter(field)`: `counted` is `field` that appends to `calls` each
    time the compiled solve evaluates it (a `jax.debug.callback`), so `len(calls)` is the NFE."""

    def make(field):
        calls = []

        def counted(x, t):
            jax.debug.callback(lambda: calls.append(1))
            return field(x, t)

        return counted, calls

    return make


@pytest.fixture
def trace_counter():
    """`traced, traces = trace_counter(field)`: `traced` is `field` with a Python side effect
    that runs only while JAX traces it, so `len(traces)` counts compilations of the solve."""

    def make(field):
        traces = []

        def traced(x, t):
            traces.append(1)
            return field(x, t)

        return traced, traces

    return make


@pytest.fixture
def local_rate():
    """`local_rate(solver, terms, s, exact)`: the observed order of `solver`'s local error,
    log2(err(2h) / err(h)), stepping from the exact solution `exact` (batched states on the fine
    grid `s` of solver times) on the grid of every point and of every second point; a method of
    order p has local error O(h^(p+1)). Multistep solvers are handed the exact history."""
    import equinox as eqx
    import jax.numpy as jnp

    def rate(solver, terms, s, exact):
        step = eqx.filter_jit(lambda st, a, b, y: solver.step(terms, a, b, y, None, st, False))

        def local_error(stride):  # the grid with every stride-th point of the fine grid
            ss, xs = s[::stride], exact[::stride]
            state = solver.init(terms, ss[0], ss[1], xs[0], None)
            mid = (len(ss) - 1) // 2
            for i in range(mid + 1):
                y1, _, _, state, _ = step(state, ss[i], ss[i + 1], xs[i])
            return float(jnp.sqrt(jnp.mean(jnp.sum((y1 - xs[mid + 1]) ** 2, axis=1))))

        return float(jnp.log2(local_error(2) / local_error(1)))

    return rate
