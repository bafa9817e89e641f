"""What the fixed-grid samplers share: Diffrax solver plumbing for a state stepped in solver time
s = T - t by formulas in the noise ratio r = σ/α of a linear SDE, with the term handed to the
solve evaluating the batched denoiser D at solver time s."""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx

from ..processes import AbstractLinearSDE


class AbstractGridSampler(diffrax.AbstractSolver):
    """A Diffrax solver for the probability-flow ODE of `sde` in data-prediction form, meant for
    a `diffrax.StepTo` grid; `field_evals` is its number of evaluations of D a step (NFE)."""

    sde: eqx.AbstractVar[AbstractLinearSDE]
    field_evals: eqx.AbstractClassVar[int]

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
