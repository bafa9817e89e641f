"""Tangent vector fields on S^2 (or any embedded manifold) from an MLP in the ambient space."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..manifolds import Sphere
from .mlp import FourierTime

ACTIVATIONS = {"silu": jax.nn.silu, "sin": jnp.sin, "tanh": jnp.tanh}


class TangentMLP(eqx.Module):
    """Time-conditioned MLP whose output is projected onto the tangent space:
    v(x, t) = P_x MLP([x, Fourier(t)]) (as in RSGM / RFM, whose networks output an ambient
    vector that is projected, De Bortoli et al. 2022 App. F; Chen & Lipman 2023 Sec. 3.2).

    `activation` is "silu", "sin" (SIREN-like, Sitzmann et al. 2020: sharp densities on the
    sphere are fitted faster with periodic features) or "tanh".

    `x_freq > 0` adds random Fourier features of the position, [sin(B x), cos(B x)] with a
    fixed B ∈ R^{x_freq × 3}, B_ij ~ N(0, x_scale²) (Tancik et al. 2020, "Fourier Features Let
    Networks Learn High Frequency Functions", eq. 5 with Gaussian B): on S^2 these are plane
    waves restricted to the sphere, so x_scale sets the angular resolution (~1/x_scale rad)
    the first layer can resolve. B is drawn from `key` and never trained."""

    time_embed: FourierTime
    mlp: eqx.nn.MLP
    manifold: Sphere
    x_proj: Array | None

    def __init__(
        self,
        *,
        key: PRNGKeyArray,
        dim: int = 3,
        width: int = 256,
        depth: int = 4,
        n_freq: int = 8,
        max_freq: float = 16.0,
        activation: str = "silu",
        x_freq: int = 0,
        x_scale: float = 10.0,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of "
                             f"{tuple(ACTIVATIONS)}")
        k_mlp, k_proj = jax.random.split(key)
        self.time_embed = FourierTime(n_freq, max_freq)
        self.x_proj = (x_scale * jax.random.normal(k_proj, (x_freq, dim)) if x_freq > 0
                       else None)
        self.mlp = eqx.nn.MLP(dim + 2 * n_freq + 2 * x_freq, dim, width, depth,
                              activation=ACTIVATIONS[activation], key=k_mlp)
        self.manifold = Sphere()

    def __call__(self, x: Float[Array, " 3"], t: Float[ArrayLike, ""]) -> Float[Array, " 3"]:
        feats = [x, self.time_embed(t).astype(x.dtype)]
        if self.x_proj is not None:
            angle = jax.lax.stop_gradient(self.x_proj).astype(x.dtype) @ x
            feats += [jnp.sin(angle), jnp.cos(angle)]
        out = self.mlp(jnp.concatenate(feats))
        return self.manifold.to_tangent(x, out)
