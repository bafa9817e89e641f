"""Per-example training objectives for score fields. Each takes ONE data example and a key,
samples its own t ~ U[t_eps, T], and returns a scalar; batch with `jax.vmap` and average."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .processes import AbstractLinearSDE

WEIGHTINGS = ("song", "likelihood")


def _weight(sde: AbstractLinearSDE, t, weighting: str):
    """λ(t): `"song"` = σ(t)² (Song et al. 2021, eq. 7 with λ ∝ 1/E‖∇log p(x_t|x0)‖²);
    `"likelihood"` = g(t)², which makes the loss bound the KL to the data (Song, Durkan, Murray
    & Ermon 2021, "Maximum likelihood training of score-based diffusion models", Thm. 1)."""
    if weighting == "song":
        return sde.std(t) ** 2
    if weighting == "likelihood":
        return sde.diffusion(t) ** 2
    raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")


def _perturb(sde, x0, key, t_eps):
    k_t, k_z = jax.random.split(key)
    t = jax.random.uniform(k_t, (), x0.dtype, t_eps, sde.T)
    mean, std = sde.marginal(x0, t)
    z = jax.random.normal(k_z, x0.shape, x0.dtype)
    return t, mean + std * z, z, std


def dsm_loss(
    sde: AbstractLinearSDE,
    score: Callable,
    x0: Float[Array, "*d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-5,
    weighting: str = "song",
) -> Float[Array, ""]:
    """Denoising score matching (Vincent 2011; Song et al. 2021, eq. 7):
    λ(t) ‖s(x_t, t) - ∇log p_t(x_t | x0)‖², with ∇log p_t(x_t | x0) = -z / σ(t)."""
    t, xt, z, std = _perturb(sde, x0, key, t_eps)
    s = score(xt, t)
    return _weight(sde, t, weighting) * jnp.sum((s + z / std) ** 2)


def ssm_loss(
    sde: AbstractLinearSDE,
    score: Callable,
    x0: Float[Array, "*d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-5,
    weighting: str = "song",
) -> Float[Array, ""]:
    """Sliced score matching (Song, Garg, Shi & Ermon 2019, eq. 8) on the perturbed data x_t:
    λ(t) [vᵀ ∇ₓ(vᵀ s(x_t, t)) + ½ (vᵀ s(x_t, t))²] with a Gaussian projection v. Needs only
    samples of p_t, not the kernel's score; equals DSM up to a constant in expectation."""
    k_pert, k_v = jax.random.split(key)
    t, xt, _, _ = _perturb(sde, x0, k_pert, t_eps)
    v = jax.random.normal(k_v, x0.shape, x0.dtype)
    s, jvp = jax.jvp(lambda y: score(y, t), (xt,), (v,))
    return _weight(sde, t, weighting) * (jnp.sum(v * jvp) + 0.5 * jnp.sum(v * s) ** 2)


OBJECTIVES = {"dsm": dsm_loss, "ssm": ssm_loss}


def batch_loss(
    objective: Callable,
    sde: AbstractLinearSDE,
    score: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    **kwargs,
) -> Float[Array, ""]:
    """Mean of a per-example objective over a batch, one independent key per example."""
    keys = jax.random.split(key, x0.shape[0])
    return jnp.mean(jax.vmap(lambda x, k: objective(sde, score, x, k, **kwargs))(x0, keys))
