"""Exact likelihood of the PF-ODE with the analytic score against the analytic density of
p_{t_eps}. The processes run long enough that p_T equals the prior to < 1e-4 nats, so the
comparison measures the solver and divergence, not the prior mismatch."""

import jax
import jax.numpy as jnp
import pytest

import sdegen

T_EPS = 1e-5


@pytest.fixture(scope="module")
def points(mixture):
    return mixture.sample(jax.random.key(3), 300)


def test_exact_log_prob_matches_analytic_density(mixture, points, long_sdes, sde_name):
    sde = long_sdes[sde_name]
    lp = sdegen.log_prob(sde, mixture.score(sde), points, rtol=1e-6, atol=1e-6, t_eps=T_EPS)
    true = jax.vmap(lambda y: mixture.log_prob_t(sde, y, T_EPS))(points)
    err = jnp.abs(lp - true)
    assert float(err.mean()) <= 2e-3, float(err.mean())
    assert float(err.max()) <= 1e-2, float(err.max())


def test_hutchinson_is_unbiased(mixture, points, long_sdes):
    sde = long_sdes["vp"]
    score = mixture.score(sde)
    exact = sdegen.log_prob(sde, score, points, trace="exact")
    hutch = sdegen.log_prob(sde, score, points, trace="hutchinson", key=jax.random.key(0))
    diff = hutch - exact
    se = float(diff.std() / jnp.sqrt(diff.size))
    assert float(diff.std()) > 1e-3  # it is an estimate, not the exact trace
    assert abs(float(diff.mean())) < 4 * se


def test_log_prob_input_errors(mixture, long_sdes):
    sde = long_sdes["vp"]
    with pytest.raises(ValueError, match="batched"):
        sdegen.log_prob(sde, mixture.score(sde), jnp.zeros(2))
    with pytest.raises(ValueError, match="key"):
        sdegen.log_prob(sde, mixture.score(sde), jnp.zeros((3, 2)), trace="hutchinson")
