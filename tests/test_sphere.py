"""Sphere S^2: heat kernel (Legendre vs Varadhan), sphere processes through sdegen.sample and
sdegen.log_prob, checked against closed forms (uniform prior, rotation field, analytic
vMF-mixture flow, heat-kernel mixture)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdegen
from sdegen.data.sphere import VMFMixtureFlow
from sdegen.manifolds import Sphere
from sdegen.processes.sphere import (
    heat_kernel_log_prob,
    heat_kernel_sample,
    heat_kernel_score,
    legendre_series,
    varadhan_log_heat_kernel,
)
from sdegen.vmf import VMFMixture

S2 = Sphere()
LOG4PI = math.log(4 * math.pi)


def _grid(n_theta=200, n_phi=400):
    """Gauss–Legendre in cos θ × uniform φ: exact-to-rounding quadrature on S^2 for smooth
    integrands; returns points (m, 3) and area weights (m,) summing to 4π."""
    c, wc = np.polynomial.legendre.leggauss(n_theta)
    phi = np.arange(n_phi) * 2 * np.pi / n_phi
    C, P = np.meshgrid(c, phi, indexing="ij")
    s = np.sqrt(1 - C**2)
    pts = np.stack([s * np.cos(P), s * np.sin(P), C], -1).reshape(-1, 3)
    w = (wc[:, None] * np.full(n_phi, 2 * np.pi / n_phi)[None, :]).reshape(-1)
    return jnp.asarray(pts), jnp.asarray(w)


X0 = jnp.asarray(np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]))


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_heat_kernel_integrates_to_one(tau):
    pts, w = _grid()
    dens = jnp.exp(jax.vmap(lambda x: heat_kernel_log_prob(x, X0, tau))(pts))
    assert abs(float(jnp.sum(w * dens)) - 1.0) < 1e-8


def test_short_time_kernel_integrates_to_one():
    # τ = 0.01 uses the Varadhan form; integrate in c = <x0, x> (it depends on c only)
    c, wc = np.polynomial.legendre.leggauss(400)
    c = 1 - (1 - c) * 0.25  # the mass sits within d < 0.7 rad of x0: c in [0.5, 1]
    d = np.arccos(c)
    dens = np.exp(np.asarray(jax.vmap(lambda dd: varadhan_log_heat_kernel(dd, 0.01))(d)))
    assert abs(2 * np.pi * 0.25 * np.sum(wc * dens) - 1.0) < 1e-4


@pytest.mark.parametrize("tau", [0.01, 0.3])
def test_heat_kernel_score_matches_finite_differences(tau):
    key = jax.random.key(0)
    xs = jax.vmap(lambda k: heat_kernel_sample(k, X0, tau))(jax.random.split(key, 5))
    vs = jax.vmap(S2.to_tangent)(xs, jax.random.normal(jax.random.key(1), (5, 3)))
    h = 1e-5

    @jax.jit
    def both(x, v):
        fd = (heat_kernel_log_prob(S2.exp(x, h * v), X0, tau)
              - heat_kernel_log_prob(S2.exp(x, -h * v), X0, tau)) / (2 * h)
        return fd, heat_kernel_score(x, X0, tau)

    fds, scores = jax.vmap(both)(xs, vs)
    np.testing.assert_allclose(jnp.sum(xs * scores, axis=1), 0.0, atol=1e-12)  # tangent
    np.testing.assert_allclose(jnp.sum(scores * vs, axis=1), fds, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tau", [0.005, 0.02, 0.05])
def test_varadhan_agrees_with_legendre_at_short_times(tau):
    d = jnp.linspace(0.01, 0.6, 7)
    series = jax.vmap(lambda dd: jnp.log(legendre_series(jnp.cos(dd), tau, 400)[0]))(d) - LOG4PI
    short = jax.vmap(lambda dd: varadhan_log_heat_kernel(dd, tau))(d)
    np.testing.assert_allclose(short, series, atol=2e-4)
    # scores: the short-time form (tau < 0.02 switch) against the series' (tau >= 0.02)
    x = jnp.array([jnp.sin(0.3), 0.0, jnp.cos(0.3)])
    pole = jnp.array([0.0, 0.0, 1.0])
    s_series = heat_kernel_score(x, pole, 0.02)
    s_short = heat_kernel_score(x, pole, 0.02 - 1e-12)
    np.testing.assert_allclose(s_short, s_series, rtol=2e-4)


@pytest.mark.parametrize("tau", [0.005, 0.4])
def test_heat_kernel_sampler_first_moment(tau):
    # E[P_1(<x0, X>)] = e^{-2 tau} exactly (P_1 is the l = 1 eigenfunction)
    keys = jax.random.split(jax.random.key(2), 4000)
    xs = jax.vmap(lambda k: heat_kernel_sample(k, X0, tau))(keys)
    c = np.asarray(xs @ X0)
    se = c.std() / np.sqrt(len(c))
    assert abs(c.mean() - math.exp(-2 * tau)) < 4 * se
    np.testing.assert_allclose(np.linalg.norm(np.asarray(xs), axis=1), 1.0, atol=1e-12)


def _points(n=6, seed=3):
    return S2.uniform(jax.random.key(seed), (n, 3))


def test_uniform_prior_log_prob_is_exact():
    proc = sdegen.SphereBrownian()
    pts, w = _grid(20, 40)
    mass = float(jnp.sum(w * jnp.exp(jax.vmap(proc.prior_logp)(pts))))
    assert mass == pytest.approx(1.0, abs=1e-12)
    lp = sdegen.log_prob(proc, lambda x, t: jnp.zeros_like(x), _points())
    np.testing.assert_allclose(lp, -LOG4PI, atol=1e-12)


def test_rotation_field_leaves_uniform_density_unchanged():
    omega = jnp.array([0.3, -1.2, 2.0])

    def rotation(x, t):
        return jnp.cross(omega, x) * (1.0 + t)

    path = sdegen.SphereGeodesicPath()
    x = _points()
    for trace in ("exact", "hutchinson"):
        lp = sdegen.log_prob(path, rotation, x, trace=trace, key=jax.random.key(0))
        np.testing.assert_allclose(lp, -LOG4PI, atol=1e-7)
    # the ODE sample stays on the sphere and is the exact rotation of its start point
    xs = sdegen.sample(path, rotation, key=jax.random.key(1), x_T=x, t_eps=1e-3, rtol=1e-8,
                       atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(xs), axis=1), 1.0, atol=1e-12)
    angle = -(1.0 * (1 - 1e-3) + 0.5 * (1.0 - 1e-6))  # ∫_{t_eps}^{1} (1 + t) dt, backwards
    axis = omega / jnp.linalg.norm(omega)
    rot = jax.scipy.linalg.expm(angle * jnp.linalg.norm(omega) * jnp.cross(axis, jnp.eye(3)).T)
    np.testing.assert_allclose(xs, x @ rot.T, atol=1e-6)


def test_analytic_vmf_mixture_flow_reproduces_density():
    mix = VMFMixture([0.5, 0.3, 0.2], [[0, 0, 1.0], [1.0, 0, 0], [0, -0.6, -0.8]],
                     [8.0, 3.0, 15.0])
    flow = VMFMixtureFlow(mix)
    path = sdegen.SphereGeodesicPath()
    x = mix.sample(jax.random.key(4), 8)
    t_eps = 1e-3
    lp = sdegen.log_prob(path, flow, x, t_eps=t_eps, rtol=1e-7, atol=1e-7)
    ref = jax.vmap(flow.density_at(t_eps).log_prob)(x)
    np.testing.assert_allclose(lp, ref, atol=1e-4)  # stated tolerance: 1e-4 nats


class HeatMixtureScore:
    """Exact score of p_t = Σ w_k K_{τ0+τ(t)}(μ_k, ·) under SphereBrownian."""

    def __init__(self, proc, weights, mus, tau0):
        self.proc, self.w, self.mus, self.tau0 = proc, jnp.asarray(weights), jnp.asarray(mus), tau0

    def log_p(self, x, t):
        tau = self.tau0 + self.proc.tau(t)
        lk = jax.vmap(lambda m: heat_kernel_log_prob(x, m, tau))(self.mus)
        return jax.nn.logsumexp(jnp.log(self.w) + lk)

    def __call__(self, x, t):
        tau = self.tau0 + self.proc.tau(t)
        lk = jax.vmap(lambda m: heat_kernel_log_prob(x, m, tau))(self.mus)
        r = jax.nn.softmax(jnp.log(self.w) + lk)
        return r @ jax.vmap(lambda m: heat_kernel_score(x, m, tau))(self.mus)


@pytest.mark.slow
def test_brownian_probability_flow_with_exact_score_reproduces_density():
    proc = sdegen.SphereBrownian(beta_min=0.1, beta_max=24.0)
    score = HeatMixtureScore(proc, [0.6, 0.4], [[0, 0, 1.0], [0, 1.0, 0]], tau0=0.05)
    x = _points(6, seed=5)
    lp = sdegen.log_prob(proc, jax.tree_util.Partial(score.__call__), x, t_eps=1e-5,
                         rtol=1e-7, atol=1e-7)
    ref = jax.vmap(lambda xx: score.log_p(xx, 1e-5))(x)
    np.testing.assert_allclose(lp, ref, atol=1e-4)


@pytest.mark.parametrize("method", [pytest.param("ode", marks=pytest.mark.slow), "sde"])
def test_sphere_sampling_with_exact_score(method):
    # data = K_{0.1}(pole, ·): E<pole, X> = e^{-0.2}; the walk and the PF-ODE both recover it
    proc = sdegen.SphereBrownian(beta_min=0.1, beta_max=24.0)
    score = HeatMixtureScore(proc, [1.0], [[0, 0, 1.0]], tau0=0.1)
    xs = sdegen.sample(proc, jax.tree_util.Partial(score.__call__), key=jax.random.key(6),
                       shape=(1000, 3), method=method, num_steps=200, t_eps=1e-3, rtol=1e-5,
                       atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(xs), axis=1), 1.0, atol=1e-12)
    c = np.asarray(xs[:, 2])
    expected = math.exp(-2 * (0.1 + proc.tau(1e-3)))
    assert abs(c.mean() - expected) < 4 * c.std() / np.sqrt(len(c)) + 0.01


def test_pc_on_the_sphere_is_refused():
    with pytest.raises(ValueError, match="method='pc' works in R\\^d only"):
        sdegen.sample(sdegen.SphereBrownian(), lambda x, t: x, key=jax.random.key(0),
                      shape=(4, 3), method="pc")
    with pytest.raises(ValueError, match="has only an ODE"):
        sdegen.sample(sdegen.SphereGeodesicPath(), lambda x, t: x, key=jax.random.key(0),
                      shape=(4, 3), method="sde")


def test_manifold_operations():
    x, y = _points(2, seed=7)
    v = S2.log(x, y)
    np.testing.assert_allclose(S2.exp(x, v), y, atol=1e-12)
    assert float(jnp.linalg.norm(v)) == pytest.approx(float(S2.dist(x, y)), abs=1e-12)
    assert abs(float(jnp.dot(v, x))) < 1e-12


def test_geodesic_path_velocity_is_the_time_derivative():
    path = sdegen.SphereGeodesicPath()
    x0, x1 = _points(2, seed=8)
    for t in (0.2, 0.7):
        h = 1e-6
        xt, ut = path.conditional(x0, x1, t)
        fd = (path.conditional(x0, x1, t + h)[0] - path.conditional(x0, x1, t - h)[0]) / (2 * h)
        np.testing.assert_allclose(ut, fd, atol=1e-7)
        assert float(S2.dist(x0, xt)) == pytest.approx(t * float(S2.dist(x0, x1)), abs=1e-12)


@pytest.mark.slow
def test_implicit_score_matching_identity_on_the_sphere():
    # data = δ_{x0}: with the exact score s = ∇log p_t, E[½|s|² + div s] = -½ E|s|² (Green's
    # identity on S², no boundary), so the weighted ISM loss equals -τ(t)|s|² in expectation
    from sdegen.objectives import rism_loss

    proc = sdegen.SphereBrownian(beta_min=0.1, beta_max=4.0)

    def score(x, t):
        return heat_kernel_score(x, X0, proc.tau(t))

    keys = jax.random.split(jax.random.key(9), 3000)
    ism = jax.vmap(lambda k: rism_loss(proc, score, X0, k, t_eps=0.05))(keys)

    def rhs(k):  # the same (t, x_t) draws as rism_loss
        k_t, k_x, _ = jax.random.split(k, 3)
        t = 0.05 + jax.random.uniform(k_t, (), X0.dtype) * (proc.T - 0.05)
        xt = proc.marginal_sample(k_x, X0, t)
        return -proc.tau(t) * jnp.sum(score(xt, t) ** 2)

    ref = jax.vmap(rhs)(keys)
    diff = np.asarray(ism - ref)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(diff))
