"""Processes: closed-form kernels against Monte Carlo simulation of the SDE as written."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdegen
from sdegen.sample import simulate_forward


def test_marginal_matches_monte_carlo(sdes, sde_name):
    """Simulate dx = f dt + g dW by Euler–Maruyama from a point mass; the empirical mean and
    std at several t must match `marginal` within Monte Carlo + discretisation error."""
    sde = sdes[sde_name]
    n, x0 = 20_000, jnp.array([1.5, -0.5])
    ts = jnp.array([0.05, 0.3, 0.7, 1.0])
    paths = simulate_forward(sde, jnp.tile(x0, (n, 1)), key=jax.random.key(0), save_ts=ts,
                             num_steps=2000)
    for i, t in enumerate(ts):
        mean, std = sde.marginal(x0, t)
        emp_mean, emp_std = paths[i].mean(0), paths[i].std(0)
        se = std / np.sqrt(n)
        assert np.all(np.abs(emp_mean - mean) < 5 * se + 2e-3 * (1 + np.abs(mean))), (t, emp_mean)
        assert np.all(np.abs(emp_std / std - 1) < 0.03), (t, emp_std, std)


def test_prior_logp_is_the_gaussian_density():
    sde = sdegen.VESDE(sigma_min=0.01, sigma_max=7.0)
    z = jnp.array([0.3, -2.0, 1.0])
    expected = jnp.sum(jax.scipy.stats.norm.logpdf(z, scale=7.0))
    assert jnp.allclose(sde.prior_logp(z), expected, rtol=1e-12)
    x = sde.prior_sample(jax.random.key(1), (50_000, 3))
    assert abs(float(x.std()) / 7.0 - 1) < 0.01


def test_pf_ode_preserves_the_analytic_marginal(mixture, sdes):
    """Continuity equation ∂p/∂t = -∇·(p v) for the PF-ODE velocity of the exact score,
    checked pointwise with autodiff on the closed-form mixture marginal (Song et al., eq. 13)."""
    x, t = jnp.array([0.4, -0.7]), 0.3
    for sde in sdes.values():
        v = sdegen.probability_flow(sde, mixture.score(sde))

        def density(y, s, sde=sde):
            return jnp.exp(mixture.log_prob_t(sde, y, s))

        dp_dt = jax.grad(density, argnums=1)(x, t)
        div = jnp.trace(jax.jacfwd(lambda y, v=v, density=density: density(y, t) * v(y, t))(x))
        assert jnp.allclose(dp_dt, -div, rtol=1e-8, atol=1e-10)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="sigma_max"):
        sdegen.VESDE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="beta_max"):
        sdegen.VPSDE(beta_max=-1.0)
