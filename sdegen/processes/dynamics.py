"""The generative dynamics a forward SDE induces from a score field.

A *field* is any callable on ONE example, `field(x, t) -> array shaped like x`; for an SDE it is
the score ∇ₓ log p_t(x). Dynamics are returned in forward time t (data at t = 0, noise at T);
the samplers integrate them in solver time s = T - t (see `sdegen.sample`).
"""

from __future__ import annotations

from ..typing import Field
from .base import AbstractDiffusion
from .paths import AbstractProbabilityPath
from .sde import AbstractLinearSDE, AbstractSDE


def reverse_drift(sde: AbstractDiffusion, score: Field) -> Field:
    """Drift of the reverse-time SDE, dx = [f(x,t) - g(t)² ∇log p_t(x)] dt + g(t) dW̄
    (Anderson 1982; Song et al. 2021, eq. 6), in forward time t."""

    def drift(x, t):
        return sde.drift(x, t) - sde.diffusion(t) ** 2 * score(x, t)

    return drift


def probability_flow(sde: AbstractSDE, score: Field) -> Field:
    """Velocity of the probability-flow ODE, dx/dt = f(x,t) - ½ g(t)² ∇log p_t(x), whose
    marginals equal the SDE's (Song et al. 2021, eq. 13)."""

    def velocity(x, t):
        return sde.drift(x, t) - 0.5 * sde.diffusion(t) ** 2 * score(x, t)

    return velocity


def denoiser(sde: AbstractLinearSDE | AbstractProbabilityPath, score: Field) -> Field:
    """The data prediction D(x, t) = E[x0 | x_t = x] = (x + σ(t)² ∇log p_t(x)) / α(t) (Tweedie's
    formula; Karras et al. 2022, eq. 3; the x0-prediction of DPM-Solver++, Lu et al. 2022b,
    eq. 7). With r = σ/α the probability-flow ODE of every linear SDE is
    d(x/α)/dr = (x/α - D(x, t)) / r (Karras et al. 2022, eq. 4 with s = α; Song, Meng & Ermon
    2021, eq. 14), the form the fixed-grid samplers of `sdegen.solvers` discretise.

    For a flow-matching path x_t = a x0 + b ε (`AbstractProbabilityPath`) the field is the
    velocity and D is its x0-prediction (`AbstractProbabilityPath.data_prediction`): the
    generative ODE is then the same equation with α = a, σ = b, so the same samplers step it."""
    if isinstance(sde, AbstractProbabilityPath):
        return sde.data_prediction(score)

    def data_prediction(x, t):
        return (x + sde.std(t) ** 2 * score(x, t)) / sde.alpha(t)

    return data_prediction
