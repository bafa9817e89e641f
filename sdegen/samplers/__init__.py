"""Few-step samplers for linear SDEs on fixed time grids: EDM Heun and its stochastic "churn"
variant, DDIM and DPM-Solver++(2M). Each is a Diffrax solver stepping a `diffrax.StepTo` grid, so
`sdegen.sample` runs them through its one solve call site; `build` picks solver and grid."""

from __future__ import annotations

import diffrax
import jax
from jaxtyping import PRNGKeyArray

from ..processes import AbstractLinearSDE
from .dpm_solver import DDIM, DPMSolverPP2M
from .edm import EDMSampler
from .grids import GRIDS, karras_grid, logsnr_grid, time_grid, uniform_grid

DEFAULT_GRID = {"edm_heun": "karras", "edm_churn": "karras", "ddim": "karras", "dpm2m": "karras"}
"""The few-step methods of `sdegen.sample` and the time grid each uses unless told otherwise."""


def build(
    method: str,
    sde: AbstractLinearSDE,
    key: PRNGKeyArray,
    *,
    num_steps: int,
    t_eps: float,
    grid: str | None = None,
    rho: float = 7.0,
    churn: float = 10.0,
) -> tuple[diffrax.AbstractSolver, diffrax.StepTo]:
    """(solver, StepTo controller) for the few-step `method` (a key of `DEFAULT_GRID`)."""
    ts = time_grid(sde, grid or DEFAULT_GRID[method], num_steps, t_eps, rho)
    if method == "edm_heun":
        solver = EDMSampler(sde)
    elif method == "edm_churn":
        solver = EDMSampler(sde, key=jax.random.fold_in(key, 2), churn=churn, num_steps=num_steps)
    elif method == "ddim":
        solver = DDIM(sde)
    elif method == "dpm2m":
        solver = DPMSolverPP2M(sde)
    else:
        raise ValueError(f"unknown few-step method {method!r}; choose one of {tuple(DEFAULT_GRID)}")
    return solver, diffrax.StepTo(ts=ts)


__all__ = [
    "DEFAULT_GRID",
    "GRIDS",
    "DDIM",
    "DPMSolverPP2M",
    "EDMSampler",
    "build",
    "karras_grid",
    "logsnr_grid",
    "time_grid",
    "uniform_grid",
]
