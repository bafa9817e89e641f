"""Time-conditioned MLP fields on R^d."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


class FourierTime(eqx.Module):
    """Fixed Fourier features of time, [sin(2π ω t), cos(2π ω t)] with `n_freq` log-spaced
    frequencies ω in [1, max_freq] (cf. the Gaussian Fourier projection of Song et al. 2021 and
    Tancik et al. 2020). Deterministic and parameter-free, so nothing here is trained."""

    n_freq: int = eqx.field(static=True, default=16)
    max_freq: float = eqx.field(static=True, default=64.0)

    def __call__(self, t: Float[ArrayLike, ""]) -> Float[Array, " e"]:
        freqs = jnp.exp(jnp.linspace(0.0, math.log(self.max_freq), self.n_freq))
        angle = 2 * math.pi * jnp.asarray(t) * freqs
        return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)])


class TimeMLP(eqx.Module):
    """MLP field `net(x, t) -> R^d` on ONE example x ∈ R^d: input [x, Fourier(t)], `depth`
    hidden layers of `width` with SiLU. Knows no process; `sdegen.fields` turns its output
    into a score."""

    time_embed: FourierTime
    mlp: eqx.nn.MLP

    def __init__(
        self,
        dim: int,
        *,
        key: PRNGKeyArray,
        width: int = 128,
        depth: int = 3,
        n_freq: int = 16,
        max_freq: float = 64.0,
    ):
        self.time_embed = FourierTime(n_freq, max_freq)
        self.mlp = eqx.nn.MLP(dim + 2 * n_freq, dim, width, depth, activation=jax.nn.silu, key=key)

    def __call__(self, x: Float[Array, " d"], t: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        return self.mlp(jnp.concatenate([x, self.time_embed(t).astype(x.dtype)]))


class Flattened(eqx.Module):
    """A vector field `net(x, t)` on R^D applied to examples of any shape (e.g. 8×8×1 images):
    flatten, apply, reshape back."""

    net: TimeMLP

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, "*d"]:
        return self.net(x.reshape(-1), t).reshape(x.shape)
