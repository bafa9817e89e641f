"""Deprecated: the few-step samplers moved to `sdegen.solvers` (`edm`, `dpm_solver`, `grids`;
the method table is `sdegen.solvers.METHODS`). This module re-exports the old names."""

from __future__ import annotations

import warnings

import diffrax

from ..solvers import (
    DDIM,
    GRIDS,
    METHODS,
    DPMSolverPP2M,
    EDMSampler,
    Options,
    karras_grid,
    logsnr_grid,
    time_grid,
    uniform_grid,
)

DEFAULT_GRID = {name: m.grid for name, m in METHODS.items() if m.terms == "denoiser"}


def build(method, sde, key, *, num_steps, t_eps, grid=None, rho=7.0, churn=10.0):
    """(solver, StepTo controller) for the few-step `method`, as `sdegen.sample` builds them."""
    if method not in DEFAULT_GRID:
        raise ValueError(f"unknown few-step method {method!r}; choose one of {tuple(DEFAULT_GRID)}")
    solver = METHODS[method].solver(sde, None, key, Options(num_steps, 0.0, 0, churn))
    ts = time_grid(sde, grid or DEFAULT_GRID[method], num_steps, t_eps, rho)
    return solver, diffrax.StepTo(ts=ts)


__all__ = ["DEFAULT_GRID", "GRIDS", "DDIM", "DPMSolverPP2M", "EDMSampler", "build",
           "karras_grid", "logsnr_grid", "time_grid", "uniform_grid"]

warnings.warn("`sdegen.samplers` is deprecated: import from `sdegen.solvers` instead",
              DeprecationWarning, stacklevel=2)
