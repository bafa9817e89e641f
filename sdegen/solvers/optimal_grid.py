"""A time grid optimised for one model, sampler and step count, in the spirit of "Align Your
Steps" (Sabour, Fidler & Kreis 2024) and AMED (Zhou et al. 2024): instead of a fixed rule
(Karras's ρ = 7, uniform log-SNR), choose the N - 1 interior noise levels that minimise the
sampler's error against a tight solve of the same probability-flow ODE on a few hundred prior
draws.

The grid is parameterised in log r (r = σ/α, the noise ratio every grid of `grids` is built in),
with its two ends fixed at r(T) and r(t_eps) and the steps δ_k = softmax(θ)_k · (log r_min - log
r_max) (monotone by construction), started from the Karras grid. On a flow-matching path whose
prior is pure noise (rectified flow: r(T) = ∞) the steps are taken in t instead, δ_k =
softmax(θ)_k · (T - t_eps), started from the uniform grid, and the first step is the exact limit
step of `base.FromPureNoise`, as in `sdegen.sample`. The loss is the mean squared distance of
the sampler's end point to the tight end point, i.e. the sum of the local truncation errors of
the N steps as they propagate to the end; it is differentiated through the sampler's own Diffrax
`step` (any fixed-grid denoiser method of `METHODS`) and minimised with Adam.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Float, PRNGKeyArray

from ..processes import AbstractProcess
from .base import FromPureNoise, check_gaussian, starts_from_pure_noise
from .grids import karras_grid
from .integrate import adaptive, check, integrate
from .methods import METHODS, Options, denoiser_terms, pf_ode_terms


def _log_r_grid(theta, log_r_max, log_r_min):
    steps = jax.nn.softmax(theta) * (log_r_min - log_r_max)
    return jnp.concatenate([log_r_max[None], log_r_max + jnp.cumsum(steps)])


def _forward_times(sde, theta, t_eps, ends):
    """The grid of forward times t (T down to t_eps) of the parameters θ: steps in log r
    between `ends` = (log r(T), log r(t_eps)), or in t when `ends` is None (pure-noise prior)."""
    if ends is None:
        steps = jax.nn.softmax(theta) * (sde.T - t_eps)
        t = sde.T - jnp.concatenate([jnp.zeros((1,), theta.dtype), jnp.cumsum(steps)])
    else:
        t = sde.time_of_noise_ratio(jnp.exp(_log_r_grid(theta, *ends)))
    return t.at[0].set(sde.T).at[-1].set(t_eps)


def optimized_grid(
    sde: AbstractProcess,
    field: Callable,
    num_steps: int,
    *,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    method: str = "dpm2m",
    t_eps: float = 1e-3,
    iters: int = 150,
    learning_rate: float = 0.1,
    rtol: float = 1e-7,
    **options,
) -> Float[np.ndarray, " m"]:
    """The `num_steps`-step grid of forward times (decreasing from T to `t_eps`, the `ts=` of
    `sdegen.sample`) that minimises `method`'s mean squared end-point error against a tight
    PF-ODE solve (Dopri8 at `rtol`) from `shape[0]` prior draws (`key`), by `iters` Adam steps from
    the Karras grid (ρ = 7; the uniform grid on a pure-noise path such as `LinearPath`). `sde`
    is a linear SDE or a Gaussian flow-matching path, `field` its score or velocity. `method` is
    any fixed-grid method stepping the denoiser (`METHODS[...].terms == "denoiser"`: ddim,
    dpm2m, dpm3m, ipndm, deis, unipc, edm_heun ...); `options` are its `sdegen.sample` options
    (order=, lower_order_final=, ...). The grid is fitted to these draws: check it on fresh
    ones."""

    check_gaussian(method, sde)
    if method not in METHODS or METHODS[method].terms != "denoiser":
        few = tuple(k for k, m in METHODS.items() if m.terms == "denoiser")
        raise ValueError(f"optimized_grid steps a fixed-grid denoiser method, one of {few}; "
                         f"got method={method!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"optimized_grid needs num_steps >= 2 (an interior point to move), "
                         f"got {num_steps!r}")
    key_prior, key_ref = jax.random.split(key)
    x_T = sde.prior_sample(key_prior, shape)
    solver_ref, controller = adaptive("dopri8", rtol, rtol)
    sol = eqx.filter_jit(integrate)(pf_ode_terms(sde, field, t_eps), solver_ref, 0.0,
                                    sde.T - t_eps, x_T, dt0=None, controller=controller,
                                    max_steps=100_000)
    check(sol, "optimized_grid's reference solve", max_steps=100_000, hint="loosen rtol")
    ref = sol.ys[-1]
    pure = starts_from_pure_noise(sde)
    solver = METHODS[method].solver(sde, field, key_ref, Options(
        num_steps=num_steps - 1 if pure else num_steps, snr=0.0, n_corrector=0, churn=0.0,
        **options))
    if pure:  # the exact first step from r(T) = ∞, then the method's own steps
        solver = FromPureNoise(solver)
    terms = denoiser_terms(sde, field)
    dtype = x_T.dtype
    if pure:
        ends, theta = None, jnp.zeros((num_steps,), dtype)
    else:
        ends = (jnp.log(sde.noise_ratio(jnp.asarray(sde.T, dtype))),
                jnp.log(sde.noise_ratio(jnp.asarray(t_eps, dtype))))
        karras = jnp.log(sde.noise_ratio(sde.T - karras_grid(sde, num_steps, t_eps)))
        theta = jnp.log(jnp.diff(karras) / (ends[1] - ends[0])).astype(dtype)

    def end_point(theta):
        s = (sde.T - _forward_times(sde, theta, t_eps, ends)).astype(dtype)
        y = x_T
        state = solver.init(terms, s[0], s[1], y, None)
        for i in range(num_steps):
            y, _, _, state, _ = solver.step(terms, s[i], s[i + 1], y, None, state, False)
        return y

    def loss(theta):
        return jnp.mean(jnp.sum((end_point(theta) - ref) ** 2, axis=-1))

    opt = optax.adam(learning_rate)

    @eqx.filter_jit
    def update(theta, opt_state):
        value, grad = jax.value_and_grad(loss)(theta)
        updates, opt_state = opt.update(grad, opt_state)
        return optax.apply_updates(theta, updates), opt_state, value

    opt_state = opt.init(theta)
    best, best_loss = theta, jnp.inf
    for _ in range(iters):
        new, opt_state, value = update(theta, opt_state)  # value: the loss at theta
        if value < best_loss:
            best, best_loss = theta, value
        theta = new
    t = np.array(_forward_times(sde, best, t_eps, ends), dtype=np.float64)
    t[0], t[-1] = sde.T, t_eps
    return t
