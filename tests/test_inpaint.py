"""Inpainting: replacement keeps the observation exactly; the Tweedie conditional-score
correction samples the closed-form conditional Gaussian; replacement (Song et al. 2021,
App. I.2) is biased on a correlated Gaussian, which the test states so a change shows."""

import jax
import jax.numpy as jnp
import numpy as np

import sdegen
from sdegen.conditional import half_mask, inpaint, random_mask, square_mask

SDE = sdegen.VPSDE()
MU = jnp.array([0.5, -1.0, 0.2])
L = jnp.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.7]])
SIGMA = L @ L.T


def gaussian_score(x, t):
    """Exact score of N(μ, Σ) pushed through the VP SDE: N(α μ, α² Σ + σ² I)."""
    a, s = SDE.alpha(t), SDE.std(t)
    return -jnp.linalg.solve(a**2 * SIGMA + s**2 * jnp.eye(3), x - a * MU)


def test_masks():
    m = square_mask((8, 8, 1), 2, 3, 4)
    assert m.shape == (8, 8, 1) and int((~m).sum()) == 16 and not m[2, 3, 0] and m[1, 3, 0]
    h = half_mask((8, 8, 1), "left")
    assert int(h.sum()) == 32 and bool(h[:, :4].all()) and not bool(h[:, 4:].any())
    r = random_mask(jax.random.key(0), (8, 8, 1), 0.3)
    assert r.dtype == bool and 0 < int(r.sum()) < 64


def test_replacement_keeps_observed_pixels_and_tweedie_matches_the_conditional_gaussian():
    y = jnp.array([1.2, 0.0, 0.0])  # observe x_1 = 1.2; impute x_2, x_3
    mask = jnp.array([True, False, False])
    n = 2000
    rep = inpaint(SDE, gaussian_score, y, mask, key=jax.random.key(0), n=n, method="replace",
                  num_steps=200)
    assert np.all(np.asarray(rep[:, 0]) == 1.2)  # exactly the observation
    assert np.all(np.isfinite(rep)) and float(jnp.std(rep[:, 1])) > 0.1
    # closed-form conditional N(μ_u + Σ_uo Σ_oo⁻¹ (y_o − μ_o), Σ_uu − Σ_uo Σ_oo⁻¹ Σ_ou)
    o, u = np.array([0]), np.array([1, 2])
    S = np.asarray(SIGMA)
    gain = S[np.ix_(u, o)] @ np.linalg.inv(S[np.ix_(o, o)])
    mean = np.asarray(MU)[u] + gain @ (np.asarray(y)[o] - np.asarray(MU)[o])
    cov = S[np.ix_(u, u)] - gain @ S[np.ix_(o, u)]
    tw = np.asarray(inpaint(SDE, gaussian_score, y, mask, key=jax.random.key(1), n=n,
                            method="tweedie", jitter=0.0, num_steps=200))
    assert np.all(tw[:, 0] == 1.2)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(tw[:, 1:].mean(0) - mean) < 5 * se + 0.01)
    np.testing.assert_allclose(np.cov(tw[:, 1:], rowvar=False), cov, atol=0.03)
    # replacement's error on the mean of x_2 is several times larger than Tweedie's
    err_rep = abs(float(rep[:, 1].mean()) - mean[0])
    err_tw = abs(float(tw[:, 1].mean()) - mean[0])
    assert err_rep > 0.1 and err_rep > 4 * err_tw
