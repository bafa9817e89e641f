"""Fixed time grids for the few-step samplers, as increasing solver times s = T - t (a
`diffrax.StepTo` controller's `ts`). Grids are built in the noise ratio r = σ/α of the process
(`AbstractLinearSDE.noise_ratio`) and mapped back to t through its closed-form inverse, so the same
grid means the same noise levels for VP, sub-VP and VE. `solver_times` checks and converts a
user's explicit grid of forward times t (the `ts=` of `sdegen.sample`). Gaussian flow-matching
paths have a noise ratio too; on one with a pure-noise prior (r(T) = ∞) only the grids in t
exist (`default_grid`)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..processes import AbstractLinearSDE, AbstractProbabilityPath, AbstractProcess

Schedule = AbstractLinearSDE | AbstractProbabilityPath
"""A process with a noise ratio r = σ/α and its inverse (`base.GaussianKernel`)."""


def _to_solver_time(sde: Schedule, r: Array, t_eps: float) -> Array:
    t = sde.time_of_noise_ratio(r)
    t = t.at[0].set(sde.T).at[-1].set(t_eps)  # endpoints exact, not round-tripped
    return sde.T - t


def karras_grid(
    sde: Schedule, num_steps: int, t_eps: float, rho: float = 7.0
) -> Float[Array, " m"]:
    """Karras et al. 2022, eq. 5: r_i = (r_max^{1/ρ} + i/N (r_min^{1/ρ} - r_max^{1/ρ}))^ρ,
    i = 0..N, between r_max = r(T) and r_min = r(t_eps); ρ = 7 concentrates steps at low noise."""
    r_max, r_min = sde.noise_ratio(sde.T), sde.noise_ratio(t_eps)
    u = jnp.linspace(0.0, 1.0, num_steps + 1)
    r = (r_max ** (1 / rho) + u * (r_min ** (1 / rho) - r_max ** (1 / rho))) ** rho
    return _to_solver_time(sde, r, t_eps)


def logsnr_grid(sde: Schedule, num_steps: int, t_eps: float) -> Float[Array, " m"]:
    """Steps uniform in the half log-SNR λ = -log r (Lu et al. 2022, DPM-Solver, Sec. 3.3)."""
    log_r = jnp.linspace(jnp.log(sde.noise_ratio(sde.T)), jnp.log(sde.noise_ratio(t_eps)),
                         num_steps + 1)
    return _to_solver_time(sde, jnp.exp(log_r), t_eps)


def uniform_grid(sde: AbstractProcess, num_steps: int, t_eps: float) -> Float[Array, " m"]:
    """Steps uniform in t (DDIM's and Song et al.'s default)."""
    return jnp.linspace(0.0, sde.T - t_eps, num_steps + 1)


def time_quadratic_grid(sde: AbstractProcess, num_steps: int, t_eps: float
                        ) -> Float[Array, " m"]:
    """Steps uniform in √t, t_i = (√T + i/N (√t_eps - √T))² (DDIM's "quadratic" schedule, Song,
    Meng & Ermon 2021, App. D.2; DPM-Solver's "time_quadratic", Lu et al. 2022)."""
    u = jnp.linspace(0.0, 1.0, num_steps + 1)
    t = (math.sqrt(sde.T) + u * (math.sqrt(t_eps) - math.sqrt(sde.T))) ** 2
    return (sde.T - t).at[0].set(0.0).at[-1].set(sde.T - t_eps)


PROCESS_FREE_GRIDS = ("uniform", "time_quadratic")
"""Grids built in t alone, for any process (the others need a linear SDE's noise ratio)."""

GRIDS = {
    "karras": karras_grid,
    "logsnr": lambda sde, num_steps, t_eps, rho: logsnr_grid(sde, num_steps, t_eps),
    "uniform": lambda sde, num_steps, t_eps, rho: uniform_grid(sde, num_steps, t_eps),
    "time_quadratic": lambda sde, num_steps, t_eps, rho: time_quadratic_grid(sde, num_steps,
                                                                             t_eps),
}
"""Grid name -> builder `(process, num_steps, t_eps, rho) -> increasing solver times`."""


def time_grid(
    sde: AbstractProcess, name: str, num_steps: int, t_eps: float, rho: float = 7.0
) -> Float[Array, " m"]:
    """The grid `name` (one of `GRIDS`) with `num_steps` steps from t = T to t = t_eps.
    "karras" and "logsnr" are built in the noise ratio of a linear SDE; "uniform" and
    "time_quadratic" fit any process."""
    if name not in GRIDS:
        raise ValueError(f"unknown time grid {name!r}; choose one of {tuple(GRIDS)}")
    if name not in PROCESS_FREE_GRIDS:
        if not isinstance(sde, Schedule):
            raise ValueError(f"grid={name!r} is built from the noise schedule of a linear SDE "
                             f"or a Gaussian path; {type(sde).__name__} is not one: use "
                             "grid='uniform', 'time_quadratic' or ts=")
        if isinstance(sde, AbstractProbabilityPath) and sde.pure_noise_prior:
            raise ValueError(f"grid={name!r} spaces the noise ratio r = σ/α up to r(T), which is "
                             f"infinite for {type(sde).__name__} (its prior is pure noise): use "
                             "grid='uniform' (its default), 'time_quadratic' or ts=")
    return GRIDS[name](sde, num_steps, t_eps, rho)


def default_grid(process: AbstractProcess, name: str) -> str:
    """A method's default grid `name` on `process`: "uniform" in t on a path whose prior is
    pure noise (r(T) = ∞, so no noise-ratio grid exists; rectified flow's usual grid, Liu et al.
    2023), else `name`."""
    if (name not in PROCESS_FREE_GRIDS and isinstance(process, AbstractProbabilityPath)
            and process.pure_noise_prior):
        return "uniform"
    return name


def solver_times(
    ts: Float[ArrayLike, "..."], T: float, *, allow_zero: bool = False
) -> tuple[Float[Array, " m"], float]:
    """Check an explicit grid of forward times and convert it to solver time s = T - t.

    `ts` runs from t = T (the prior) down to where generation stops: 1-D, at least two
    points, finite, strictly decreasing, `ts[0] == T` and `ts[-1]` in (0, T) — or [0, T) when
    the velocity is regular at t = 0 (`allow_zero`). `ts[-1]` then plays the role of t_eps.
    Returns `(s, ts[-1])` with s[0] = 0 exactly. Raises a one-line `ValueError` otherwise."""
    t = np.asarray(ts, dtype=float)
    end = "[0" if allow_zero else "(0"
    rule = f"ts must be a 1-D grid of forward times decreasing from T={T} to a t_eps in {end}, T)"
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"{rule}; got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) >= 0):
        raise ValueError(f"{rule}; it is not finite and strictly decreasing")
    if not np.isclose(t[0], T, rtol=1e-12, atol=0.0):
        raise ValueError(f"{rule}; it starts at {t[0]}")
    if not (0.0 <= t[-1] if allow_zero else 0.0 < t[-1]):
        raise ValueError(f"{rule}; it ends at {t[-1]}")
    s = T - jnp.asarray(ts)
    return s.at[0].set(0.0), float(t[-1])


def save_times(save_ts: Float[ArrayLike, " k"] | None, T: float, t_eps: float, dtype
               ) -> Float[Array, " k"] | None:
    """Solver times s = T - t of the forward times `save_ts` at which a sampler returns its
    state (None: only the end point); they must decrease within [t_eps, T]."""
    if save_ts is None:
        return None
    ts = jnp.asarray(save_ts, dtype=dtype)
    if jnp.any(ts < t_eps) or jnp.any(ts > T) or jnp.any(jnp.diff(ts) > 0):
        raise ValueError(f"save_ts must decrease from at most T={T} to at least t_eps={t_eps}")
    return T - ts
