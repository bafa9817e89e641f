"""The von Mises–Fisher (vMF) distribution on S^2, vMF mixtures, and the classical density
estimators built from it — the baselines a deep model on the sphere must beat.

vMF on S^2 (Fisher 1953; Mardia & Jupp 2000, *Directional Statistics*, eq. 9.3.4):
p(x | μ, κ) = κ / (2π (1 − e^{−2κ})) · exp(κ (⟨μ, x⟩ − 1)), written so that it is stable for
large κ; as κ → 0 it tends to the uniform 1/(4π).

Estimators (all select their bandwidths / size on a validation set, never on test data):

- `VMFKDE`: kernel density estimate with a vMF kernel of concentration κ (Hall, Watson &
  Cabrera 1987, "Kernel density estimation with spherical data", eq. 2.1).
- `TwoBandwidthKDE`: w KDE_{κ1} + (1 − w) KDE_{κ2}, a two-scale mixture of KDEs (a narrow
  kernel for repeated/near-repeated locations and a broad one for the rest).
- `VMFMixture` fitted by `fit_vmf_mixture`: EM for mixtures of vMF (Banerjee, Dhillon, Ghosh &
  Sra 2005, "Clustering on the unit hypersphere using von Mises–Fisher distributions", JMLR,
  Sec. 4–5), with the κ update κ = R̄(3 − R̄²)/(1 − R̄²) (their eq. 4.4 with p = 3) capped at
  `kappa_cap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

_LOG_2PI = math.log(2 * math.pi)


def vmf_log_prob(
    x: Float[Array, " 3"], mu: Float[Array, " 3"], kappa: Float[ArrayLike, ""]
) -> Float[Array, ""]:
    """log p(x | μ, κ) of the vMF density on S^2 (w.r.t. area), stable for all κ > 0."""
    kappa = jnp.maximum(jnp.asarray(kappa, x.dtype), 1e-12)
    log_norm = jnp.log(kappa) - _LOG_2PI - jnp.log(-jnp.expm1(-2.0 * kappa))
    return log_norm + kappa * (jnp.dot(mu, x) - 1.0)


def vmf_sample(
    key: PRNGKeyArray, mu: Float[Array, " 3"], kappa: Float[ArrayLike, ""]
) -> Float[Array, " 3"]:
    """One exact draw from vMF(μ, κ) on S^2: w = ⟨μ, x⟩ by inverting its CDF,
    w = 1 + log(u + (1 − u) e^{−2κ})/κ (Wood 1994, "Simulation of the von Mises Fisher
    distribution", for p = 3), the direction orthogonal to μ uniform."""
    kappa = jnp.maximum(jnp.asarray(kappa, mu.dtype), 1e-12)
    k_w, k_v = jax.random.split(key)
    u = jax.random.uniform(k_w, (), mu.dtype)
    w = 1.0 + jnp.log(u + (1.0 - u) * jnp.exp(-2.0 * kappa)) / kappa
    w = jnp.clip(w, -1.0, 1.0)
    v = jax.random.normal(k_v, (3,), mu.dtype)
    v = v - jnp.dot(v, mu) * mu
    v = v / jnp.linalg.norm(v)
    return w * mu + jnp.sqrt(jnp.maximum(1.0 - w**2, 0.0)) * v


class VMFMixture(eqx.Module):
    """Mixture Σ_k w_k vMF(μ_k, κ_k) on S^2, with a closed-form density and exact sampling."""

    log_weights: Float[Array, " k"]
    mus: Float[Array, "k 3"]
    kappas: Float[Array, " k"]

    def __init__(
        self,
        weights: ArrayLike | Sequence,
        mus: ArrayLike | Sequence,
        kappas: ArrayLike | Sequence,
    ):
        w = jnp.asarray(weights, dtype=float)
        mus = jnp.asarray(mus, dtype=float)
        kappas = jnp.asarray(kappas, dtype=float)
        if mus.ndim != 2 or mus.shape[1] != 3:
            raise ValueError(f"vMF means must have shape (k, 3), got {mus.shape}")
        if w.shape != (mus.shape[0],) or kappas.shape != (mus.shape[0],):
            raise ValueError(f"need one weight and one kappa per mean ({mus.shape[0]}), got "
                             f"{w.shape} and {kappas.shape}")
        if np.any(np.asarray(w) < 0) or np.any(np.asarray(kappas) <= 0):
            raise ValueError("vMF mixture weights must be >= 0 and kappas > 0")
        self.log_weights = jnp.log(w / jnp.sum(w))
        self.mus = mus / jnp.linalg.norm(mus, axis=1, keepdims=True)
        self.kappas = kappas

    def log_prob(self, x: Float[Array, " 3"]) -> Float[Array, ""]:
        comps = jax.vmap(lambda m, k: vmf_log_prob(x, m, k))(self.mus, self.kappas)
        return jax.nn.logsumexp(self.log_weights + comps)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 3"]:
        return _mixture_sample(self, key, n)


@eqx.filter_jit
def _mixture_sample(mix: VMFMixture, key, n: int):
    k_c, k_x = jax.random.split(key)
    comp = jax.random.categorical(k_c, mix.log_weights, shape=(n,))
    keys = jax.random.split(k_x, n)
    return jax.vmap(vmf_sample)(keys, mix.mus[comp], mix.kappas[comp])


def _chunked_log_kde(x: Array, centers: Array, log_kappas: ArrayLike, chunk: int = 2048) -> Array:
    """(len(kappas), n) log-densities of the vMF KDE with each κ at the points x."""

    @jax.jit
    def block(xb, kappa):
        dots = xb @ centers.T  # (b, m)
        k = jnp.exp(kappa)
        log_norm = jnp.log(k) - _LOG_2PI - jnp.log(-jnp.expm1(-2.0 * k))
        return log_norm + jax.nn.logsumexp(k * (dots - 1.0), axis=1) - math.log(centers.shape[0])

    out = []
    for lk in np.asarray(log_kappas):
        parts = [block(x[i:i + chunk], jnp.asarray(lk, x.dtype)) for i in range(0, len(x), chunk)]
        out.append(jnp.concatenate(parts))
    return jnp.stack(out)


class VMFKDE(eqx.Module):
    """vMF kernel density estimate (1/m) Σ_i vMF(x | x_i, κ) (Hall, Watson & Cabrera 1987)."""

    centers: Float[Array, "m 3"]
    kappa: float

    def log_prob_batch(self, x: Float[Array, "n 3"]) -> Float[Array, " n"]:
        return _chunked_log_kde(x, self.centers, jnp.log(jnp.array([self.kappa])))[0]


class TwoBandwidthKDE(eqx.Module):
    """w · KDE_{κ1} + (1 − w) · KDE_{κ2} on the same centres."""

    centers: Float[Array, "m 3"]
    kappa1: float
    kappa2: float
    weight: float

    def log_prob_batch(self, x: Float[Array, "n 3"]) -> Float[Array, " n"]:
        a = _chunked_log_kde(x, self.centers, jnp.log(jnp.array([self.kappa1, self.kappa2])))
        return jnp.logaddexp(math.log(self.weight) + a[0], math.log1p(-self.weight) + a[1])


def kappa_grid(kappa_max: float = 1e6, n: int = 49) -> np.ndarray:
    """Log-spaced concentrations from 1 to `kappa_max` (the bandwidth grid of the KDEs)."""
    return np.exp(np.linspace(0.0, math.log(kappa_max), n))


def fit_vmf_kde(
    train: Float[Array, "m 3"],
    val: Float[Array, "v 3"],
    kappas: ArrayLike | Sequence[float] | None = None,
) -> VMFKDE:
    """vMF KDE on `train` with κ maximising the validation log-likelihood over `kappas`."""
    grid = kappa_grid() if kappas is None else np.asarray(kappas, dtype=float)
    scores = jnp.mean(_chunked_log_kde(val, train, np.log(grid)), axis=1)
    return VMFKDE(train, float(grid[int(jnp.argmax(scores))]))


def fit_two_bandwidth_kde(
    train: Float[Array, "m 3"],
    val: Float[Array, "v 3"],
    kappas: ArrayLike | Sequence[float] | None = None,
    weights: Sequence[float] = tuple(np.linspace(0.05, 0.95, 19)),
) -> TwoBandwidthKDE:
    """Two-bandwidth vMF KDE: (κ1, κ2, w) maximising the validation log-likelihood over the
    grid `kappas` × `kappas` × `weights` (κ1 < κ2)."""
    grid = kappa_grid() if kappas is None else np.asarray(kappas, dtype=float)
    a = np.asarray(_chunked_log_kde(val, train, np.log(grid)))  # (g, v)
    best, arg = -np.inf, None
    for w in weights:
        pair = np.logaddexp(math.log(w) + a[:, None, :], math.log1p(-w) + a[None, :, :]).mean(-1)
        pair = np.where(np.triu(np.ones_like(pair, dtype=bool), k=1), pair, -np.inf)
        i, j = np.unravel_index(np.argmax(pair), pair.shape)
        if pair[i, j] > best:
            best, arg = pair[i, j], (float(grid[i]), float(grid[j]), float(w))
    return TwoBandwidthKDE(train, *arg)


def fit_vmf_mixture(
    x: Float[Array, "n 3"],
    n_components: int,
    *,
    key: PRNGKeyArray,
    n_iter: int = 200,
    kappa_cap: float = 1e4,
) -> VMFMixture:
    """Maximum-likelihood vMF mixture by EM (Banerjee et al. 2005, Alg. 1, soft assignments).

    Initialised at `n_components` distinct data points with κ = 10; the M-step sets
    μ_k = r_k/|r_k|, R̄ = |r_k|/N_k, κ_k = min(R̄(3 − R̄²)/(1 − R̄²), kappa_cap) with
    r_k = Σ_i γ_ik x_i; weights get a 1e-8 floor so empty components stay defined."""
    n = x.shape[0]
    if not 1 <= n_components <= n:
        raise ValueError(f"n_components must lie in [1, {n}] (the number of points), "
                         f"got {n_components}")
    idx = jax.random.choice(key, n, (n_components,), replace=False)
    init = (jnp.full((n_components,), -math.log(n_components), x.dtype), x[idx],
            jnp.full((n_components,), 10.0, x.dtype))

    @jax.jit
    def em(params):
        def body(_, p):
            log_w, mus, kappas = p
            log_norm = jnp.log(kappas) - _LOG_2PI - jnp.log(-jnp.expm1(-2.0 * kappas))
            logits = log_w + log_norm + kappas * (x @ mus.T - 1.0)
            resp = jax.nn.softmax(logits, axis=1)
            nk = jnp.sum(resp, axis=0) + 1e-10
            r = resp.T @ x
            rnorm = jnp.linalg.norm(r, axis=1)
            rbar = jnp.clip(rnorm / nk, 1e-6, 1 - 1e-9)
            kappas = jnp.clip(rbar * (3 - rbar**2) / (1 - rbar**2), 1e-3, kappa_cap)
            mus = r / jnp.maximum(rnorm, 1e-30)[:, None]
            w = nk / n + 1e-8
            return jnp.log(w / jnp.sum(w)), mus, kappas

        return jax.lax.fori_loop(0, n_iter, body, params)

    log_w, mus, kappas = em(init)
    return VMFMixture(jnp.exp(log_w), mus, kappas)


def fit_vmf_mixture_selected(
    train: Float[Array, "m 3"],
    val: Float[Array, "v 3"],
    *,
    key: PRNGKeyArray,
    sizes: Sequence[int] = (5, 10, 20, 50, 100, 200),
    kappa_cap: float = 1e4,
    n_iter: int = 200,
) -> tuple[VMFMixture, int]:
    """EM vMF mixtures of each size in `sizes` (at most the number of training points); keep
    the one with the best validation log-likelihood. Returns (mixture, K)."""
    best, best_k, best_score = None, 0, -np.inf
    for k in sizes:
        if k > train.shape[0]:
            continue
        mix = fit_vmf_mixture(train, k, key=jax.random.fold_in(key, k), n_iter=n_iter,
                              kappa_cap=kappa_cap)
        score = float(jnp.mean(jax.vmap(mix.log_prob)(val)))
        if score > best_score:
            best, best_k, best_score = mix, k, score
    return best, best_k
