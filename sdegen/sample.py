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
from .processes import AbstractDiffusion, AbstractProcess, AbstractSDE
from .solvers import (
    GRIDS,
    METHODS,
    AbstractGridSampler,
    Options,
    SolveStats,
    adaptive,
    as_solver,
    check,
    diagonal_noise,
    evals_per_step,
    integrate,
    save_times,
    solver_times,
    stats_of,
    time_grid,
    validate,
)
from .solvers.base import FromPureNoise, check_gaussian, starts_from_pure_noise
from .solvers.grids import default_grid
from .solvers.methods import denoiser_terms, pf_ode_terms, reverse_sde_terms

FEW_STEP = tuple(name for name, m in METHODS.items() if m.terms == "denoiser")
"""The fixed-grid samplers for linear SDEs and Gaussian flow-matching paths (their terms are
the denoiser)."""


@eqx.filter_jit
def _solve(process, field, key, x_T, save_s, grid_s, solver, *, method, rtol, atol, num_steps,
           snr, n_corrector, t_eps, max_steps, progress, grid=None, rho=7.0, churn=10.0,
           to_data=True, wrap=None, order=None, eta=0.0, lower_order_final=None):
    """The one solve of `sample`/`transport`: the terms and default solver of `METHODS[method]`
    (`solver`, when given, replaces the default), on the explicit grid `grid_s` (solver time),
    else on `grid` or the method's default grid, else with adaptive steps."""
    spec = METHODS[method]
    T = process.T
    saveat = diffrax.SaveAt(ts=save_s) if save_s is not None else diffrax.SaveAt(t1=True)
    bridge = spec.terms == "denoiser" and starts_from_pure_noise(process)
    if solver is None:  # from pure noise the method's own steps start at the grid's 2nd point
        own_steps = max(num_steps - 1, 1) if bridge else num_steps
        solver = spec.solver(process, field, key, Options(own_steps, snr, n_corrector, churn,
                                                          order, eta, lower_order_final))
    if bridge:
        solver = FromPureNoise(solver)
    if wrap is not None:
        solver = wrap(solver)
    if spec.terms == "pf_ode":
        terms = pf_ode_terms(process, field, t_eps, to_data)
    elif spec.terms == "denoiser":
        terms = denoiser_terms(process, field)
    else:
        terms = reverse_sde_terms(process, field, key, x_T.shape)
    adjoint = diffrax.DirectAdjoint() if spec.terms == "reverse_sde" else None
    if grid_s is None and grid is None and spec.grid is None:
        solver, controller = adaptive(solver, rtol, atol)
        s1 = T - t_eps
    else:
        if grid_s is None:
            grid_s = time_grid(process, grid or default_grid(process, spec.grid), num_steps,
                               t_eps, rho)
        controller = diffrax.StepTo(ts=grid_s)
        s1 = grid_s[-1]
    sol = integrate(terms, solver, 0.0, s1, x_T, dt0=None, controller=controller,
                    max_steps=max_steps, saveat=saveat, adjoint=adjoint, progress=progress)
    return sol, solver


def sample(
    process: AbstractProcess,
    field: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, "*d"]],
    *,
    key: PRNGKeyArray,
    shape: tuple[int, ...] | None = None,
    x_T: Float[Array, "n *d"] | None = None,
    method: str = "ode",
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    num_steps: int = 1000,
    snr: float = 0.16,
    n_corrector: int = 1,
    grid: str | None = None,
    ts: Float[ArrayLike, "..."] | None = None,  # checked by solvers.solver_times
    rho: float = 7.0,
    churn: float = 10.0,
    order: int | None = None,
    eta: float = 0.0,
    lower_order_final: bool | str | None = None,
    t_eps: float = 1e-3,
    max_steps: int | None = None,
    save_ts: Float[ArrayLike, " k"] | None = None,
    temperature: float = 1.0,
    progress: bool = False,
    return_stats: bool = False,
    wrap: Callable[[diffrax.AbstractSolver], diffrax.AbstractSolver] | None = None,
) -> Float[Array, "n *d"] | Float[Array, "k n *d"] | tuple[Float[Array, "..."], SolveStats]:
    """Draw `shape[0]` samples by integrating the generative dynamics from t = T to t = t_eps.

    **Arguments:**

    - `process`: the forward process (e.g. `sdegen.VPSDE()`).
    - `field`: the score on ONE example, `field(x, t) -> ∇ₓ log p_t(x)` (an `eqx.Module` or a
      function; pass the same object on every call so the solve compiles once).
    - `key`: PRNG key (prior draw, Brownian path, corrector noise).
    - `shape`: batched shape `(n, *d)`; or give `x_T`, the starting points at t = T.
    - `method` (a key of `sdegen.solvers.METHODS`): `"ode"` — probability-flow ODE (Song et al.
      2021, eq. 13) with an adaptive solver (`solver`, `rtol`, `atol`; error controlled per
      sample by a max-norm over the batch), or on a fixed grid when `grid` or `ts` is given;
      `"sde"` — Euler–Maruyama on the reverse SDE (eq. 6) with `num_steps` uniform steps;
      `"pc"` — reverse-diffusion predictor + Langevin corrector (Alg. 1–2) with `snr` and
      `n_corrector`; `"pc_ode"` — the same corrector after an Euler step of the
      probability-flow ODE (Song et al. 2021, App. G, "probability flow" predictor).
    - Few-step samplers for linear SDEs (VP, sub-VP, VE) on a fixed grid of `num_steps` steps
      (`grid`: `"karras"` (default; Karras et al. 2022, eq. 5, exponent `rho`), `"logsnr"` or
      `"uniform"`): `"edm_heun"` — EDM's Heun sampler (Karras et al. 2022, Alg. 1; NFE = 2 per
      step); `"edm_churn"` — its stochastic variant (Alg. 2, S_churn = `churn`); `"ddim"` —
      deterministic DDIM (Song, Meng & Ermon 2021; first order, NFE = 1 per step);
      `"dpm2m"` — DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2; second order, NFE = 1 per step);
      `"dpm3m"` — DPM-Solver++ multistep, `order` 1–3 (default 3); `"dpm2s"` — DPM-Solver++(2S)
      (singlestep, NFE = 2 per step); `"dpm2m_sde"` — SDE-DPM-Solver++(2M) (stochastic);
      `"ipndm"` — iPNDM (Zhang & Chen 2023; Adams–Bashforth in r, `order` 1–4, default 4);
      `"deis"` — DEIS-tAB (Zhang & Chen 2023, `order` 1–3, default 3); `"unipc"` /
      `"unipc_bh1"` — UniPC with B(h) = e^h − 1 / h (Zhao et al. 2023; UniP-`order` + UniC,
      `order` 1–3, default 3). All these take one evaluation per step except dpm2s, and warm
      start at lower order. `grid` may also be `"time_quadratic"` (uniform in √t).
      They also step the flow-matching paths x_t = a x0 + b ε (`LinearPath`, `VPPath`, any
      `AbstractProbabilityPath`) through the x0-prediction of the velocity
      (`AbstractProbabilityPath.data_prediction`), DDIM η > 0 and dpm2m_sde included (the
      path's Gaussian kernel is that of a linear SDE). On a path whose prior is pure noise
      (`LinearPath`: α(T) = 0) the default grid is "uniform" and the first step is the exact
      limit step of every method (`solvers.base.FromPureNoise`: one evaluation, so dpm2s and
      edm_heun cost 2N - 1), after which the method's own N - 1 steps start.
    - `order`: the order of dpm3m, ipndm, deis, unipc (None: the method's default).
    - `eta`: DDIM's η in [0, 1] (method="ddim"; 0 deterministic, 1 DDPM's ancestral sampler).
    - `lower_order_final`: lower-order final steps (None: as the method's paper does —
      on for dpm3m (grids under 15 steps), dpm2m_sde and unipc, off for ipndm and deis; for
      edm_heun/edm_churn `True` skips the last Heun correction as EDM does, one NFE fewer).
      `"diffusers"` (multistep methods): the same rule counted as diffusers' schedulers count
      it, the final σ -> 0 denoising step included, so that these grids followed by one
      denoising evaluation take diffusers' orders step by step (`solvers.base.FINAL_RULES`).
    - `solver`: for `method="ode"`, `"tsit5"`, `"dopri5"`, `"dopri8"` or any Diffrax solver
      instance (`diffrax.Heun()`, `diffrax.Bosh3()`, your own `AbstractSolver`): adaptive
      steps need one with an error estimate (`diffrax.AbstractAdaptiveSolver`); on a fixed grid
      any solver steps the PF-ODE. For the other methods a solver *instance* replaces the
      method's own and steps the method's terms on its grid: the reverse SDE for "sde"/"pc"
      (Itô solvers, e.g. `diffrax.Euler()`), the PF-ODE for "pc_ode", the denoiser for the
      few-step methods (an `sdegen.solvers.AbstractGridSampler`); a solver name is ignored
      there. NFE is counted from `field_evals` (see `sdegen.solvers.evals_per_step`).
    - `ts`: an explicit time grid in forward time t, strictly decreasing from `ts[0] = T` to
      `ts[-1]`, where generation stops (it replaces `t_eps`, `num_steps` and `grid`), for any
      method (with `method="ode"` the PF-ODE is stepped on it instead of adaptively). The solve
      runs on the solver times s = T - ts (`diffrax.StepTo`).
    - `t_eps`: where generation stops (t = 0 is singular for the score; flows and CNFs,
      `process.regular_at_zero`, may stop at exactly 0).
    - `temperature`: τ scales the prior draw, x_T = τ z (the reduced-temperature sampling of
      Kingma & Dhariwal 2018, GLOW, Sec. 5.2, for an ODE model); ignored when `x_T` is given.
    - `save_ts`: forward times t in [t_eps, T] at which to return the state instead of only the
      end point; the result is then `(len(save_ts), n, *d)`.
    - `return_stats`: also return `SolveStats` (NFE = score evaluations on the whole batch).
    - `wrap`: a solver wrapper (an `eqx.Module` called on the chosen fixed-step sampler, e.g.
      `sdegen.inpaint`'s replacement) that acts after every step; fixed grids only.
    """
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; choose one of {tuple(METHODS)}")
    spec = METHODS[method]
    if spec.terms == "denoiser":
        check_gaussian(method, process)
    if grid is not None and grid not in GRIDS:
        raise ValueError(f"unknown time grid {grid!r}; choose one of {tuple(GRIDS)}")
    if order is not None and order not in spec.orders:
        has = tuple(name for name, m in METHODS.items() if m.orders)
        raise ValueError(
            f"method={method!r} takes order in {spec.orders}, got order={order!r}" if spec.orders
            else f"method={method!r} has no order option (methods with one: {has}); drop order=")
    if eta != 0 and not spec.eta:
        raise ValueError(f"eta= is DDIM's noise scale: use method='ddim', not {method!r}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM), got {eta}")
    if not (rho > 0 and churn >= 0):
        raise ValueError(f"rho must be positive and churn non-negative, got rho={rho}, "
                         f"churn={churn}")
    if spec.score and spec.terms != "denoiser" and not isinstance(process, AbstractDiffusion):
        raise ValueError(f"method={method!r} needs a stochastic process (an AbstractDiffusion); "
                         f"{type(process).__name__} has only an ODE: use method='ode'")
    if spec.euclidean and not isinstance(process.manifold, Euclidean):
        raise ValueError(f"method={method!r} works in R^d only; on {process.manifold.name} use "
                         "method='sde' (geodesic random walk) or 'ode'")
    T = float(process.T)
    allow_zero = process.regular_at_zero and method == "ode"
    if process.regular_at_zero and not allow_zero and t_eps == 0:
        raise ValueError(f"method={method!r} stops at t_eps > 0 (at t = 0 the noise ratio is 0, "
                         f"its log-SNR infinite); t_eps=0 is for method='ode' only: set t_eps "
                         f"(config: sample.t_eps), e.g. 1e-3")
    validate(solver, t_eps, T, allow_zero=allow_zero)
    user_solver = None if isinstance(solver, str) else solver
    if method == "ode":
        user_solver = as_solver(solver)
    if (user_solver is not None and spec.terms == "denoiser"
            and not isinstance(user_solver, AbstractGridSampler)):
        raise ValueError(f"method={method!r} steps the denoiser, which only an "
                         f"sdegen.solvers.AbstractGridSampler integrates; to step the PF-ODE with "
                         f"{type(user_solver).__name__} use method='ode' with ts= or grid=")
    fixed = ts is not None or grid is not None or spec.grid is not None
    if wrap is not None and not fixed:
        raise ValueError("a solver wrapper (wrap=) acts after every step of a fixed grid; the "
                         "adaptive method='ode' has none: give ts= or grid=, or use "
                         "method='sde', 'pc' or a few-step sampler")
    if not fixed:
        adaptive(user_solver, rtol, atol)  # a one-line error for a solver without error estimate
    if return_stats and user_solver is not None:
        evals_per_step(user_solver)  # unknown NFE: a one-line error before the solve
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    grid_s = None
    if ts is not None:
        grid_s, t_eps = solver_times(ts, T, allow_zero=allow_zero)
        num_steps = grid_s.shape[0] - 1
    elif fixed and num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
    steps_of = getattr(user_solver, "num_steps", None)
    own_steps = num_steps - 1 if spec.terms == "denoiser" and starts_from_pure_noise(process) \
        else num_steps  # `FromPureNoise` takes the first step
    if (fixed and steps_of is not None and steps_of != own_steps
            and (getattr(user_solver, "lower_order_final", False)
                 or getattr(user_solver, "skip_last_correction", False))):
        raise ValueError(f"{type(user_solver).__name__}(num_steps={steps_of}) treats its last "
                         f"steps apart but takes {own_steps} steps of the grid: give it "
                         f"num_steps={own_steps}")
    key_prior, key_solve = jax.random.split(key)
    if x_T is None:
        if shape is None or len(shape) < 2:
            raise ValueError(
                f"shape must be batched, (n, *d), got {shape!r}; e.g. shape=(1000, 2)"
            )
        x_T = temperature * process.prior_sample(key_prior, tuple(shape))
    if grid_s is not None:
        grid_s = grid_s.astype(x_T.dtype)
    save_s = save_times(save_ts, T, t_eps, x_T.dtype)
    if max_steps is None:
        max_steps = num_steps if fixed else 16_384
    sol, solver_obj = _solve(
        process, field, key_solve, x_T, save_s, grid_s, user_solver, method=method, rtol=rtol,
        atol=atol, num_steps=num_steps, snr=snr, n_corrector=n_corrector, t_eps=t_eps,
        max_steps=max_steps, progress=progress, grid=grid, rho=rho, churn=churn, wrap=wrap,
        order=order, eta=eta, lower_order_final=lower_order_final,
    )
    hint = ("loosen rtol/atol or raise t_eps" if not fixed
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
    solver: str | diffrax.AbstractSolver = "tsit5",
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
    adaptive(solver, rtol, atol)  # a one-line error for a solver without error estimate
    sol, solver_obj = _solve(
        process, field, None, x, None, None, as_solver(solver), method="ode", rtol=rtol, atol=atol,
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
