"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") and the
importance-weighted bound (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted
Autoencoders"). Everything acts on ONE example; batch with `jax.vmap`."""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

LIKELIHOODS = ("gaussian", "bernoulli")
_LOG_2PI = math.log(2 * math.pi)


def _normal_logpdf(x, mean, log_std):
    return jnp.sum(-0.5 * ((x - mean) * jnp.exp(-log_std)) ** 2 - log_std - 0.5 * _LOG_2PI)


class VAE(eqx.Module):
    """A latent-variable model p(z) p(x | z), p(z) = N(0, I), with a diagonal-Gaussian encoder
    q(z | x) = N(μ(x), diag σ(x)²).

    - `encoder(x) -> [μ, log σ]` (length 2·latent), `decoder(z) -> ` the mean of x (Gaussian) or
      its logits (Bernoulli) — any Equinox modules; `VAE.mlp` builds the usual MLP pair.
    - `log_std_x`: learned per-dimension log standard deviation of a Gaussian decoder.
    """

    encoder: Callable[[Float[Array, " d"]], Float[Array, " e"]]
    decoder: Callable[[Float[Array, " k"]], Float[Array, " d"]]
    log_std_x: Float[Array, " d"]
    latent: int = eqx.field(static=True)
    likelihood: str = eqx.field(static=True, default="gaussian")

    def __check_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown VAE likelihood {self.likelihood!r}; choose one of "
                             f"{LIKELIHOODS}")

    @classmethod
    def mlp(cls, dim: int, latent: int, *, key: PRNGKeyArray, width: int = 128, depth: int = 2,
            likelihood: str = "gaussian") -> VAE:
        """Encoder and decoder MLPs of `depth` hidden layers of `width` (SiLU)."""
        k_enc, k_dec = jax.random.split(key)
        enc = eqx.nn.MLP(dim, 2 * latent, width, depth, activation=jax.nn.silu, key=k_enc)
        dec = eqx.nn.MLP(latent, dim, width, depth, activation=jax.nn.silu, key=k_dec)
        return cls(enc, dec, jnp.zeros(dim), latent, likelihood)

    def posterior(self, x: Float[Array, " d"]) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
        """(μ(x), log σ(x)) of q(z | x)."""
        out = self.encoder(x)
        return out[: self.latent], out[self.latent :]

    def log_likelihood(self, x: Float[Array, " d"], z: Float[Array, " k"]) -> Float[Array, ""]:
        """log p(x | z)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":  # x in {0, 1} (or [0, 1]: the cross-entropy)
            return jnp.sum(x * jax.nn.log_sigmoid(out) + (1 - x) * jax.nn.log_sigmoid(-out))
        return _normal_logpdf(x, out, self.log_std_x)

    def log_joint(self, x: Float[Array, " d"], z: Float[Array, " k"]) -> Float[Array, ""]:
        """log p(x, z) = log p(x | z) + log N(z; 0, I)."""
        return self.log_likelihood(x, z) + _normal_logpdf(z, 0.0, jnp.zeros_like(z))

    def generate(self, key: PRNGKeyArray, *, mean: bool = False) -> Float[Array, " d"]:
        """One draw x ~ p(x) (or the decoder mean at a prior draw z when `mean`)."""
        k_z, k_x = jax.random.split(key)
        d = self.log_std_x.shape[0]
        out = self.decoder(jax.random.normal(k_z, (self.latent,), self.log_std_x.dtype))
        if self.likelihood == "bernoulli":
            p = jax.nn.sigmoid(out)
            return p if mean else jax.random.bernoulli(k_x, p).astype(p.dtype)
        if mean:
            return out
        return out + jnp.exp(self.log_std_x) * jax.random.normal(k_x, (d,), out.dtype)


def _draw_posterior(model: VAE, x, key, k: int):
    mu, log_std = model.posterior(x)
    eps = jax.random.normal(key, (k, model.latent), mu.dtype)
    z = mu + jnp.exp(log_std) * eps  # the reparameterisation trick (Kingma & Welling 2014, §2.4)
    log_q = jax.vmap(lambda zi: _normal_logpdf(zi, mu, log_std))(z)
    log_w = jax.vmap(lambda zi: model.log_joint(x, zi))(z) - log_q
    return mu, log_std, z, log_w


def elbo(model: VAE, x: Float[Array, " d"], key: PRNGKeyArray, *,
         kl: str = "analytic") -> Float[Array, ""]:
    """The evidence lower bound E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)) ≤ log p(x), one
    reparameterised draw (Kingma & Welling 2014, eq. 3).

    - `kl="analytic"`: the Gaussian KL in closed form (their eq. 10; lower variance).
    - `kl="mc"`: the single-sample estimate log p(x, z) − log q(z | x) (their eq. 6); it equals
      log p(x) for every z when q is the exact posterior.
    """
    if kl not in ("analytic", "mc"):
        raise ValueError(f"unknown kl estimator {kl!r}; choose 'analytic' or 'mc'")
    mu, log_std, z, log_w = _draw_posterior(model, x, key, 1)
    if kl == "mc":
        return log_w[0]
    kl_term = 0.5 * jnp.sum(mu**2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std)
    return model.log_likelihood(x, z[0]) - kl_term


def iwae_bound(model: VAE, x: Float[Array, " d"], key: PRNGKeyArray, k: int = 64
               ) -> Float[Array, ""]:
    """The importance-weighted bound log (1/k) Σᵢ p(x, zᵢ)/q(zᵢ | x), zᵢ ~ q(z | x)
    (Burda et al. 2016, eq. 8): a lower bound on log p(x) that increases with k (their Thm. 1)
    and tends to it as k → ∞. k = 1 is the ELBO."""
    _, _, _, log_w = _draw_posterior(model, x, key, k)
    return jax.nn.logsumexp(log_w) - math.log(k)


def interpolate(model: VAE, x_a: Float[Array, " d"], x_b: Float[Array, " d"], n: int = 8
                ) -> Float[Array, "n d"]:
    """Decoder means along the straight line between the posterior means of `x_a` and `x_b`."""
    z_a, _ = model.posterior(x_a)
    z_b, _ = model.posterior(x_b)
    w = jnp.linspace(0.0, 1.0, n)[:, None]
    out = jax.vmap(model.decoder)((1 - w) * z_a + w * z_b)
    return jax.nn.sigmoid(out) if model.likelihood == "bernoulli" else out
