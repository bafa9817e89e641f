"""Manifolds the processes live on: Euclidean space R^d and the unit sphere S^2 ⊂ R^3.

Each is a small, stateless `eqx.Module` with the operations the processes, samplers and the
likelihood need, all on ONE point (batch with `jax.vmap`):

- `proj(x)`: nearest point of the manifold (the end state of an ODE solve is projected with it);
- `to_tangent(x, v)`: orthogonal projection of an ambient vector onto the tangent space at x;
- `exp(x, v)`, `log(x, y)`, `dist(x, y)`: Riemannian exponential / logarithm / geodesic distance;
- `uniform(key, shape)`, `log_volume`: the uniform distribution (sphere only; R^d has none);
- `tangent_trace(x, jac)`: the Riemannian divergence of a tangent field from its ambient
  Jacobian, tr(P_x J P_x) (for R^d the ordinary trace).

`Euclidean` is the default of every process, so nothing in R^d changes.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class Euclidean(eqx.Module):
    """Flat R^d: projections are identities, exp/log are vector addition/subtraction."""

    name: str = eqx.field(static=True, default="euclidean")

    def proj(self, x: Float[Array, "*d"]) -> Float[Array, "*d"]:
        return x

    def to_tangent(self, x: Float[Array, "*d"], v: Float[Array, "*d"]) -> Float[Array, "*d"]:
        return v

    def exp(self, x: Float[Array, "*d"], v: Float[Array, "*d"]) -> Float[Array, "*d"]:
        return x + v

    def log(self, x: Float[Array, "*d"], y: Float[Array, "*d"]) -> Float[Array, "*d"]:
        return y - x

    def dist(self, x: Float[Array, "*d"], y: Float[Array, "*d"]) -> Float[Array, ""]:
        return jnp.sqrt(jnp.sum((y - x) ** 2))

    def tangent_trace(self, x: Float[Array, " d"], jac: Float[Array, "d d"]) -> Float[Array, ""]:
        return jnp.trace(jac)


class Sphere(eqx.Module):
    """The unit 2-sphere S^2 = {x ∈ R^3 : |x| = 1} with the round metric.

    Formulas (e.g. Absil, Mahony & Sepulchre 2008, *Optimization Algorithms on Matrix
    Manifolds*, Ex. 5.4.1): P_x = I − x xᵀ, exp_x(v) = cos|v| x + sin|v| v/|v|,
    log_x(y) = θ (y − cosθ x)/|y − cosθ x| with θ = arccos⟨x, y⟩, area 4π. Points slightly
    off the sphere (ODE states between projections) are handled by normalising x first.
    """

    name: str = eqx.field(static=True, default="sphere")

    @property
    def log_volume(self) -> float:
        """log of the area of S^2, log 4π."""
        return math.log(4 * math.pi)

    def proj(self, x: Float[Array, " 3"]) -> Float[Array, " 3"]:
        return x / jnp.linalg.norm(x)

    def to_tangent(self, x: Float[Array, " 3"], v: Float[Array, " 3"]) -> Float[Array, " 3"]:
        n = x / jnp.linalg.norm(x)
        return v - jnp.dot(n, v) * n

    def exp(self, x: Float[Array, " 3"], v: Float[Array, " 3"]) -> Float[Array, " 3"]:
        r2 = jnp.sum(v**2)
        small = r2 < 1e-24
        r = jnp.sqrt(jnp.where(small, 1.0, r2))
        sinc = jnp.where(small, 1.0, jnp.sin(r) / r)
        y = jnp.where(small, 1.0 - 0.5 * r2, jnp.cos(r)) * x + sinc * v
        return y / jnp.linalg.norm(y)

    def log(self, x: Float[Array, " 3"], y: Float[Array, " 3"]) -> Float[Array, " 3"]:
        c = jnp.clip(jnp.dot(x, y), -1.0, 1.0)
        w = y - c * x
        nw = jnp.linalg.norm(w)
        theta = jnp.arccos(c)
        safe = nw > 1e-12
        return jnp.where(safe, theta / jnp.where(safe, nw, 1.0), 1.0) * w

    def dist(self, x: Float[Array, " 3"], y: Float[Array, " 3"]) -> Float[Array, ""]:
        # atan2 of |x × y| and x·y is accurate at all angles (arccos loses digits near 0, π)
        return jnp.arctan2(jnp.linalg.norm(jnp.cross(x, y)), jnp.dot(x, y))

    def uniform(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Uniform points on S^2: normalised standard Gaussians; `shape` ends in 3."""
        if not shape or shape[-1] != 3:
            raise ValueError(f"points on S^2 have 3 coordinates: shape must end in 3, got {shape}")
        z = jax.random.normal(key, shape)
        return z / jnp.linalg.norm(z, axis=-1, keepdims=True)

    def tangent_trace(self, x: Float[Array, " 3"], jac: Float[Array, "3 3"]) -> Float[Array, ""]:
        """Riemannian divergence of a tangent field at x from its ambient Jacobian J:
        div v = tr(P_x J P_x) = tr(P_x J) (the field's extension off the sphere is irrelevant)."""
        n = x / jnp.linalg.norm(x)
        return jnp.trace(jac) - n @ jac @ n
