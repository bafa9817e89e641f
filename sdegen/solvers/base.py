"""What sdegen's samplers share as Diffrax solvers.

`CountsFieldEvals` is the one thing `integrate.evals_per_step` asks of a solver it does not
know: `field_evals`, the evaluations of the user's field per step (NFE = field_evals × steps),
which Diffrax's `sol.stats` does not report. Any solver — sdegen's or a user's — that has the
attribute is counted exactly. `AbstractGridSampler` is the base of the fixed-grid samplers for
linear SDEs: a state stepped in solver time s = T - t by formulas in the noise ratio r = σ/α,
with the term handed to the solve evaluating the batched denoiser D at solver time s.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import diffrax
import equinox as eqx

from ..processes import AbstractLinearSDE


@runtime_checkable
class CountsFieldEvals(Protocol):
    """A solver that states its number of field evaluations per step (its NFE per step)."""

    @property
    def field_evals(self) -> int: ...


class AbstractGridSampler(diffrax.AbstractSolver):
    """A Diffrax solver for the probability-flow ODE of `sde` in data-prediction form, meant for
    a `diffrax.StepTo` grid; `field_evals` is its number of evaluations of D a step (NFE).
    Subclass it (outside sdegen too) and pass an instance as `sdegen.sample(..., solver=)` with
    one of the few-step methods, whose terms are the denoiser."""

    sde: eqx.AbstractVar[AbstractLinearSDE]
    field_evals: eqx.AbstractClassVar[int]

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
