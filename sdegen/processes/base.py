"""The one interface every process offers the samplers and the likelihood.

A *process* fixes how data is carried to noise on [0, T] (forward time t: data at 0, noise at
T) and a prior at t = T. Given a learned *field* (a score, a velocity, ...) it names the
velocity of its generative ODE; `sdegen.sample(method="ode")`, `sdegen.log_prob`,
`sdegen.encode` and `sdegen.decode` only ever see that velocity. SDEs, flow-matching paths, CNFs
and sphere processes are all `AbstractProcess`es.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray

from ..manifolds import Euclidean, Sphere


class AbstractProcess(eqx.Module):
    """A forward process on [0, T] with a prior at T and a generative ODE."""

    T: eqx.AbstractVar[float]
    regular_at_zero: ClassVar[bool] = False
    """Whether the generative velocity stays finite at t = 0, so that sampling, likelihoods and
    encoding may integrate to t_eps = 0 exactly (true for flows and CNFs, whose field is the
    velocity; false for SDEs, whose score blows up like 1/σ(t))."""

    @property
    def manifold(self) -> Euclidean | Sphere:
        """The space the process lives on (R^d unless a process says otherwise). Samplers
        project ODE velocities onto its tangent spaces and end states onto it, and the
        likelihood takes the divergence on it."""
        return Euclidean()

    @abc.abstractmethod
    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Draw from the prior p_T with the given (possibly batched) shape."""

    @abc.abstractmethod
    def prior_logp(self, z: Float[Array, "*d"]) -> Scalar:
        """Log-density of ONE example under the prior p_T, in nats."""

    @abc.abstractmethod
    def ode_velocity(self, field: Field) -> Field:
        """The velocity v(x, t) = dx/dt, in forward time t, of the ODE that carries p_T back to
        the model's data distribution, built from the learned `field`."""


class AbstractDiffusion(AbstractProcess):
    """A process driven by `dx = f(x, t) dt + g(t) dW` (on a manifold: Brownian motion in its
    metric, `dW` tangent). Its field is the score; `sample(method="sde")` integrates the
    reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6; De Bortoli et al. 2022, Thm. 1)."""

    @abc.abstractmethod
    def drift(self, x: Float[Array, "*d"], t: Scalar) -> Float[Array, "*d"]:
        """The drift f(x, t) (a tangent vector on a manifold)."""

    @abc.abstractmethod
    def diffusion(self, t: Scalar) -> Scalar:
        """The scalar diffusion coefficient g(t)."""
