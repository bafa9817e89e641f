"""The one interface every process offers the samplers and the likelihood.

A *process* fixes how data is carried to noise on [0, T] (forward time t: data at 0, noise at
T) and a prior at t = T. Given a learned *field* (a score, a velocity, ...) it names the
velocity of its generative ODE; `sdegen.sample(method="ode")`, `sdegen.log_prob`,
`sdegen.encode` and `sdegen.decode` only ever see that velocity. SDEs, flow-matching paths, CNFs
and sphere processes are all `AbstractProcess`es.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

Scalar = Float[ArrayLike, ""]
Field = Callable[[Float[Array, "*d"], Float[Array, ""]], Float[Array, "*d"]]


class AbstractProcess(eqx.Module):
    """A forward process on [0, T] with a prior at T and a generative ODE."""

    T: eqx.AbstractVar[float]
    regular_at_zero: ClassVar[bool] = False
    """Whether the generative velocity stays finite at t = 0, so that sampling, likelihoods and
    encoding may integrate to t_eps = 0 exactly (true for flows and CNFs, whose field is the
    velocity; false for SDEs, whose score blows up like 1/σ(t))."""

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
