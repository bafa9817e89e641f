"""Riemannian flow matching on S^2 with geodesic conditional paths (Chen & Lipman 2023/2024,
"Flow Matching on General Geometries", ICLR 2024; here RFM).

Forward time t runs data (t = 0) → uniform noise (t = T), as for every sdegen process. The
conditional path from a data point x0 to a noise point x1 is the constant-speed geodesic
x_t = exp_{x0}((t/T) log_{x0}(x1)) (RFM eq. 16 with the geodesic premetric), whose velocity is
u_t(x_t | x0, x1) = log_{x_t}(x1)/(T − t) = −log_{x_t}(x0)/t. The field is the marginal
velocity; the generative ODE runs it backwards from the uniform prior.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..manifolds import Sphere
from ..typing import Field, Scalar
from .base import AbstractProcess

_SPHERE = Sphere()


class SphereGeodesicPath(AbstractProcess):
    """Geodesic probability path on S^2 between data (t = 0) and the uniform prior (t = T)."""

    T: float = 1.0

    @property
    def manifold(self) -> Sphere:
        return _SPHERE

    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Uniform points on S^2."""
        return _SPHERE.uniform(key, shape)

    def prior_logp(self, z: Float[Array, " 3"]) -> Scalar:
        """The uniform density on S^2: −log 4π."""
        return jnp.full((), -_SPHERE.log_volume, z.dtype)

    def conditional(
        self, x0: Float[Array, " 3"], x1: Float[Array, " 3"], t: Scalar
    ) -> tuple[Float[Array, " 3"], Float[Array, " 3"]]:
        """(x_t, u_t): the point at time t on the geodesic x0 → x1 and its velocity (RFM eq. 16);
        the two algebraically equal forms of u_t are used where each is well conditioned."""
        x_t = _SPHERE.exp(x0, (t / self.T) * _SPHERE.log(x0, x1))
        late = t > 0.5 * self.T
        u_late = -_SPHERE.log(x_t, x0) / jnp.where(late, t, 1.0)
        u_early = _SPHERE.log(x_t, x1) / jnp.where(late, 1.0, self.T - t)
        return x_t, jnp.where(late, u_late, u_early)

    def sample_conditional(
        self, key: PRNGKeyArray, x0: Float[Array, " 3"], t: Scalar
    ) -> tuple[Float[Array, " 3"], Float[Array, " 3"]]:
        """Draw x1 uniform and return (x_t, u_t) of `conditional`."""
        x1 = _SPHERE.uniform(key, (3,)).astype(x0.dtype)
        return self.conditional(x0, x1, t)

    def ode_velocity(self, field: Field) -> Field:
        """The learned velocity, projected onto T_x S^2 (RFM, Sec. 3.2)."""

        def velocity(x, t):
            return _SPHERE.to_tangent(x, field(x, t))

        return velocity


