"""`sdegen.sample`: draw from the generative dynamics of a process and a field.

All methods integrate in solver time s = T - t from s = 0 (noise, t = T) to s = T - t_eps
(Diffrax 0.7.2's SRK solvers solve reverse-time SDEs wrongly, diffrax issue 598, fixed after
0.7.2; forward solver time lets every solver work). The whole batch is one Diffrax solve with
the field vmapped over samples.

On a manifold (`process.manifold`, e.g. S^2): the ODE velocity is the process's tangent
velocity (each sphere process projects it onto T_x S^2) and the returned states are projected
onto the manifold (`manifold.proj`), which removes the O(rtol) radial drift of the adaptive
solve; `method="sde"` is the reverse geodesic random walk (`GeodesicRandomWalk`), whose states
stay on the manifold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .manifolds import Euclidean
from .processes import (
    AbstractDiffusion,
    AbstractLinearSDE,
    AbstractProcess,
    AbstractSDE,
    denoiser,
    reverse_drift,
)
from .samplers import DEFAULT_GRID, GRIDS, build
from .solve import SolveStats, adaptive, check, integrate, stats_of, validate
from .solvers import GeodesicRandomWalk, ReverseDiffusionLangevin, diagonal_noise

METHODS = ("ode", "sde", "pc", "pc_ode", *DEFAULT_GRID)
FEW_STEP = tuple(DEFAULT_GRID)  # fixed-grid samplers of sdegen.samplers (linear SDEs only)


def _batched(field: Callable) -> Callable:
    return jax.vmap(field, in_axes=(0, None))


def _ode_term(process, field, t_eps, to_data):
    """The generative ODE in solver time s ∈ [0, T - t_eps]: towards the data (s = T - t, the
    velocity negated) or towards the prior (s = t - t_eps, for `sdegen.encode`)."""
    velocity = _batched(process.ode_velocity(field))
    T = process.T
    if to_data:
        return diffrax.ODETerm(lambda s, y, args: -velocity(y, T - s))
    return diffrax.ODETerm(lambda s, y, args: velocity(y, t_eps + s))


@eqx.filter_jit
def _solve(process, field, key, x_T, save_s, *, method, solver_name, rtol, atol, num_steps,
           snr, n_corrector, t_eps, max_steps, progress, grid=None, rho=7.0, churn=10.0,
           to_data=True, wrap=None):
    T = process.T
    s1 = T - t_eps
    saveat = diffrax.SaveAt(ts=save_s) if save_s is not None else diffrax.SaveAt(t1=True)
    if method == "ode":
        solver, controller = adaptive(solver_name, rtol, atol)
        sol = integrate(_ode_term(process, field, t_eps, to_data), solver, 0.0, s1, x_T,
                        dt0=None, controller=controller, max_steps=max_steps, saveat=saveat,
                        progress=progress)
        return sol, solver
    if method in FEW_STEP or method == "pc_ode":  # deterministic terms on a fixed grid
        if method == "pc_ode":
            terms = _ode_term(process, field, t_eps, to_data=True)
            solver = ReverseDiffusionLangevin(score=field, T=T, key=jax.random.fold_in(key, 1),
                                              snr=snr, n_corrector=n_corrector)
            controller = diffrax.StepTo(ts=jnp.linspace(0.0, s1, num_steps + 1))
        else:
            denoise = _batched(denoiser(process, field))
            terms = diffrax.ODETerm(lambda s, y, args: denoise(y, T - s))
            solver, controller = build(method, process, key, num_steps=num_steps, t_eps=t_eps,
                                       grid=grid, rho=rho, churn=churn)
        solver = solver if wrap is None else wrap(solver)
        sol = integrate(terms, solver, 0.0, s1, x_T, dt0=None, controller=controller,
                        max_steps=max_steps, saveat=saveat, progress=progress)
        return sol, solver
    drift = _batched(reverse_drift(process, field))
    bm = diffrax.UnsafeBrownianPath(shape=x_T.shape, key=key)
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(lambda s, y, args: -drift(y, T - s)),
        diffrax.ControlTerm(diagonal_noise(lambda s: process.diffusion(T - s)), bm),
    )
    if method == "sde":
        curved = not isinstance(process.manifold, Euclidean)
        solver = GeodesicRandomWalk(process.manifold) if curved else diffrax.Euler()
    else:
        solver = ReverseDiffusionLangevin(score=field, T=T, key=jax.random.fold_in(key, 1),
                                          snr=snr, n_corrector=n_corrector)
    solver = solver if wrap is None else wrap(solver)
    controller = diffrax.StepTo(ts=jnp.linspace(0.0, s1, num_steps + 1))
    sol = integrate(terms, solver, 0.0, s1, x_T, dt0=None, controller=controller,
                    max_steps=max_steps, saveat=saveat, adjoint=diffrax.DirectAdjoint(),
                    progress=progress)
    return sol, solver


def sample(
    process: AbstractProcess,
    field: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, "*d"]],
    *,
    key: PRNGKeyArray,
    shape: tuple[int, ...] | None = None,
    x_T: Float[Array, "n *d"] | None = None,
    method: str = "ode",
    solver: str = "tsit5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    num_steps: int = 1000,
    snr: float = 0.16,
    n_corrector: int = 1,
    grid: str | None = None,
    rho: float = 7.0,
    churn: float = 10.0,
    t_eps: float = 1e-3,
    max_steps: int | None = None,
    save_ts: Float[ArrayLike, " k"] | None = None,
    temperature: float = 1.0,
    progress: bool = False,
    return_stats: bool = False,
    wrap: Callable[[diffrax.AbstractSolver], diffrax.AbstractSolver] | None = None,
) -> Float[Array, "n *d"] | tuple[Float[Array, "..."], SolveStats]:
    """Draw `shape[0]` samples by integrating the generative dynamics from t = T to t = t_eps.

    **Arguments:**

    - `process`: the forward process (e.g. `sdegen.VPSDE()`).
    - `field`: the score on ONE example, `field(x, t) -> ∇ₓ log p_t(x)` (an `eqx.Module` or a
      function; pass the same object on every call so the solve compiles once).
    - `key`: PRNG key (prior draw, Brownian path, corrector noise).
    - `shape`: batched shape `(n, *d)`; or give `x_T`, the starting points at t = T.
    - `method`: `"ode"` — probability-flow ODE (Song et al. 2021, eq. 13) with an adaptive
      solver (`solver="tsit5"` or `"dopri5"`, `rtol`, `atol`; error controlled per sample by a
      max-norm over the batch); `"sde"` — Euler–Maruyama on the reverse SDE (eq. 6) with
      `num_steps` uniform steps; `"pc"` — reverse-diffusion predictor + Langevin corrector
      (Alg. 1–2) with `snr` and `n_corrector`; `"pc_ode"` — the same corrector after an Euler
      step of the probability-flow ODE (Song et al. 2021, App. G, "probability flow" predictor).
    - Few-step samplers for linear SDEs (VP, sub-VP, VE) on a fixed grid of `num_steps` steps
      (`grid`: `"karras"` (default; Karras et al. 2022, eq. 5, exponent `rho`), `"logsnr"` or
      `"uniform"`): `"edm_heun"` — EDM's Heun sampler (Karras et al. 2022, Alg. 1; NFE = 2 per
      step); `"edm_churn"` — its stochastic variant (Alg. 2, S_churn = `churn`); `"ddim"` —
      deterministic DDIM (Song, Meng & Ermon 2021; first order, NFE = 1 per step);
      `"dpm2m"` — DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2; second order, NFE = 1 per step).
    - `t_eps`: where generation stops (t = 0 is singular for the score; flows and CNFs,
      `process.regular_at_zero`, may stop at exactly 0).
    - `temperature`: τ scales the prior draw, x_T = τ z (the reduced-temperature sampling of
      Kingma & Dhariwal 2018, GLOW, Sec. 5.2, for an ODE model); ignored when `x_T` is given.
    - `save_ts`: forward times t in [t_eps, T] at which to return the state instead of only the
      end point; the result is then `(len(save_ts), n, *d)`.
    - `return_stats`: also return `SolveStats` (NFE = score evaluations on the whole batch).
    - `wrap`: a solver wrapper (an `eqx.Module` called on the chosen fixed-step sampler, e.g.
      `sdegen.inpaint`'s replacement) that acts after every step; not for `method="ode"`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; choose one of {METHODS}")
    if method in FEW_STEP and not isinstance(process, AbstractLinearSDE):
        raise ValueError(f"method={method!r} needs a linear SDE (VPSDE, SubVPSDE, VESDE) for its "
                         f"closed-form noise schedule; {type(process).__name__} is not one: use "
                         "method='ode'")
    if grid is not None and grid not in GRIDS:
        raise ValueError(f"unknown time grid {grid!r}; choose one of {GRIDS}")
    if not (rho > 0 and churn >= 0):
        raise ValueError(f"rho must be positive and churn non-negative, got rho={rho}, "
                         f"churn={churn}")
    if method != "ode" and not isinstance(process, AbstractDiffusion):
        raise ValueError(f"method={method!r} needs a stochastic process (an AbstractDiffusion); "
                         f"{type(process).__name__} has only an ODE: use method='ode'")
    if method in ("pc", "pc_ode") and not isinstance(process.manifold, Euclidean):
        raise ValueError(f"method={method!r} works in R^d only; on {process.manifold.name} use "
                         "method='sde' (geodesic random walk) or 'ode'")
    if wrap is not None and method == "ode":
        raise ValueError("a solver wrapper (wrap=) acts after every step of a fixed grid; the "
                         "adaptive method='ode' has none: use method='sde', 'pc' or a few-step "
                         "sampler")
    T = float(process.T)
    validate(solver, t_eps, T, allow_zero=process.regular_at_zero and method == "ode")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    if method != "ode" and num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
    key_prior, key_solve = jax.random.split(key)
    if x_T is None:
        if shape is None or len(shape) < 2:
            raise ValueError(
                f"shape must be batched, (n, *d), got {shape!r}; e.g. shape=(1000, 2)"
            )
        x_T = temperature * process.prior_sample(key_prior, tuple(shape))
    save_s = None
    if save_ts is not None:
        ts = jnp.asarray(save_ts, dtype=x_T.dtype)
        if jnp.any(ts < t_eps) or jnp.any(ts > T) or jnp.any(jnp.diff(ts) > 0):
            raise ValueError(f"save_ts must decrease from at most T={T} to at least t_eps={t_eps}")
        save_s = T - ts
    if max_steps is None:
        max_steps = 16_384 if method == "ode" else num_steps
    sol, solver_obj = _solve(
        process, field, key_solve, x_T, save_s, method=method, solver_name=solver, rtol=rtol,
        atol=atol, num_steps=num_steps, snr=snr, n_corrector=n_corrector, t_eps=t_eps,
        max_steps=max_steps, progress=progress, grid=grid, rho=rho, churn=churn, wrap=wrap,
    )
    hint = ("loosen rtol/atol or raise t_eps" if method == "ode"
            else "raise num_steps or t_eps" + (" or lower snr" if "pc" in method else ""))
    check(sol, f"sample(method={method!r})", max_steps=max_steps, hint=hint)
    out = sol.ys if save_s is not None else sol.ys[0]
    if not isinstance(process.manifold, Euclidean):
        flat = out.reshape(-1, out.shape[-1])
        out = jax.vmap(process.manifold.proj)(flat).reshape(out.shape)
    if return_stats:
        return out, stats_of(sol, solver_obj)
    return out


def transport(
    process: AbstractProcess,
    field: Callable,
    x: Float[Array, "n *d"],
    *,
    to_data: bool,
    solver: str = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-7,
    t_eps: float = 1e-3,
    max_steps: int = 16_384,
    return_stats: bool = False,
) -> Float[Array, "n *d"] | tuple[Float[Array, "n *d"], SolveStats]:
    """Carry a batch along the generative ODE between t = t_eps (data side) and t = T (prior
    side): `to_data=True` is `sample(method="ode")` from given x_T, `to_data=False` its inverse.
    The same compiled solve as `sample` (`sdegen.encode` / `sdegen.decode` call this)."""
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be batched, (n, *d), got shape {x.shape}; use x[None] for one")
    validate(solver, t_eps, float(process.T), allow_zero=process.regular_at_zero)
    sol, solver_obj = _solve(
        process, field, None, x, None, method="ode", solver_name=solver, rtol=rtol, atol=atol,
        num_steps=0, snr=0.0, n_corrector=0, t_eps=t_eps, max_steps=max_steps, progress=False,
        to_data=to_data,
    )
    check(sol, "decode" if to_data else "encode", max_steps=max_steps,
          hint="loosen rtol/atol or raise t_eps")
    if return_stats:
        return sol.ys[0], stats_of(sol, solver_obj)
    return sol.ys[0]


@eqx.filter_jit
def _forward(process, x0, key, save_t, num_steps):
    bm = diffrax.UnsafeBrownianPath(shape=x0.shape, key=key)
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(lambda t, y, args: jax.vmap(process.drift, in_axes=(0, None))(y, t)),
        diffrax.ControlTerm(diagonal_noise(process.diffusion), bm),
    )
    controller = diffrax.StepTo(ts=jnp.linspace(0.0, process.T, num_steps + 1))
    return integrate(terms, diffrax.Euler(), 0.0, process.T, x0, dt0=None, controller=controller,
                     max_steps=num_steps, saveat=diffrax.SaveAt(ts=save_t),
                     adjoint=diffrax.DirectAdjoint())


def simulate_forward(
    process: AbstractSDE,
    x0: Float[Array, "n *d"],
    *,
    key: PRNGKeyArray,
    save_ts: Float[ArrayLike, " k"],
    num_steps: int = 1000,
) -> Float[Array, "k n *d"]:
    """Paths of the forward (noising) SDE from data `x0` at t = 0, by Euler–Maruyama with
    `num_steps` uniform steps, saved at the increasing times `save_ts` in [0, T]."""
    ts = jnp.asarray(save_ts, dtype=x0.dtype)
    if jnp.any(ts < 0) or jnp.any(ts > process.T) or jnp.any(jnp.diff(ts) < 0):
        raise ValueError(f"save_ts must increase within [0, T={process.T}]")
    sol = _forward(process, x0, key, ts, num_steps)
    check(sol, "simulate_forward", max_steps=num_steps, hint="raise num_steps")
    return sol.ys
