"""Fixed time grids for the few-step samplers, as increasing solver times s = T - t (a
`diffrax.StepTo` controller's `ts`). Grids are built in the noise ratio r = σ/α of the process
(`AbstractLinearSDE.noise_ratio`) and mapped back to t through its closed-form inverse, so the same
grid means the same noise levels for VP, sub-VP and VE."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..processes import AbstractLinearSDE

GRIDS = ("karras", "logsnr", "uniform")


def _to_solver_time(sde: AbstractLinearSDE, r: Array, t_eps: float) -> Array:
    t = sde.time_of_noise_ratio(r)
    t = t.at[0].set(sde.T).at[-1].set(t_eps)  # endpoints exact, not round-tripped
    return sde.T - t


def karras_grid(
    sde: AbstractLinearSDE, num_steps: int, t_eps: float, rho: float = 7.0
) -> Float[Array, " m"]:
    """Karras et al. 2022, eq. 5: r_i = (r_max^{1/ρ} + i/N (r_min^{1/ρ} - r_max^{1/ρ}))^ρ,
    i = 0..N, between r_max = r(T) and r_min = r(t_eps); ρ = 7 concentrates steps at low noise."""
    r_max, r_min = sde.noise_ratio(sde.T), sde.noise_ratio(t_eps)
    u = jnp.linspace(0.0, 1.0, num_steps + 1)
    r = (r_max ** (1 / rho) + u * (r_min ** (1 / rho) - r_max ** (1 / rho))) ** rho
    return _to_solver_time(sde, r, t_eps)


def logsnr_grid(sde: AbstractLinearSDE, num_steps: int, t_eps: float) -> Float[Array, " m"]:
    """Steps uniform in the half log-SNR λ = -log r (Lu et al. 2022, DPM-Solver, Sec. 3.3)."""
    log_r = jnp.linspace(jnp.log(sde.noise_ratio(sde.T)), jnp.log(sde.noise_ratio(t_eps)),
                         num_steps + 1)
    return _to_solver_time(sde, jnp.exp(log_r), t_eps)


def uniform_grid(sde: AbstractLinearSDE, num_steps: int, t_eps: float) -> Float[Array, " m"]:
    """Steps uniform in t (DDIM's and Song et al.'s default)."""
    return jnp.linspace(0.0, sde.T - t_eps, num_steps + 1)


def time_grid(
    sde: AbstractLinearSDE, name: str, num_steps: int, t_eps: float, rho: float = 7.0
) -> Float[Array, " m"]:
    """The grid `name` (one of `GRIDS`) with `num_steps` steps from t = T to t = t_eps."""
    if name == "karras":
        return karras_grid(sde, num_steps, t_eps, rho)
    if name == "logsnr":
        return logsnr_grid(sde, num_steps, t_eps)
    if name == "uniform":
        return uniform_grid(sde, num_steps, t_eps)
    raise ValueError(f"unknown time grid {name!r}; choose one of {GRIDS}")
