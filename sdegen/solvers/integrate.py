"""The one place sdegen calls `diffrax.diffeqsolve`.

Every sampler and every likelihood goes through `integrate`, which runs the solve with
`throw=False` so a failure never crashes inside a jitted function; `stats_of` counts field
evaluations (NFE) from the solver's step statistics, and `check` turns a failed or non-finite
solve into a one-line `SolverError` that names the option to change. `validate`, `as_solver`
and `adaptive` are the argument checks and the adaptive-solver set-up shared by `sample` and
`log_prob`; a solver is a name of `ADAPTIVE_SOLVERS` or any `diffrax.AbstractSolver` instance.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from ..errors import SolverError
from .base import CountsFieldEvals

ADAPTIVE_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}


def validate(solver: str | diffrax.AbstractSolver, t_eps: float, T: float, *,
             allow_zero: bool = False) -> None:
    """One-line errors for a solver that is neither a name of `ADAPTIVE_SOLVERS` nor a
    `diffrax.AbstractSolver` instance, and for a t_eps outside (0, T) — or [0, T) when the
    process's velocity is regular at t = 0 (`allow_zero`)."""
    if isinstance(solver, str):
        if solver not in ADAPTIVE_SOLVERS:
            raise ValueError(f"unknown ODE solver {solver!r}; choose one of "
                             f"{tuple(ADAPTIVE_SOLVERS)} or pass a diffrax solver instance")
    elif not isinstance(solver, diffrax.AbstractSolver):
        raise ValueError(f"solver must be one of {tuple(ADAPTIVE_SOLVERS)} or a "
                         f"diffrax.AbstractSolver instance, got {solver!r}")
    if allow_zero:
        if not 0.0 <= t_eps < T:
            raise ValueError(f"t_eps must lie in [0, T={T}), got {t_eps}")
    elif not 0.0 < t_eps < T:
        hint = " (the score is singular at t = 0)" if t_eps == 0 else ""
        raise ValueError(f"t_eps must lie in (0, T={T}){hint}, got {t_eps}")


def as_solver(solver: str | diffrax.AbstractSolver) -> diffrax.AbstractSolver:
    """The solver instance for a name of `ADAPTIVE_SOLVERS` (back-compat) or the instance itself."""
    return ADAPTIVE_SOLVERS[solver]() if isinstance(solver, str) else solver


def adaptive(solver: str | diffrax.AbstractSolver, rtol: float, atol: float):
    """(solver, PID controller) for an adaptive ODE solve with per-sample error control.

    `solver` is a name of `ADAPTIVE_SOLVERS` or any `diffrax.AbstractAdaptiveSolver` instance
    (one with an embedded error estimate: Tsit5, Dopri5, Heun, Bosh3, `HalfSolver(Euler())`)."""
    solver = as_solver(solver)
    if not isinstance(solver, diffrax.AbstractAdaptiveSolver):
        raise ValueError(f"{type(solver).__name__} has no error estimate for adaptive steps; "
                         "pass an adaptive solver (e.g. diffrax.Tsit5()), wrap it in "
                         "diffrax.HalfSolver, or give a fixed grid (ts=)")
    controller = diffrax.PIDController(rtol=rtol, atol=atol, norm=batch_max_norm)
    return solver, controller


class SolveStats(NamedTuple):
    """Cost of one solve. `nfe` counts evaluations of the user's field (for a batched solve,
    one evaluation = the field applied to the whole batch once)."""

    nfe: int
    num_steps: int
    num_accepted_steps: int
    num_rejected_steps: int


def batch_max_norm(y: Any) -> jax.Array:
    """Max-norm over every element of a (batched) state: controls the error of each sample,
    not the batch average (an RMS norm lets single samples drift by ~1e-2 where a max-norm keeps
    ~5e-4, at ~2x the NFE)."""
    leaves = [jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(y)]
    return jnp.max(jnp.stack(leaves))


def evals_per_step(solver: diffrax.AbstractSolver) -> tuple[int, int]:
    """(evaluations at init, evaluations per step, accepted or rejected) of the field.

    sdegen's own solvers, and any user solver, say so through a `field_evals` attribute (see
    `solvers.base.CountsFieldEvals`); a transparent wrapper (`diffrax.AbstractWrappedSolver`,
    e.g. `Replacement`) costs what its inner solver costs, `diffrax.HalfSolver` three inner
    steps a step. Explicit RK methods with first-same-as-last (Tsit5, Dopri5, Dopri8, Bosh3)
    evaluate once at init and `stages - 1` times per step, the others (Heun, Midpoint, Ralston)
    `stages` times; Euler once. Anything else raises a one-line `ValueError`."""
    if isinstance(solver, CountsFieldEvals):
        return 0, int(solver.field_evals)
    if type(solver) is diffrax.HalfSolver:  # isinstance would see the wrapped solver
        init, per_step = evals_per_step(solver.solver)
        if init == 0:
            return 0, 3 * per_step
    elif _is_wrapper(solver):
        return evals_per_step(solver.solver)
    elif type(solver) is diffrax.Euler:
        return 0, 1
    elif isinstance(solver, diffrax.AbstractERK):
        stages = len(solver.tableau.c) + 1
        return (1, stages - 1) if solver.tableau.fsal else (0, stages)
    raise ValueError(f"the NFE of {type(solver).__name__} is not known: give the solver a "
                     "`field_evals` attribute (field evaluations per step) or drop return_stats")


def evals_saved(solver: diffrax.AbstractSolver) -> int:
    """Evaluations a whole fixed-grid solve makes fewer than `field_evals` × steps (e.g. EDM's
    skipped last correction), from the solver's optional `evals_saved` attribute."""
    if _is_wrapper(solver):
        return evals_saved(solver.solver)
    return int(getattr(solver, "evals_saved", 0))


def _is_wrapper(solver) -> bool:
    # `diffrax.AbstractWrappedSolver` forwards isinstance to the wrapped solver; look at the MRO
    return diffrax.AbstractWrappedSolver in type(solver).__mro__


def integrate(
    terms: diffrax.AbstractTerm,
    solver: diffrax.AbstractSolver,
    s0: Float[ArrayLike, ""],
    s1: Float[ArrayLike, ""],
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
    nfe = init + per_step * steps - evals_saved(solver)
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

