"""Bits per dimension of a continuous density on uniformly dequantised images, and the logit
transform of RealNVP.

Convention (the one of the score-SDE papers, Song et al. 2021, whose CIFAR-10 2.99 bpd uses it):
integer pixels k ∈ {0, …, L−1} are dequantised as x = (k + u) / L with u ~ U[0, 1)^D, so x lies
in [0, 1)^D (`sdegen.data.source.DequantizedSource`). A density p on [0, 1)^D gives the density
p(x) L^{−D} on the integer-scale cube k + [0, 1)^D, and by Jensen's inequality (Theis, van den
Oord & Bethge 2016, eq. 9) the discrete model's log-probability satisfies
log P(k) ≥ E_u[log p(x)] − D log L. Bits per dimension are then

    bpd = (−log p(x) + D log L) / (D log 2),

an upper bound on the discrete code length. The offset is log₂ L per dimension, 8 bits for
L = 256: the score-SDE code computes it as `8 − inverse_scaler(−1)` for data in [0, 1] after
`(255 x + u) / 256`, i.e. our x with L = 256. Scaling by 255 instead of 256 (x = (k + u)/255)
would put the offset at log₂ 255 ≈ 7.994 bits and understate bpd by 0.006; we always divide by
the number of levels L (256 for MNIST/CIFAR-10, 17 for the sklearn digits).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def bits_per_dim(
    log_prob: Float[ArrayLike, "*n"], dim: int, levels: int
) -> Float[Array, "*n"]:
    """bpd = (−log p(x) + D log L) / (D log 2) from the natural-log density `log_prob` of
    dequantised data x = (k + u)/L ∈ [0, 1)^D (see the module docstring for the convention)."""
    if dim <= 0 or levels <= 1:
        raise ValueError(f"bits_per_dim needs dim > 0 and levels > 1, got {dim}, {levels}")
    return (-jnp.asarray(log_prob) + dim * math.log(levels)) / (dim * math.log(2.0))


def logit_transform(
    x: Float[Array, "*d"], alpha: float = 0.05
) -> tuple[Float[Array, "*d"], Float[Array, ""]]:
    """The logit transform of RealNVP (Dinh, Sohl-Dickstein & Bengio 2017, Sec. 4.1):
    y = logit(α + (1 − 2α) x) for x ∈ [0, 1)^D, with its log-Jacobian-determinant
    log|det ∂y/∂x| = Σᵢ [log(1 − 2α) − log s_i − log(1 − s_i)], s = α + (1 − 2α) x, so that a
    density q on y gives log p(x) = log q(y) + log|det ∂y/∂x|. RealNVP uses α = 0.05 on
    CIFAR-10 and 1e-6 on MNIST."""
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"logit_transform needs 0 <= alpha < 0.5, got {alpha}")
    s = alpha + (1.0 - 2.0 * alpha) * x
    y = jnp.log(s) - jnp.log1p(-s)
    logdet = jnp.sum(math.log(1.0 - 2.0 * alpha) - jnp.log(s) - jnp.log1p(-s))
    return y, logdet
