"""The classic generative families, as baselines inside the same framework: variational
autoencoders (VAE, IWAE), the Helmholtz machine (wake–sleep) and the GAN. Each model is an
Equinox module and each objective a per-example loss, so the ordinary training loop trains them."""

from .gan import GAN, discriminator_loss, gan_loss, generator_loss, r1_penalty
from .helmholtz import HelmholtzMachine, helmholtz_log_prob, wake_sleep_loss
from .objectives import FAMILY_LOSSES, family_loss
from .vae import VAE, elbo, interpolate, iwae_bound

__all__ = [
    "VAE",
    "elbo",
    "iwae_bound",
    "interpolate",
    "HelmholtzMachine",
    "wake_sleep_loss",
    "helmholtz_log_prob",
    "GAN",
    "gan_loss",
    "generator_loss",
    "discriminator_loss",
    "r1_penalty",
    "family_loss",
    "FAMILY_LOSSES",
]
