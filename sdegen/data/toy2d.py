"""Toy 2D distributions (the FFJORD suite, Grathwohl et al. 2019) and an analytic Gaussian
mixture with closed-form marginals under every linear SDE — both a test oracle and a reference.

Every sampler is `sample_NAME(key, n) -> (n, 2)` with an explicit PRNG key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..processes import AbstractLinearSDE, AbstractProbabilityPath


class GaussianMixture(eqx.Module):
    """Mixture of isotropic Gaussians Σ_k w_k N(μ_k, s_k² I) in R^d.

    Under a linear SDE with kernel N(α(t) x0, σ(t)² I) its marginal at time t is again a mixture,
    with means α(t) μ_k and variances α(t)² s_k² + σ(t)² — so the score and log-density of p_t
    are closed-form at every t (`marginal`, `score`, `log_prob_t`)."""

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    stds: Float[Array, " k"]

    def __init__(
        self,
        weights: ArrayLike | Sequence[float],
        means: ArrayLike | Sequence[Sequence[float]],
        stds: ArrayLike | Sequence[float],
    ):
        means = jnp.asarray(means, dtype=float)
        if means.ndim != 2:
            raise ValueError(f"means must be (k, d), got shape {means.shape}")
        k = means.shape[0]
        w = jnp.broadcast_to(jnp.asarray(weights, dtype=means.dtype), (k,))
        s = jnp.broadcast_to(jnp.asarray(stds, dtype=means.dtype), (k,))
        self.weights = w / jnp.sum(w)
        self.means = means
        self.stds = s

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_prob(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """Log-density of ONE point, in nats."""
        d = self.dim
        sq = jnp.sum((x[None, :] - self.means) ** 2, axis=-1)
        comp = -0.5 * sq / self.stds**2 - d * jnp.log(self.stds) - 0.5 * d * math.log(2 * math.pi)
        return jax.scipy.special.logsumexp(comp + jnp.log(self.weights))

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        k1, k2 = jax.random.split(key)
        idx = jax.random.choice(k1, self.weights.shape[0], (n,), p=self.weights)
        eps = jax.random.normal(k2, (n, self.dim), dtype=self.means.dtype)
        return self.means[idx] + self.stds[idx, None] * eps

    def marginal(self, sde: AbstractLinearSDE, t: Float[ArrayLike, ""]) -> GaussianMixture:
        """The mixture p_t = ∫ p_t(x | x0) p_0(x0) dx0 under `sde`."""
        a, s = sde.alpha(t), sde.std(t)
        return GaussianMixture(self.weights, a * self.means, jnp.sqrt(a**2 * self.stds**2 + s**2))

    def score(self, sde: AbstractLinearSDE) -> MixtureScore:
        """The exact score field ∇ₓ log p_t(x), usable wherever a learned score is."""
        return MixtureScore(self, sde)

    def log_prob_t(self, sde: AbstractLinearSDE, x: Float[Array, " d"], t) -> Float[Array, ""]:
        return self.marginal(sde, t).log_prob(x)

    def velocity(self, path: AbstractProbabilityPath) -> MixtureVelocity:
        """The exact marginal velocity field of the flow-matching path `path` with this mixture
        as data and independent N(0, I) noise, usable wherever a learned velocity is."""
        return MixtureVelocity(self, path)


class MixtureVelocity(eqx.Module):
    """Exact marginal velocity v(x, t) = E[a' x0 + b' ε | x_t = x] of a `GaussianMixture` under
    a path x_t = a x0 + b ε (Lipman et al. 2023, Thm. 1): per component k, with
    v_k = a² s_k² + b², E[x0 | x, k] = μ_k + a s_k² (x - a μ_k)/v_k and
    E[ε | x, k] = b (x - a μ_k)/v_k, weighted by the posterior of k. Finite at a = 0 and
    b = 0 (no division by either)."""

    mixture: GaussianMixture
    path: AbstractProbabilityPath

    def __call__(self, x: Float[Array, " d"], t: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        m = self.mixture
        a, b, da, db = self.path.coefficients(t)
        var = a**2 * m.stds**2 + b**2
        centred = x[None, :] - a * m.means
        logits = (jnp.log(m.weights) - 0.5 * jnp.sum(centred**2, axis=-1) / var
                  - 0.5 * m.dim * jnp.log(var))
        w = jax.nn.softmax(logits)[:, None]
        x0 = jnp.sum(w * (m.means + (a * m.stds**2 / var)[:, None] * centred), axis=0)
        eps = jnp.sum(w * (b / var)[:, None] * centred, axis=0)
        return da * x0 + db * eps


class MixtureScore(eqx.Module):
    """Exact marginal score of a `GaussianMixture` under a linear SDE (a field on one example)."""

    mixture: GaussianMixture
    sde: AbstractLinearSDE

    def __call__(self, x: Float[Array, " d"], t: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        return jax.grad(lambda y: self.mixture.marginal(self.sde, t).log_prob(y))(x)


def eight_gaussians() -> GaussianMixture:
    """FFJORD's 8gaussians: centres 4·(unit circle at multiples of 45°), std 0.5, all / √2-ish
    (divided by 1.414). Differential entropy ≈ 2.838 nats (the ideal test NLL)."""
    angles = jnp.arange(8) * (math.pi / 4)
    means = 4.0 * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1) / 1.414
    return GaussianMixture(jnp.ones(8), means, 0.5 / 1.414)


def sample_8gaussians(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    return eight_gaussians().sample(key, n)


def sample_checkerboard(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """FFJORD's checkerboard: uniform on 8 of the 16 unit squares of [-2, 2]², scaled by 2, so
    the density is 1/32 on its support (ideal NLL log 32 ≈ 3.466 nats)."""
    k1, k2, k3 = jax.random.split(key, 3)
    x1 = jax.random.uniform(k1, (n,)) * 4 - 2
    x2 = jax.random.uniform(k2, (n,)) - 2.0 * jax.random.randint(k3, (n,), 0, 2)
    x2 = x2 + jnp.mod(jnp.floor(x1), 2)
    return 2.0 * jnp.stack([x1, x2], axis=1)


def checkerboard_log_prob(x: Float[Array, " 2"]) -> Float[Array, ""]:
    """Exact log-density of `sample_checkerboard` (log 1/32 on the support, -inf off it)."""
    u = x / 2.0
    inside = jnp.all(jnp.abs(u) <= 2.0)
    cell = jnp.mod(jnp.floor(u[0]) + jnp.floor(u[1]), 2) == 0
    return jnp.where(inside & cell, -math.log(32.0), -jnp.inf)


def sample_moons(key: PRNGKeyArray, n: int, noise: float = 0.1) -> Float[Array, "n 2"]:
    """Two interleaved half circles with Gaussian noise, mapped by x ↦ 2x + (-1, -0.2)."""
    k1, k2, k3 = jax.random.split(key, 3)
    theta = jax.random.uniform(k1, (n,)) * math.pi
    upper = jax.random.bernoulli(k2, 0.5, (n,))
    outer = jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    inner = jnp.stack([1 - jnp.cos(theta), 0.5 - jnp.sin(theta)], axis=1)
    x = jnp.where(upper[:, None], outer, inner) + noise * jax.random.normal(k3, (n, 2))
    return 2.0 * x + jnp.array([-1.0, -0.2])


def sample_2spirals(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """Two interleaved spirals (FFJORD), noise std 0.1."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    r = jnp.sqrt(jax.random.uniform(k1, (n,))) * 540 * (2 * math.pi) / 360
    arm = jnp.stack([-jnp.cos(r) * r, jnp.sin(r) * r], axis=1)
    arm = arm + 0.5 * jax.random.uniform(k2, (n, 2))
    sign = jnp.where(jax.random.bernoulli(k3, 0.5, (n,)), 1.0, -1.0)[:, None]
    return sign * arm / 3 + 0.1 * jax.random.normal(k4, (n, 2))


def sample_pinwheel(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """Five-armed pinwheel (Johnson et al. 2016, as in FFJORD): radial std 0.3, tangential 0.1,
    rate 0.25."""
    k1, k2 = jax.random.split(key)
    labels = jax.random.randint(k1, (n,), 0, 5)
    feat = jax.random.normal(k2, (n, 2)) * jnp.array([0.3, 0.1]) + jnp.array([1.0, 0.0])
    angle = labels * (2 * math.pi / 5) + 0.25 * jnp.exp(feat[:, 0])
    c, s = jnp.cos(angle), jnp.sin(angle)
    rot = jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)
    return 2.0 * jnp.einsum("nij,nj->ni", rot, feat)


def sample_rings(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """Four concentric rings of radii 0.75, 1.5, 2.25, 3 (× 4/3), noise std 0.08."""
    k1, k2, k3 = jax.random.split(key, 3)
    radius = (jax.random.randint(k1, (n,), 1, 5) * 0.75) * (4.0 / 3.0)
    angle = jax.random.uniform(k2, (n,)) * 2 * math.pi
    x = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return x + 0.08 * jax.random.normal(k3, (n, 2))


def sample_swissroll(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """The 2D swiss roll (t cos t, t sin t), t ~ 1.5π(1 + 2U), noise std 1, scaled by 1/5."""
    k1, k2 = jax.random.split(key)
    t = 1.5 * math.pi * (1 + 2 * jax.random.uniform(k1, (n,)))
    x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=1) + jax.random.normal(k2, (n, 2))
    return x / 5.0


TOY_DATASETS: dict[str, Callable[[PRNGKeyArray, int], Array]] = {
    "8gaussians": sample_8gaussians,
    "checkerboard": sample_checkerboard,
    "moons": sample_moons,
    "2spirals": sample_2spirals,
    "pinwheel": sample_pinwheel,
    "rings": sample_rings,
    "swissroll": sample_swissroll,
}
"""Every toy dataset by name; the one place the config and CLI look names up."""

IDEAL_NLL = {"8gaussians": 2.838, "checkerboard": math.log(32.0)}
"""Differential entropy in nats (the best achievable test NLL) where it is known in closed form."""
