"""Analytic references for energy models: the exact energy −log p_t of a `GaussianMixture` at
every t under a linear SDE, and 2D densities known only up to a constant (p^{1/τ}, products)
normalised by quadrature on a grid — the oracles MCMC samplers are tested against."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..processes import AbstractLinearSDE
from .toy2d import GaussianMixture


class MixtureEnergy(eqx.Module):
    """E(x, t) = −log p_t(x) for `GaussianMixture` data under a linear SDE: the exact, normalised
    energy at every t (so `sdegen.energy.EnergyField(MixtureEnergy(...))` is the exact score,
    and mixtures of such energies mean what they say)."""

    mixture: GaussianMixture
    sde: AbstractLinearSDE

    def __call__(self, x: Float[Array, " d"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        return -self.mixture.marginal(self.sde, t).log_prob(x)


class GridDensity(eqx.Module):
    """A 2D density ∝ exp(log_f) normalised by midpoint quadrature on an m × m grid over the
    square [lo, hi]² (mass outside the square is ignored: choose it wide enough).

    `sample` draws a cell by its probability mass (inverse CDF), then a uniform point inside it
    (error of order the cell width); `mean` and `cov` are quadrature moments."""

    centres: Float[Array, "m2 2"]
    log_mass: Float[Array, " m2"]
    width: float

    def __init__(
        self,
        log_f: Callable[[Float[Array, " 2"]], Float[Array, ""]],
        lo: float,
        hi: float,
        m: int = 400,
    ):
        if not hi > lo or m < 2:
            raise ValueError(f"need hi > lo and m >= 2, got lo={lo}, hi={hi}, m={m}")
        self.width = (hi - lo) / m
        axis = lo + (jnp.arange(m) + 0.5) * self.width
        gx, gy = jnp.meshgrid(axis, axis, indexing="xy")
        self.centres = jnp.stack([gx.ravel(), gy.ravel()], axis=1)
        logf = jax.jit(jax.vmap(log_f))(self.centres)
        self.log_mass = logf - jax.scipy.special.logsumexp(logf)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
        k1, k2 = jax.random.split(key)
        cdf = jnp.cumsum(jnp.exp(self.log_mass))  # inverse-CDF: O(n log m), not O(n m)
        u = jax.random.uniform(k1, (n,), cdf.dtype) * cdf[-1]
        idx = jnp.clip(jnp.searchsorted(cdf, u), 0, cdf.shape[0] - 1)
        jitter = (jax.random.uniform(k2, (n, 2), self.centres.dtype) - 0.5) * self.width
        return self.centres[idx] + jitter

    def mean(self) -> Float[Array, " 2"]:
        return jnp.exp(self.log_mass) @ self.centres

    def cov(self) -> Float[Array, "2 2"]:
        r = self.centres - self.mean()
        return (jnp.exp(self.log_mass)[:, None] * r).T @ r
