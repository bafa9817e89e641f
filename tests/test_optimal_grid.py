"""`solvers.optimized_grid`: a grid fitted to one model, sampler and step count (in the spirit
of Align Your Steps / AMED) beats the Karras grid (ρ = 7) on fresh prior draws of the analytic
2-D mixture under VP, at NFE 5 and 10, and the uniform grid on rectified flow (the exact mixture
velocity) at NFE 5, against a tight Dopri8 solve (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdegen
from sdegen.solvers import optimized_grid


def _rms(x, y):
    return float(jnp.sqrt(jnp.mean(jnp.sum((x - y) ** 2, axis=1))))


@pytest.mark.parametrize("method,num_steps", [("dpm2m", 5), ("ipndm", 10)])
def test_optimized_grid_beats_karras(mixture, sdes, method, num_steps):
    sde = sdes["vp"]
    score = mixture.score(sde)
    ts = optimized_grid(sde, score, num_steps, key=jax.random.key(0), shape=(128, 2),
                        method=method, iters=80)
    assert ts.shape == (num_steps + 1,) and ts[0] == sde.T and ts[-1] == 1e-3
    assert np.all(np.diff(ts) < 0)
    x_T = sde.prior_sample(jax.random.key(7), (256, 2))  # fresh draws, not the fitted ones
    ref = sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, method="ode",
                        solver="dopri8", rtol=1e-9, atol=1e-9, t_eps=1e-3)
    ours, stats = sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, method=method,
                                ts=ts, return_stats=True)
    karras = sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, method=method,
                           num_steps=num_steps, t_eps=1e-3)
    assert stats.nfe == num_steps
    assert _rms(ours, ref) < 0.8 * _rms(karras, ref), (_rms(ours, ref), _rms(karras, ref))


def test_optimized_grid_beats_uniform_on_rectified_flow(mixture):
    """A pure-noise prior (r(T) = ∞): the grid is fitted in t from the uniform one, with the
    exact first step of `FromPureNoise`, and its NFE is the grid's steps."""
    path = sdegen.LinearPath()
    velocity = mixture.velocity(path)
    ts = optimized_grid(path, velocity, 5, key=jax.random.key(0), shape=(128, 2),
                        method="unipc", iters=80)
    assert ts.shape == (6,) and ts[0] == path.T and ts[-1] == 1e-3 and np.all(np.diff(ts) < 0)
    x_T = path.prior_sample(jax.random.key(7), (256, 2))
    kw = dict(key=jax.random.key(1), x_T=x_T, t_eps=1e-3)
    ref = sdegen.sample(path, velocity, method="ode", solver="dopri8", rtol=1e-9, atol=1e-9,
                        **kw)
    ours, stats = sdegen.sample(path, velocity, method="unipc", ts=ts, return_stats=True,
                                key=kw["key"], x_T=x_T)
    uniform = sdegen.sample(path, velocity, method="unipc", num_steps=5, **kw)
    assert stats.nfe == 5
    assert _rms(ours, ref) < 0.8 * _rms(uniform, ref), (_rms(ours, ref), _rms(uniform, ref))


def test_optimized_grid_refuses_bad_requests(mixture, sdes):
    sde = sdes["vp"]
    score = mixture.score(sde)
    kw = dict(key=jax.random.key(0), shape=(4, 2))
    for args, match in [((sde, score, 5), "denoiser method"), ((sde, score, 1), "num_steps >= 2"),
                        ((sdegen.CNF(), score, 5), "needs a linear SDE")]:
        with pytest.raises(ValueError, match=match) as info:
            optimized_grid(*args, **kw, **({"method": "ode"} if match == "denoiser method"
                                           else {}))
        assert "\n" not in str(info.value)
