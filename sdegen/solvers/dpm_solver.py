"""Exponential-integrator samplers for the probability-flow ODE in data-prediction form:
DDIM (Song, Meng & Ermon 2021) and DPM-Solver++(2M) (Lu et al. 2022b, "DPM-Solver++: Fast
solver for guided sampling of diffusion probabilistic models"), as Diffrax solvers.

With λ = log(α/σ) (the half log-SNR) and D the data prediction (`processes.denoiser`), the
PF-ODE of a linear SDE solves exactly as
x_{t1} = (σ1/σ0) x_{t0} + σ1 ∫ e^{λ} D dλ over [λ0, λ1] (Lu et al. 2022b, eq. 8); the solvers
differ in how they approximate D over the step. They step on a `diffrax.StepTo` grid in solver
time s = T - t and the term handed to the solve evaluates the batched denoiser at solver time s.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax
import jax.numpy as jnp

from ..processes import AbstractLinearSDE
from .base import AbstractGridSampler


class DDIM(AbstractGridSampler):
    """Deterministic DDIM (η = 0; Song, Meng & Ermon 2021, eq. 12; Lu et al. 2022b, eq. 9 with
    D held constant): x1 = (σ1/σ0) x0 + α1 (1 - e^{-h}) D(x0, t0), h = λ1 - λ0.
    First order; one field evaluation a step."""

    sde: AbstractLinearSDE

    field_evals: ClassVar[int] = 1

    def order(self, terms):
        return 1

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump, solver_state
        sde, T = self.sde, self.sde.T
        d0 = terms.vf(t0, y0, args)
        r0, r1 = sde.noise_ratio(T - t0), sde.noise_ratio(T - t1)  # e^{-λ}
        y1 = (sde.std(T - t1) / sde.std(T - t0)) * y0 + sde.alpha(T - t1) * (1.0 - r1 / r0) * d0
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful


class DPMSolverPP2M(AbstractGridSampler):
    """DPM-Solver++(2M), multistep second order (Lu et al. 2022b, Algorithm 2):
    x1 = (σ1/σ0) x0 - α1 (e^{-h} - 1) [(1 + 1/(2q)) D0 - 1/(2q) D_prev], q = h_prev / h,
    with D_prev and h_prev from the previous step kept in the solver state; the first step has
    no history and is DDIM. One field evaluation a step."""

    sde: AbstractLinearSDE

    field_evals: ClassVar[int] = 1

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return jnp.zeros_like(y0), jnp.zeros((), y0.dtype), jnp.array(False)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        sde, T = self.sde, self.sde.T
        d_prev, h_prev, has_prev = solver_state
        d0 = terms.vf(t0, y0, args)
        h = jnp.log(sde.noise_ratio(T - t0)) - jnp.log(sde.noise_ratio(T - t1))
        q = jnp.where(has_prev, h_prev / h, 1.0)
        d = jnp.where(has_prev, (1.0 + 0.5 / q) * d0 - (0.5 / q) * d_prev, d0)
        y1 = (sde.std(T - t1) / sde.std(T - t0)) * y0 - sde.alpha(T - t1) * jnp.expm1(-h) * d
        state = (d0, h.astype(y0.dtype), jnp.array(True))
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful
