"""Sample-quality metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


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
    P(s⁺ > s⁻) + ½ P(s⁺ = s⁻) (Hanley & McNeil 1982, eq. 1), from all n·m pairs — exact, ties
    counted half. O(n·m) memory: fine for the few thousand points of the toy experiments."""
    diff = scores_pos[:, None] - scores_neg[None, :]
    return jnp.mean((diff > 0) + 0.5 * (diff == 0))


def roc_curve(
    scores_pos: Float[Array, " n"], scores_neg: Float[Array, " m"]
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """(false-positive rate, true-positive rate) at every threshold, from (0, 0) to (1, 1)."""
    thresholds = jnp.sort(jnp.concatenate([scores_pos, scores_neg]))[::-1]
    tpr = jnp.mean(scores_pos[None, :] >= thresholds[:, None], axis=1)
    fpr = jnp.mean(scores_neg[None, :] >= thresholds[:, None], axis=1)
    zero = jnp.zeros(1, tpr.dtype)
    return jnp.concatenate([zero, fpr]), jnp.concatenate([zero, tpr])
