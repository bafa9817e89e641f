"""Generative adversarial network with the non-saturating generator loss (Goodfellow et al.
2014, "Generative Adversarial Nets", §3) and the R1 gradient penalty on real data (Mescheder,
Geiger & Nowozin 2018, "Which training methods for GANs do actually converge?", eq. 9).
Losses act on ONE real example and one latent draw; batch with `jax.vmap`."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


class GAN(eqx.Module):
    """A generator G: z -> x with z ~ N(0, I) and a discriminator D: x -> logit."""

    generator: Callable[[Float[Array, " k"]], Float[Array, " d"]]
    discriminator: Callable[[Float[Array, " d"]], Float[Array, ""]]
    latent: int = eqx.field(static=True)

    @classmethod
    def mlp(cls, dim: int, latent: int, *, key: PRNGKeyArray, width: int = 128,
            depth: int = 2) -> GAN:
        """Generator and discriminator MLPs (SiLU; the discriminator outputs a scalar logit)."""
        k_g, k_d = jax.random.split(key)
        gen = eqx.nn.MLP(latent, dim, width, depth, activation=jax.nn.silu, key=k_g)
        disc = eqx.nn.MLP(dim, "scalar", width, depth, activation=jax.nn.silu, key=k_d)
        return cls(gen, disc, latent)

    def generate(self, key: PRNGKeyArray, dtype=jnp.float32) -> Float[Array, " d"]:
        """One draw x = G(z), z ~ N(0, I)."""
        return self.generator(jax.random.normal(key, (self.latent,), dtype))


def _frozen(module):
    """`module` with `stop_gradient` on its arrays (its non-array leaves left alone)."""
    arrays, static = eqx.partition(module, eqx.is_array)
    return eqx.combine(jax.lax.stop_gradient(arrays), static)


def discriminator_loss(logit_real: Float[ArrayLike, ""], logit_fake: Float[ArrayLike, ""]
                       ) -> Float[Array, ""]:
    """Binary cross-entropy of D on one real and one generated example,
    −log D(x) − log(1 − D(G(z))) with D = sigmoid(logit) (Goodfellow et al. 2014, eq. 1). At the
    optimal D* = p_data / (p_data + p_g) its expectation is 2 log 2 − 2 JSD(p_data ‖ p_g)
    (their Thm. 1)."""
    return jax.nn.softplus(-logit_real) + jax.nn.softplus(logit_fake)


def generator_loss(logit_fake: Float[ArrayLike, ""]) -> Float[Array, ""]:
    """Non-saturating generator loss −log D(G(z)) (Goodfellow et al. 2014, §3)."""
    return jax.nn.softplus(-logit_fake)


def r1_penalty(discriminator: Callable, x: Float[Array, " d"]) -> Float[Array, ""]:
    """R1 = ½ ‖∇ₓ D(x)‖² at a real example (Mescheder et al. 2018, eq. 9; times γ by the
    caller)."""
    g = jax.grad(lambda y: jnp.sum(discriminator(y)))(x)
    return 0.5 * jnp.sum(g**2)


def gan_loss(model: GAN, x: Float[Array, " d"], key: PRNGKeyArray, *, r1_gamma: float = 1.0
             ) -> Float[Array, ""]:
    """Both players' losses in one scalar for simultaneous gradient steps: the discriminator's
    loss (+ γ·R1) sees the generator through `stop_gradient`, the generator's non-saturating loss
    sees the discriminator through `stop_gradient`, so each parameter set gets exactly its own
    player's gradient from one `jax.grad`."""
    z = jax.random.normal(key, (model.latent,), x.dtype)
    fake = model.generator(z)
    disc = model.discriminator
    frozen_disc = _frozen(disc)
    loss_d = discriminator_loss(disc(x), disc(jax.lax.stop_gradient(fake)))
    loss_d = loss_d + r1_gamma * r1_penalty(disc, x)
    return loss_d + generator_loss(frozen_disc(fake))
