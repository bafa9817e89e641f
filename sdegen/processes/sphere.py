"""Brownian motion on the unit sphere S^2 with a time change, its heat kernel and score
(De Bortoli, Mathieu, Hutchinson, Thornton, Teh & Doucet 2022, "Riemannian Score-Based
Generative Modelling", NeurIPS; here RSGM).

Conventions. The heat kernel K_τ(x, y) is the density (w.r.t. area) of e^{τΔ}, i.e. it solves
∂_τ K = Δ K. The forward process is dX_t = √β(t) dB_t with B a standard Brownian motion on S^2
(generator ½Δ), so p_t(x | x0) = K_{τ(t)}(x0, x) with τ(t) = ½ ∫₀ᵗ β(s) ds and the linear
schedule β(t) = β_min + t (β_max − β_min). As t grows p_t tends to the uniform density
1/(4π) at the rate e^{−2τ} (the first non-zero eigenvalue of −Δ is 2).

Two expansions of K_τ (RSGM, Sec. 3.3 and App. B):

- **Legendre / eigenfunction series** (exact, converges fast for large τ):
  K_τ(x, y) = Σ_l (2l+1)/(4π) e^{−l(l+1)τ} P_l(⟨x, y⟩).
- **Varadhan / short-time** (accurate for small τ):
  K_τ ≈ (4πτ)^{-1} (d/sin d)^{1/2} e^{−d²/(4τ)} e^{τ/3}, d = d(x, y), the leading
  Minakshisundaram–Pleijel term (van Vleck factor (d/sin d)^{1/2}; e^{τ/3} = e^{τ R/6} with
  scalar curvature R = 2 fixes the diagonal to first order); its score is
  log_x(y) [1/(2τ) − (1/d − cot d)/(2d)] ≈ log_x(y)/(2τ) (Varadhan's formula).

`heat_kernel_log_prob` / `heat_kernel_score` use the series for τ ≥ `TAU_SWITCH` (64 terms make
the truncation error below e^{−80}) and the short-time form below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..manifolds import Sphere
from ..typing import Field, Scalar
from .base import AbstractDiffusion

TAU_SWITCH = 0.02
N_LEGENDRE = 64
_SPHERE = Sphere()


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def legendre_series(
    c: Float[ArrayLike, ""], tau: Float[ArrayLike, ""], n_terms: int = N_LEGENDRE
) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
    """(S, S', G) with S(c) = Σ_{l<L} (2l+1) e^{−l(l+1)τ} P_l(c) = 4π K_τ, its derivative
    S'(c) in c = ⟨x, y⟩, and the cap mass G(c) = ∫_{−1}^{c} S(u) du / 2 = P(⟨x, X⟩ ≤ c)
    (using ∫_{−1}^{c} P_l = (P_{l+1} − P_{l−1})/(2l+1)). Bonnet's recurrence
    (l+1) P_{l+1} = (2l+1) c P_l − l P_{l−1} and P'_{l+1} = P'_{l−1} + (2l+1) P_l."""
    c = jnp.asarray(c)
    tau = jnp.asarray(tau, c.dtype)
    one = jnp.ones_like(c)

    def body(carry, ell):
        p_prev, p, dp_prev, dp, s, ds, g = carry
        lf = ell.astype(c.dtype)
        w = jnp.exp(-lf * (lf + 1) * tau)
        p_next = ((2 * lf + 1) * c * p - lf * p_prev) / (lf + 1)
        dp_next = dp_prev + (2 * lf + 1) * p
        s = s + (2 * lf + 1) * w * p
        ds = ds + (2 * lf + 1) * w * dp
        g = g + 0.5 * w * (p_next - p_prev)
        return (p, p_next, dp, dp_next, s, ds, g), None

    # l = 0 term by hand: P_0 = 1, P_0' = 0, ∫P_0 = c + 1; then l = 1 … L−1.
    init = (one, c, jnp.zeros_like(c), one, one, jnp.zeros_like(c), 0.5 * (c + 1))
    (_, _, _, _, s, ds, g), _ = jax.lax.scan(body, init, jnp.arange(1, n_terms))
    return s, ds, g


def varadhan_log_heat_kernel(
    d: Float[ArrayLike, ""], tau: Float[ArrayLike, ""]
) -> Float[Array, ""]:
    """Short-time log K_τ at geodesic distance d (module docstring; RSGM App. B)."""
    d = jnp.clip(jnp.asarray(d), 0.0, math.pi - 1e-3)
    small = d < 1e-4
    ds = jnp.where(small, 1.0, d)
    half_log_vv = jnp.where(small, d**2 / 12.0, 0.5 * jnp.log(ds / jnp.sin(ds)))
    return -jnp.log(4 * math.pi * tau) - d**2 / (4 * tau) + half_log_vv + tau / 3.0


def _varadhan_coef(d, tau):
    """1/(2τ) − (1/d − cot d)/(2d), the factor multiplying log_x(y) in the short-time score."""
    d = jnp.clip(d, 0.0, math.pi - 1e-3)
    small = d < 1e-3
    ds = jnp.where(small, 1.0, d)
    ratio = jnp.where(small, 1.0 / 3.0 + d**2 / 45.0, (1.0 / ds - 1.0 / jnp.tan(ds)) / ds)
    return 1.0 / (2 * tau) - 0.5 * ratio


def heat_kernel_log_prob(
    x: Float[Array, " 3"], y: Float[Array, " 3"], tau: Float[ArrayLike, ""]
) -> Float[Array, ""]:
    """log K_τ(x, y), density w.r.t. area on S^2: Legendre series for τ ≥ TAU_SWITCH,
    Varadhan short-time form below (RSGM, Sec. 3.3)."""
    tau = jnp.asarray(tau, x.dtype)
    c = jnp.clip(jnp.dot(x, y), -1.0, 1.0)
    s, _, _ = legendre_series(c, jnp.maximum(tau, TAU_SWITCH))
    series = jnp.log(jnp.maximum(s, 1e-300)) - math.log(4 * math.pi)
    short = varadhan_log_heat_kernel(_SPHERE.dist(x, y), jnp.minimum(tau, TAU_SWITCH))
    return jnp.where(tau >= TAU_SWITCH, series, short)


def heat_kernel_score(
    x: Float[Array, " 3"], y: Float[Array, " 3"], tau: Float[ArrayLike, ""]
) -> Float[Array, " 3"]:
    """Riemannian gradient ∇_x log K_τ(y, x) (a tangent vector at x): (S'/S) P_x y from the
    series for τ ≥ TAU_SWITCH, the Varadhan form log_x(y)[1/(2τ) − …] below (RSGM, Sec. 3.3)."""
    tau = jnp.asarray(tau, x.dtype)
    c = jnp.clip(jnp.dot(x, y), -1.0, 1.0)
    s, ds, _ = legendre_series(c, jnp.maximum(tau, TAU_SWITCH))
    series = ds / jnp.maximum(s, 1e-300) * _SPHERE.to_tangent(x, y)
    short = _varadhan_coef(_SPHERE.dist(x, y), jnp.minimum(tau, TAU_SWITCH)) * _SPHERE.log(x, y)
    return jnp.where(tau >= TAU_SWITCH, series, short)


def heat_kernel_sample(
    key: PRNGKeyArray, x0: Float[Array, " 3"], tau: Float[ArrayLike, ""]
) -> Float[Array, " 3"]:
    """One draw from K_τ(x0, ·). For τ ≥ TAU_SWITCH exactly: c = ⟨x0, X⟩ by inverting the
    series cap mass G(c) by bisection (60 halvings), the azimuth uniform. Below, one geodesic
    random-walk step exp_{x0}(√(2τ) P z) (RSGM, Alg. 1 with one step; O(τ) error)."""
    tau = jnp.asarray(tau, x0.dtype)
    k_u, k_dir = jax.random.split(key)
    u = jax.random.uniform(k_u, (), x0.dtype)
    z = _SPHERE.to_tangent(x0, jax.random.normal(k_dir, (3,), x0.dtype))
    tau_series = jnp.maximum(tau, TAU_SWITCH)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = legendre_series(mid, tau_series)[2] < u
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 60, bisect, (-jnp.ones((), x0.dtype), jnp.ones((), x0.dtype)))
    c = 0.5 * (lo + hi)
    direction = z / jnp.maximum(jnp.linalg.norm(z), 1e-30)
    exact = c * x0 + jnp.sqrt(jnp.maximum(1.0 - c**2, 0.0)) * direction
    walk = _SPHERE.exp(x0, jnp.sqrt(2.0 * jnp.minimum(tau, TAU_SWITCH)) * z)
    return jnp.where(tau >= TAU_SWITCH, exact, walk)


class SphereBrownian(AbstractDiffusion):
    """Time-changed Brownian motion dX = √β(t) dB on S^2, β(t) = β_min + t(β_max − β_min)
    (RSGM, Sec. 3; the Riemannian analogue of the VE SDE). Uniform prior on S^2.

    Its field is the score ∇ log p_t (a tangent vector). Generative dynamics:

    - probability flow (RSGM, Sec. 3.2 / Song et al. 2021 eq. 13 on a manifold):
      dx/dt = −½ β(t) ∇ log p_t(x), projected onto T_x S^2;
    - reverse SDE: dY = β ∇ log p dt + √β dB in solver time, sampled by the reverse geodesic
      random walk (RSGM, Alg. 2; `sdegen.solvers.GeodesicRandomWalk`).

    The defaults give τ(T) = 6.0, where p_T is uniform to e^{−12} ≈ 6e-6 relative error.
    """

    beta_min: float = 1e-3
    beta_max: float = 24.0
    T: float = 1.0

    def __check_init__(self):
        _check_positive("beta_min", self.beta_min)
        _check_positive("beta_max", self.beta_max)

    @property
    def manifold(self) -> Sphere:
        return _SPHERE

    def beta(self, t: Scalar) -> Scalar:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def tau(self, t: Scalar) -> Scalar:
        """Heat-kernel time τ(t) = ½ ∫₀ᵗ β = ½ (β_min t + ½ (β_max − β_min) t²)."""
        return 0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)

    def drift(self, x: Float[Array, " 3"], t: Scalar) -> Float[Array, " 3"]:
        return jnp.zeros_like(x)

    def diffusion(self, t: Scalar) -> Scalar:
        return jnp.sqrt(self.beta(t))

    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Uniform points on S^2."""
        return _SPHERE.uniform(key, shape)

    def prior_logp(self, z: Float[Array, " 3"]) -> Scalar:
        """The uniform density on S^2: −log 4π."""
        return jnp.full((), -_SPHERE.log_volume, z.dtype)

    def marginal_sample(
        self, key: PRNGKeyArray, x0: Float[Array, " 3"], t: Scalar
    ) -> Float[Array, " 3"]:
        """x_t ~ p_t(· | x0) = K_{τ(t)}(x0, ·) (see `heat_kernel_sample`)."""
        return heat_kernel_sample(key, x0, self.tau(t))

    def conditional_score(
        self, x: Float[Array, " 3"], x0: Float[Array, " 3"], t: Scalar
    ) -> Float[Array, " 3"]:
        """∇_x log p_t(x | x0), the target of Riemannian denoising score matching."""
        return heat_kernel_score(x, x0, self.tau(t))

    def ode_velocity(self, field: Field) -> Field:
        """Probability-flow velocity −½ β(t) P_x score(x, t) (tangent to S^2)."""

        def velocity(x, t):
            return _SPHERE.to_tangent(x, -0.5 * self.beta(t) * field(x, t))

        return velocity


class SphereScore(eqx.Module):
    """Score field on S^2 from a network: P_x net(x, t) / √(2 τ(t)) — the network predicts a
    unit-scale "noise" (cf. the ε-parameterisation of Ho et al. 2020) since the heat-kernel score
    grows like d/(2τ) ~ 1/√(2τ) at small τ."""

    net: Callable
    process: SphereBrownian

    def __call__(self, x: Float[Array, " 3"], t: Float[ArrayLike, ""]) -> Float[Array, " 3"]:
        scale = jnp.sqrt(2.0 * self.process.tau(t))
        return _SPHERE.to_tangent(x, self.net(x, t)) / scale
