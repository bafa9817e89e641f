"""Bits per dimension: the dequantisation convention against a closed form, the bound on the
discrete likelihood, and the logit transform's log-determinant."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

from sdegen.bpd import bits_per_dim, logit_transform
from sdegen.data.source import DequantizedSource


def test_gaussian_pixel_model_bpd_matches_closed_form_and_bounds_discrete_nll():
    """A factorised Gaussian model N(μ_i, s_i²) over the pixels of dequantised images
    x = (k + u)/L. Closed form of the expected bpd over u: E[(x − μ)²] = (a − μ)² + (a − μ)/L
    + 1/(3L²) with a = k/L, so E[−log p] = Σ ½ log(2π s²) + E[(x − μ)²]/(2 s²). It must also
    upper-bound −log₂ P(k)/D of the discretised Gaussian (Theis et al. 2016, eq. 9), and nearly
    equal it when the bins are narrow (L = 256, s ≫ 1/L)."""
    levels, d = 256, 6
    rng = np.random.default_rng(0)
    k = rng.integers(0, levels, (1, 3, 2, 1))
    mu = jnp.asarray(rng.uniform(0.2, 0.8, (3, 2, 1)))
    s = jnp.asarray(rng.uniform(0.1, 0.3, (3, 2, 1)))
    src = DequantizedSource(k, k, levels)
    x = jax.vmap(lambda key: src.test_set(key, 1)[0])(jax.random.split(jax.random.key(0), 20000))

    def log_p(x):
        return jnp.sum(-0.5 * jnp.log(2 * math.pi * s**2) - (x - mu) ** 2 / (2 * s**2))

    mc = float(jnp.mean(bits_per_dim(jax.vmap(log_p)(x), d, levels)))
    a = jnp.asarray(k[0] / levels)
    e_sq = (a - mu) ** 2 + (a - mu) / levels + 1 / (3 * levels**2)
    e_nll = jnp.sum(0.5 * jnp.log(2 * math.pi * s**2) + e_sq / (2 * s**2))
    closed = (float(e_nll) + d * math.log(levels)) / (d * math.log(2))
    assert abs(mc - closed) < 2e-4, (mc, closed)
    lo, hi = k[0] / levels, (k[0] + 1) / levels
    p_bin = norm.cdf(hi, np.asarray(mu), np.asarray(s)) - norm.cdf(lo, np.asarray(mu),
                                                                    np.asarray(s))
    discrete = -np.sum(np.log2(p_bin)) / d
    # the gap is the Jensen gap within a bin; log₂(256/255) = 0.0056 (the 255 convention) is far
    assert discrete <= closed < discrete + 1e-3, (discrete, closed)


def test_logit_transform_logdet_matches_jacobian():
    x = jax.random.uniform(jax.random.key(1), (2, 2, 2))
    for alpha in (0.05, 1e-6):
        y, logdet = logit_transform(x, alpha)
        jac = jax.jacobian(lambda x, a=alpha: logit_transform(x, a)[0])(x).reshape(8, 8)
        sign, want = jnp.linalg.slogdet(jac)
        assert sign == 1
        np.testing.assert_allclose(logdet, want, rtol=1e-10)
        # the inverse of y = logit(s) is s = sigmoid(y)
        np.testing.assert_allclose((jax.nn.sigmoid(y) - alpha) / (1 - 2 * alpha), x, rtol=1e-8)
