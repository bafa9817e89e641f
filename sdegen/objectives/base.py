"""What every per-example objective shares: the time draw t ~ U[t_eps, T] and the batch mean."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..processes import AbstractProcess


def uniform_time(key: PRNGKeyArray, t_eps: float, T: float, dtype) -> Float[Array, ""]:
    """t = t_eps + u (T - t_eps), u ~ U[0, 1): the uniform time of Song et al. 2021 (eq. 7),
    Lipman et al. 2023 (eq. 9) and De Bortoli et al. 2022 (eq. 8)."""
    return t_eps + jax.random.uniform(key, (), dtype) * (T - t_eps)


def batch_loss(
    objective: Callable,
    sde: AbstractProcess,
    score: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    **kwargs,
) -> Float[Array, ""]:
    """Mean of a per-example objective over a batch, one independent key per example."""
    keys = jax.random.split(key, x0.shape[0])
    return jnp.mean(jax.vmap(lambda x, k: objective(sde, score, x, k, **kwargs))(x0, keys))
