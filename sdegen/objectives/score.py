"""Score-matching objectives for linear SDEs: denoising (DSM) and sliced (SSM) score matching with
their time weightings. Each takes ONE data example and a key, draws its own t, and returns a
scalar; `batch_loss` vmaps and averages them over a batch."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..processes import AbstractLinearSDE
from .base import uniform_time

WEIGHTINGS = ("song", "likelihood", "likelihood_is")


def log_snr_inverse(sde: AbstractLinearSDE, t) -> Float[Array, ""]:
    """ρ(t) = log(σ(t)² / α(t)²), increasing in t. For every linear SDE
    g(t)² = dσ²/dt - 2 σ² d log α/dt, so g(t)²/σ(t)² = dρ/dt."""
    return 2.0 * (jnp.log(sde.std(t)) - jnp.log(sde.alpha(t)))


def _time_and_weight(sde: AbstractLinearSDE, key, t_eps: float, weighting: str, dtype):
    """Draw t and return (t, λ(t) / q(t)) with q the density t is drawn from.

    - `"song"`: t ~ U[t_eps, T], λ = σ(t)² (Song et al. 2021, eq. 7).
    - `"likelihood"`: t ~ U, λ = g(t)², which makes the loss bound the KL to the data (Song,
      Durkan, Murray & Ermon 2021, "Maximum likelihood training of score-based diffusion
      models", Thm. 1). Unbiased but high-variance: λ/σ² blows up as t → 0.
    - `"likelihood_is"`: the same objective in expectation, with t drawn by importance sampling
      from q(t) ∝ g²/σ² = dρ/dt (Song et al. 2021b, Sec. 4.2), by inverting ρ (bisection); the
      weight is then σ(t)² (ρ(T) - ρ(t_eps)) / (T - t_eps), bounded.
    Weights are relative to t ~ U[t_eps, T], so all three estimate E_U[λ(t) ‖…‖²]."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    if weighting != "likelihood_is":
        t = uniform_time(key, t_eps, sde.T, dtype)
        lam = sde.std(t) ** 2 if weighting == "song" else sde.diffusion(t) ** 2
        return t, lam
    lo, hi = log_snr_inverse(sde, t_eps), log_snr_inverse(sde, sde.T)
    target = lo + jax.random.uniform(key, (), dtype) * (hi - lo)

    def bisect(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        below = log_snr_inverse(sde, mid) < target
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, b = jax.lax.fori_loop(0, 60, bisect, (jnp.asarray(t_eps, dtype), jnp.asarray(sde.T, dtype)))
    t = 0.5 * (a + b)
    return t, sde.std(t) ** 2 * (hi - lo) / (sde.T - t_eps)


def _perturb(sde, x0, key, t_eps, weighting):
    k_t, k_z = jax.random.split(key)
    t, weight = _time_and_weight(sde, k_t, t_eps, weighting, x0.dtype)
    mean, std = sde.marginal(x0, t)
    z = jax.random.normal(k_z, x0.shape, x0.dtype)
    return t, weight, mean + std * z, z, std


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
    t, weight, xt, z, std = _perturb(sde, x0, key, t_eps, weighting)
    s = score(xt, t)
    return weight * jnp.sum((s + z / std) ** 2)


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
    t, weight, xt, _, _ = _perturb(sde, x0, k_pert, t_eps, weighting)
    v = jax.random.normal(k_v, x0.shape, x0.dtype)
    s, jvp = jax.jvp(lambda y: score(y, t), (xt,), (v,))
    return weight * (jnp.sum(v * jvp) + 0.5 * jnp.sum(v * s) ** 2)

