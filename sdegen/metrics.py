"""Sample-quality metrics."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


def sliced_wasserstein(
    key: PRNGKeyArray, x: Float[Array, "n d"], y: Float[Array, "m d"], n_proj: int = 256
) -> Float[Array, ""]:
    """Sliced 2-Wasserstein distance (Rabin et al. 2011; Bonneel et al. 2015): the root mean
    over random unit directions θ of W₂² between the 1D projections θᵀx and θᵀy, each computed
    exactly by sorting. Unequal sizes compare matched quantiles."""
    d = x.shape[1]
    theta = jax.random.normal(key, (n_proj, d), dtype=x.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=1, keepdims=True)
    px = jnp.sort(x @ theta.T, axis=0)
    py = jnp.sort(y @ theta.T, axis=0)
    n = min(x.shape[0], y.shape[0])
    q = (jnp.arange(n) + 0.5) / n
    px = jnp.quantile(px, q, axis=0) if x.shape[0] != n else px
    py = jnp.quantile(py, q, axis=0) if y.shape[0] != n else py
    return jnp.sqrt(jnp.mean((px - py) ** 2))


def auroc(scores_pos: Float[Array, " n"], scores_neg: Float[Array, " m"]) -> Float[Array, ""]:
    """Area under the ROC curve for "positive scores higher": the Mann–Whitney probability
    P(s⁺ > s⁻) + ½ P(s⁺ = s⁻) (Hanley & McNeil 1982, eq. 1) — exact, ties counted half — from
    sorted negatives: each positive's count of lower and equal negatives is two binary searches,
    so the cost is O((n + m) log m) instead of the n·m pairs (10k × 10k: 10⁸ pairs)."""
    neg = jnp.sort(jnp.asarray(scores_neg))
    pos = jnp.asarray(scores_pos)
    below = jnp.searchsorted(neg, pos, side="left")
    equal = jnp.searchsorted(neg, pos, side="right") - below
    return jnp.mean(below + 0.5 * equal) / neg.shape[0]


def roc_curve(
    scores_pos: Float[Array, " n"], scores_neg: Float[Array, " m"]
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """(false-positive rate, true-positive rate) at every threshold, from (0, 0) to (1, 1);
    the rates at each threshold are counts of scores >= it, by binary search in the sorted
    scores (O((n + m) log(n + m)))."""
    pos, neg = jnp.sort(jnp.asarray(scores_pos)), jnp.sort(jnp.asarray(scores_neg))
    thresholds = jnp.sort(jnp.concatenate([pos, neg]))[::-1]
    tpr = 1.0 - jnp.searchsorted(pos, thresholds, side="left") / pos.shape[0]
    fpr = 1.0 - jnp.searchsorted(neg, thresholds, side="left") / neg.shape[0]
    zero = jnp.zeros(1, tpr.dtype)
    return jnp.concatenate([zero, fpr]), jnp.concatenate([zero, tpr])


def frechet_gaussian(
    mu1: Float[ArrayLike, " k"], cov1: Float[ArrayLike, "k k"], mu2: Float[ArrayLike, " k"],
    cov2: Float[ArrayLike, "k k"],
) -> float:
    """Fréchet (2-Wasserstein²) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Dowson & Landau 1982;
    the FID formula of Heusel et al. 2017, Sec. 4):
    ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½). The matrix square roots are taken by
    symmetric eigendecompositions in float64 on the host (negative round-off eigenvalues
    clipped), which is exact for PSD inputs and never complex, unlike sqrtm of Σ₁Σ₂."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1, c2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    w, v = np.linalg.eigh(0.5 * (c1 + c1.T))
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ (0.5 * (c2 + c2.T)) @ root1
    tr_cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (inner + inner.T)), 0, None)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * tr_cross)


def frechet_distance(feats_a: Float[ArrayLike, "n k"], feats_b: Float[ArrayLike, "m k"]) -> float:
    """Fréchet distance between Gaussians fitted (mean, unbiased covariance) to two sets of
    feature vectors — FID (Heusel et al. 2017) when the features are Inception pool3 activations;
    here any features (`feature_distance`)."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (n, k) and (m, k) with the same k, got {a.shape} and "
                         f"{b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("need at least 2 feature vectors per set to estimate a covariance")
    return frechet_gaussian(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def feature_distance(
    features: Callable[[Float[Array, "*d"]], Float[ArrayLike, " k"]],
    x_a: Float[ArrayLike, "n *d"],
    x_b: Float[ArrayLike, "m *d"],
    *,
    batch: int = 1024,
) -> float:
    """Fréchet distance between the features of two sample sets under ANY extractor
    `features(x) -> (k,)` on one example (e.g. a trained `sdegen.nets.TimeClassifier`'s
    `features` at t ≈ 0 for digits, the CPU-scale analogue of FID, or a user's Inception net),
    evaluated with `jax.vmap` in chunks of `batch`."""
    f = jax.jit(jax.vmap(features))

    def embed(x):
        return np.concatenate([np.asarray(f(x[i:i + batch])) for i in range(0, len(x), batch)])

    return frechet_distance(embed(x_a), embed(x_b))
