"""Objectives: with common random numbers, the loss is lowest at the true score."""

import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.objectives import batch_loss, dsm_loss, ssm_loss


@pytest.mark.parametrize("objective", [dsm_loss, ssm_loss])
@pytest.mark.parametrize("weighting", ["song", "likelihood", "likelihood_is"])
def test_loss_is_minimised_by_the_true_score(mixture, objective, weighting):
    sde = sdegen.VPSDE()
    true = mixture.score(sde)
    x0 = mixture.sample(jax.random.key(0), 20_000)
    key = jax.random.key(1)

    def loss(score):
        return float(batch_loss(objective, sde, score, x0, key, t_eps=1e-3,
                                weighting=weighting))

    best = loss(true)
    for perturbed in (lambda x, t: 1.2 * true(x, t),
                      lambda x, t: true(x, t) + jnp.array([0.3, -0.2]),
                      lambda x, t: true(x + 0.1, t)):
        assert loss(perturbed) > best


@pytest.mark.parametrize("name,weighting", [("vp", "song"), ("vp", "likelihood_is"),
                                            ("subvp", "likelihood_is"), ("ve", "likelihood_is")])
def test_dsm_excess_loss_is_the_weighted_score_error(mixture, name, weighting):
    """E[DSM(s)] - E[DSM(s*)] = E_U[λ(t)] ‖c‖² for s = s* + c (Vincent 2011), where λ = σ² for
    Song's weighting and g² for the likelihood weighting — also when t is importance-sampled."""
    sde = {"vp": sdegen.VPSDE(), "subvp": sdegen.SubVPSDE(),
           "ve": sdegen.VESDE(sigma_min=0.01, sigma_max=10.0)}[name]
    true = mixture.score(sde)
    c = jnp.array([0.5, -0.25]) / (10.0 if name == "ve" else 1.0)
    x0 = mixture.sample(jax.random.key(0), 50_000)
    key = jax.random.key(2)
    kw = dict(t_eps=1e-3, weighting=weighting)
    base = batch_loss(dsm_loss, sde, true, x0, key, **kw)
    shifted = batch_loss(dsm_loss, sde, lambda x, t: true(x, t) + c, x0, key, **kw)
    ts = jnp.linspace(1e-3, 1.0, 200_001)
    lam = jax.vmap(sde.std)(ts) ** 2 if weighting == "song" else jax.vmap(sde.diffusion)(ts) ** 2
    expected = jnp.mean(lam) * jnp.sum(c**2)
    assert jnp.allclose(shifted - base, expected, rtol=0.05), (shifted - base, expected)
