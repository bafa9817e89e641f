"""The classic families' training objectives as batch losses `loss(model, x_batch, key)`, the
shape `sdegen.train` minimises: the mean over the batch of the per-example loss, each example
flattened (the families' networks are MLPs on vectors) and given its own key."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .gan import GAN, gan_loss
from .helmholtz import HelmholtzMachine, wake_sleep_loss
from .vae import VAE, elbo, iwae_bound

FAMILY_LOSSES = ("elbo", "iwae", "wake_sleep", "gan")


def family_loss(kind: str, model: VAE | HelmholtzMachine | GAN, x: Float[Array, "n *d"],
                key: PRNGKeyArray, *, k: int = 8, r1_gamma: float = 1.0) -> Float[Array, ""]:
    """Mean loss of a batch under one of `FAMILY_LOSSES`:

    - `elbo`: −ELBO with the analytic KL (Kingma & Welling 2014, eqs. 3 and 10);
    - `iwae`: −(the k-sample importance-weighted bound) (Burda et al. 2016, eq. 8);
    - `wake_sleep`: the wake–sleep surrogate (Hinton et al. 1995), one wake and one sleep draw
      per example;
    - `gan`: discriminator BCE + γ·R1 plus the non-saturating generator loss with each player's
      gradient split by `stop_gradient` (`gan_loss`). One optimiser over both players' parameters
      then makes *simultaneous* gradient steps (both players updated from the same state), not
      the alternating steps of Goodfellow et al. 2014, Alg. 1.
    """
    if kind not in FAMILY_LOSSES:
        raise ValueError(f"unknown family loss {kind!r}; choose one of {FAMILY_LOSSES}")
    flat = x.reshape(x.shape[0], -1)
    keys = jax.random.split(key, x.shape[0])
    if kind == "elbo":
        per = jax.vmap(lambda xi, ki: -elbo(model, xi, ki))(flat, keys)
    elif kind == "iwae":
        per = jax.vmap(lambda xi, ki: -iwae_bound(model, xi, ki, k))(flat, keys)
    elif kind == "wake_sleep":
        per = jax.vmap(lambda xi, ki: wake_sleep_loss(model, xi, ki))(flat, keys)
    else:
        per = jax.vmap(lambda xi, ki: gan_loss(model, xi, ki, r1_gamma=r1_gamma))(flat, keys)
    return jnp.mean(per)
