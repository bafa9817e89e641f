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
    sphere are fitted faster with periodic features) or "tanh"."""

    time_embed: FourierTime
    mlp: eqx.nn.MLP
    manifold: Sphere

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
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of "
                             f"{tuple(ACTIVATIONS)}")
        self.time_embed = FourierTime(n_freq, max_freq)
        self.mlp = eqx.nn.MLP(dim + 2 * n_freq, dim, width, depth,
                              activation=ACTIVATIONS[activation], key=key)
        self.manifold = Sphere()

    def __call__(self, x: Float[Array, " 3"], t: Float[ArrayLike, ""]) -> Float[Array, " 3"]:
        out = self.mlp(jnp.concatenate([x, self.time_embed(t).astype(x.dtype)]))
        return self.manifold.to_tangent(x, out)
