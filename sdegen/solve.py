"""The one place sdegen calls `diffrax.diffeqsolve`.

Every sampler and every likelihood goes through `integrate`, which runs the solve with
`throw=False` so a failure never crashes inside a jitted function; `stats_of` counts field
evaluations (NFE) from the solver's step statistics, and `check` turns a failed or non-finite
solve into a one-line `SolverError` that names the option to change. `validate` and `adaptive`
are the argument checks and the adaptive-solver set-up shared by `sample` and `log_prob`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .errors import SolverError

ADAPTIVE_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}


def validate(solver: str, t_eps: float, T: float, *, allow_zero: bool = False) -> None:
    """One-line errors for an unknown adaptive solver name or a t_eps outside (0, T) — or
    [0, T) when the process's velocity is regular at t = 0 (`allow_zero`)."""
    if solver not in ADAPTIVE_SOLVERS:
        raise ValueError(f"unknown ODE solver {solver!r}; choose one of {tuple(ADAPTIVE_SOLVERS)}")
    if allow_zero:
        if not 0.0 <= t_eps < T:
            raise ValueError(f"t_eps must lie in [0, T={T}), got {t_eps}")
    elif not 0.0 < t_eps < T:
        hint = " (the score is singular at t = 0)" if t_eps == 0 else ""
        raise ValueError(f"t_eps must lie in (0, T={T}){hint}, got {t_eps}")


def adaptive(solver: str, rtol: float, atol: float):
    """(solver, PID controller) for an adaptive ODE solve with per-sample error control."""
    controller = diffrax.PIDController(rtol=rtol, atol=atol, norm=batch_max_norm)
    return ADAPTIVE_SOLVERS[solver](), controller


class SolveStats(NamedTuple):
    """Cost of one solve. `nfe` counts evaluations of the user's field (for a batched solve,
    one evaluation = the field applied to the whole batch once)."""

    nfe: int
    num_steps: int
    num_accepted_steps: int
    num_rejected_steps: int


def batch_max_norm(y: Any) -> jax.Array:
    """Max-norm over every element of a (batched) state: controls the error of each sample,
    not the batch average (an RMS norm lets single samples drift: ~1e-2 error, against ~5e-4
    for the max-norm at ~2x the NFE)."""
    leaves = [jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(y)]
    return jnp.max(jnp.stack(leaves))


def evals_per_step(solver: diffrax.AbstractSolver) -> tuple[int, int]:
    """(evaluations at init, evaluations per step, accepted or rejected) of the field.

    Explicit RK methods with first-same-as-last (Tsit5, Dopri5, Dopri8) evaluate once at init
    and `stages - 1` times per step; Euler once per step; sdegen's own solvers say so through
    a `field_evals` attribute."""
    if hasattr(solver, "field_evals"):
        return 0, solver.field_evals
    if isinstance(solver, diffrax.Euler):
        return 0, 1
    if isinstance(solver, diffrax.Heun):
        return 0, 2
    if isinstance(solver, diffrax.AbstractERK):
        stages = len(solver.tableau.c) + 1
        fsal = solver.tableau.fsal
        return (1, stages - 1) if fsal else (0, stages)
    raise NotImplementedError(f"NFE count for {type(solver).__name__} is not known")


def integrate(
    terms: diffrax.AbstractTerm,
    solver: diffrax.AbstractSolver,
    s0: float,
    s1: float,
    y0: Any,
    *,
    dt0: float | None,
    controller: diffrax.AbstractStepSizeController,
    max_steps: int,
    saveat: diffrax.SaveAt | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    args: Any = None,
    progress: bool = False,
) -> diffrax.Solution:
    """Traceable wrapper around `diffrax.diffeqsolve` with `throw=False`; call `check` on the
    result outside jit."""
    return diffrax.diffeqsolve(
        terms,
        solver,
        s0,
        s1,
        dt0,
        y0,
        args=args,
        saveat=saveat if saveat is not None else diffrax.SaveAt(t1=True),
        stepsize_controller=controller,
        adjoint=adjoint if adjoint is not None else diffrax.RecursiveCheckpointAdjoint(),
        max_steps=max_steps,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


def stats_of(sol: diffrax.Solution, solver: diffrax.AbstractSolver) -> SolveStats:
    """NFE from step counts (checked against counted field calls in the tests: Diffrax's
    initial step-size selection with dt0=None costs no extra evaluation of the field)."""
    init, per_step = evals_per_step(solver)
    steps = int(sol.stats["num_steps"])
    nfe = init + per_step * steps
    return SolveStats(
        nfe=nfe,
        num_steps=steps,
        num_accepted_steps=int(sol.stats["num_accepted_steps"]),
        num_rejected_steps=int(sol.stats["num_rejected_steps"]),
    )


def check(sol: diffrax.Solution, what: str, *, max_steps: int, hint: str) -> None:
    """Raise a one-line `SolverError` if the solve failed or produced non-finite values.

    `what` names the computation ("sample(method='ode')"), `hint` the options to change."""
    result = sol.result
    if result != diffrax.RESULTS.successful:
        if result == diffrax.RESULTS.max_steps_reached:
            raise SolverError(
                f"{what}: the solver hit its step limit (max_steps={max_steps}); "
                f"raise max_steps or {hint}"
            )
        msg = str(result).partition("<")[2].rstrip(">") or str(result)
        raise SolverError(f"{what}: the solve failed ({msg}); {hint}")
    ys = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(sol.ys)]
    if not all(np.all(np.isfinite(y)) for y in ys):
        raise SolverError(
            f"{what}: the solution contains NaN or inf; {hint} (check the field for "
            "non-finite outputs near t_eps)"
        )

