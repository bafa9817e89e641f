"""Fréchet distance against the closed form for Gaussians, and the feature-extractor path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from sdegen.metrics import feature_distance, frechet_distance, frechet_gaussian


def test_frechet_gaussian_closed_forms():
    rng = np.random.default_rng(0)
    # commuting (diagonal) covariances: ‖Δμ‖² + Σ (√a − √b)²
    a, b = rng.uniform(0.2, 3.0, 5), rng.uniform(0.2, 3.0, 5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    want = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_gaussian(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # general covariances: independent formula with scipy's sqrtm of Σ₁Σ₂
    A, B = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = A @ A.T + 0.1 * np.eye(5), B @ B.T + 0.1 * np.eye(5)
    cross = np.real(scipy.linalg.sqrtm(c1 @ c2))
    want = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * cross)
    assert frechet_gaussian(m1, c1, m2, c2) == pytest.approx(want, rel=1e-8)
    assert frechet_gaussian(m1, c1, m1, c1) == pytest.approx(0.0, abs=1e-9)


def test_feature_distance_of_samples():
    x = jax.random.normal(jax.random.key(0), (4000, 3))
    features = lambda v: jnp.stack([v[0], 2.0 * v[1], v[2] + v[0]])  # a linear extractor
    assert feature_distance(features, x, x) == pytest.approx(0.0, abs=1e-9)
    # shifting the mean by δ in input 0 moves features 0 and 2 by δ: distance ≈ 2δ²
    d = feature_distance(features, x, x.at[:, 0].add(0.5))
    assert d == pytest.approx(2 * 0.25, rel=0.02)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 2)), np.zeros((3, 2)))
