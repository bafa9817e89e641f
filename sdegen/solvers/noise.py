"""Noise terms for Diffrax SDE solves: the diffusion of sdegen's processes is a scalar g(t)
acting elementwise on the state."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array


def diagonal_noise(g: Callable[[Array], Array]) -> Callable:
    """Vector field of a ControlTerm for scalar diffusion g(t) acting elementwise on the state."""

    def vf(s, y, args):
        return lx.DiagonalLinearOperator(jnp.broadcast_to(g(s), y.shape).astype(y.dtype))

    return vf
