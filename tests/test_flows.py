"""Neural-ODE flows (CNF, flow matching, OT-CFM) and invertibility, against closed forms:
a linear field's flow is expm(A t), its log-density a pushed-forward Gaussian; conditional
path velocities are time derivatives of the paths; the OT coupling is the brute-force optimum."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdegen
from sdegen.likelihood import divergence_exact, divergence_hutchinson
from sdegen.nets import TimeMLP
from sdegen.objectives import fm_loss, ot_coupling

A = jnp.array([[-0.4, 1.1], [-0.7, 0.3]])


def linear_field(x, t):
    return A @ x


def _gauss_logp(z):
    return -0.5 * jnp.sum(z**2, -1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


@pytest.fixture(scope="module")
def points():
    return jax.random.normal(jax.random.key(1), (16, 2))


@pytest.fixture(scope="module")
def mlp():
    return TimeMLP(2, key=jax.random.key(2), width=16, depth=2, n_freq=4, max_freq=4.0)


def test_linear_field_log_prob_is_pushed_forward_gaussian(points):
    """v(x) = A x: x_T = expm(A T) x, so log p(x) = log N(expm(A) x; 0, I) + T tr(A)."""
    cnf = sdegen.CNF()
    lp, stats = sdegen.log_prob(cnf, linear_field, points, t_eps=0.0, rtol=1e-10, atol=1e-10,
                                return_stats=True)
    z = points @ jax.scipy.linalg.expm(A).T
    expected = _gauss_logp(z) + jnp.trace(A)
    np.testing.assert_allclose(lp, expected, atol=1e-8)
    score = sdegen.anomaly_score(cnf, linear_field, points, t_eps=0.0, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(score, -expected, atol=1e-8)
    assert stats.nfe > 0
    # encode is the same flow: expm(A) x
    np.testing.assert_allclose(sdegen.encode(cnf, linear_field, points, t_eps=0.0), z, atol=1e-7)


def test_hutchinson_averages_to_exact_trace(points, mlp):
    x, t = points[0], 0.3
    exact = divergence_exact(mlp, x, t)
    probes = jax.random.rademacher(jax.random.key(3), (4000, 2), dtype=x.dtype)
    est = jax.vmap(lambda p: divergence_hutchinson(mlp, x, t, p))(probes)
    se = jnp.std(est) / math.sqrt(est.shape[0])
    assert float(jnp.std(est)) > 1e-3  # the estimate really is noisy ...
    assert abs(jnp.mean(est) - exact) < 4 * se  # ... and unbiased
    # through the whole solve, for v = A x: the estimate is εᵀAε per example, constant in t,
    # so log p_hutchinson - log p_exact = εᵀAε - tr(A) exactly, and it averages to zero
    xs = jnp.broadcast_to(points[:1], (16, 2))
    key = jax.random.key(4)
    lp_h = sdegen.log_prob(sdegen.CNF(), linear_field, xs, trace="hutchinson", key=key,
                           t_eps=0.0, rtol=1e-10, atol=1e-10)
    lp_e = sdegen.log_prob(sdegen.CNF(), linear_field, xs, t_eps=0.0, rtol=1e-10, atol=1e-10)
    eps = jax.random.rademacher(key, xs.shape, dtype=xs.dtype)  # log_prob's documented probe
    quad = jnp.einsum("ni,ij,nj->n", eps, A, eps)
    np.testing.assert_allclose(lp_h - lp_e, quad - jnp.trace(A), atol=1e-8)
    all_signs = jnp.array(list(itertools.product([-1.0, 1.0], repeat=2)))
    assert jnp.mean(jnp.einsum("ni,ij,nj->n", all_signs, A, all_signs)) == pytest.approx(
        float(jnp.trace(A)))


@pytest.mark.parametrize("which", ["cnf", "vp_pf_ode"])  # a flow path's velocity = a CNF's
def test_encode_decode_round_trip(which, points, mlp, mixture):
    if which == "vp_pf_ode":
        process = sdegen.VPSDE()
        field = sdegen.data.MixtureScore(mixture, process)
        x, t_eps = mixture.sample(jax.random.key(5), 16), 1e-3
    else:
        process, field, x, t_eps = sdegen.CNF(), mlp, points, 0.0
    z = sdegen.encode(process, field, x, t_eps=t_eps)
    assert float(jnp.max(jnp.abs(z - x))) > 0.05  # the flow moved the points
    back = sdegen.decode(process, field, z, t_eps=t_eps)
    assert float(jnp.max(jnp.abs(back - x))) <= 1e-4


def test_temperature_scales_the_prior_draw():
    """A linear flow commutes with scaling, so sample(τ) = τ · sample(1) with the same key."""
    cnf, key = sdegen.CNF(), jax.random.key(6)
    kw = dict(key=key, shape=(8, 2), t_eps=0.0, rtol=1e-9, atol=1e-9)
    x1 = sdegen.sample(cnf, linear_field, **kw)
    x_half = sdegen.sample(cnf, linear_field, temperature=0.5, **kw)
    np.testing.assert_allclose(x_half, 0.5 * x1, atol=1e-8)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        sdegen.sample(cnf, linear_field, temperature=0.0, **kw)


def test_edit_and_attribute_direction():
    z_a = jnp.array([[0.0, 0.0], [2.0, 0.0]])
    z_b = jnp.array([[1.0, 3.0], [1.0, 5.0], [1.0, 4.0]])
    v = sdegen.attribute_direction(z_a, z_b)
    np.testing.assert_allclose(v, [0.0, 4.0])
    np.testing.assert_allclose(sdegen.edit(z_a, v, 0.5), [[0.0, 2.0], [2.0, 2.0]])


@pytest.mark.parametrize("path", [sdegen.LinearPath(sigma_min=0.1), sdegen.VPPath()])
def test_conditional_velocity_is_path_derivative(path):
    x0, eps = jnp.array([1.5, -0.5]), jnp.array([0.3, 0.8])
    for t in (0.2, 0.7):
        _, dxdt = jax.jvp(lambda s: path.conditional(x0, eps, s)[0], (t,), (1.0,))
        np.testing.assert_allclose(path.conditional(x0, eps, t)[1], dxdt, rtol=1e-10)
    xT, _ = path.conditional(x0, eps, 1.0)
    tol = 1e-12 if isinstance(path, sdegen.LinearPath) else 1e-2  # VP: α(1) = e^{-5.025}
    np.testing.assert_allclose(xT, eps, atol=tol)
    np.testing.assert_allclose(path.conditional(x0, eps, 0.0)[0],
                               x0 + (0.1 * eps if isinstance(path, sdegen.LinearPath) else 0),
                               atol=1e-12)


def test_fm_loss_is_zero_for_the_exact_conditional_velocity():
    """With one data point the marginal velocity is the conditional one, u_t = (1-σ)ε - x0, and
    ε = (x_t - (1-t) x0) / (σ + (1-σ)t): then the loss vanishes for every key."""
    path, x0 = sdegen.LinearPath(sigma_min=0.05), jnp.array([1.0, -2.0])

    def exact(x, t):
        eps = (x - (1 - t) * x0) / (0.05 + 0.95 * t)
        return 0.95 * eps - x0

    loss = jax.jit(jax.vmap(lambda k: fm_loss(path, exact, x0, k)))
    losses = loss(jax.random.split(jax.random.key(0), 8))
    assert float(jnp.max(losses)) < 1e-20


def test_ot_coupling_is_optimal_and_shortens_paths():
    key = jax.random.key(7)
    x0 = jax.random.normal(key, (6, 2)) + 3.0
    eps = jax.random.normal(jax.random.fold_in(key, 1), (6, 2))
    paired = ot_coupling(x0, eps)
    x0_np, eps_np = np.asarray(x0), np.asarray(eps)
    cost = lambda e: float(np.sum((x0_np - np.asarray(e)) ** 2))  # noqa: E731
    brute = min(cost(eps_np[list(p)]) for p in itertools.permutations(range(6)))
    assert cost(paired) == pytest.approx(brute, rel=1e-12)
    assert sorted(map(tuple, np.asarray(paired))) == sorted(map(tuple, np.asarray(eps)))
    # mean path energy ∫‖u_t‖² dt = ‖ε - x0‖² for the straight path (σ_min = 0), 8gaussians data
    x = sdegen.data.eight_gaussians().sample(key, 256)
    e = jax.random.normal(jax.random.fold_in(key, 2), (256, 2))
    independent = jnp.mean(jnp.sum((e - x) ** 2, -1))
    ot = jnp.mean(jnp.sum((ot_coupling(x, e) - x) ** 2, -1))
    assert ot < 0.6 * independent, (ot, independent)


def test_t_eps_zero_only_where_the_field_is_regular(points):
    with pytest.raises(ValueError, match=r"t_eps must lie in \(0, T=1.0\) \(the score is"):
        sdegen.log_prob(sdegen.VPSDE(), linear_field, points, t_eps=0.0)
    with pytest.raises(ValueError, match="needs a stochastic process"):
        sdegen.sample(sdegen.CNF(), linear_field, key=jax.random.key(0), shape=(4, 2),
                      method="sde")


def test_auroc_matches_hand_count():
    from sdegen.metrics import auroc, roc_curve

    pos = jnp.array([0.9, 0.8, 0.4, 0.3])
    neg = jnp.array([0.7, 0.4, 0.1])
    # pairs pos > neg: 0.9→3, 0.8→3, 0.4→1 (+ a tie with 0.4 → ½), 0.3→1: 8.5 of 12
    assert float(auroc(pos, neg)) == pytest.approx(8.5 / 12)
    fpr, tpr = roc_curve(pos, neg)
    assert float(jnp.trapezoid(tpr, fpr)) == pytest.approx(8.5 / 12)


def test_sorted_auroc_and_roc_match_all_pairs_with_ties():
    """The sort-based AUROC and ROC equal the all-pairs count (computed here in numpy) on
    scores with many ties."""
    import numpy as np

    from sdegen.metrics import auroc, roc_curve

    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 20, 300).astype(float), rng.integers(3, 23, 200).astype(float)
    diff = pos[:, None] - neg[None, :]
    pairs = np.mean((diff > 0) + 0.5 * (diff == 0))
    assert float(auroc(jnp.asarray(pos), jnp.asarray(neg))) == pytest.approx(pairs, abs=1e-12)
    fpr, tpr = roc_curve(jnp.asarray(pos), jnp.asarray(neg))
    th = np.sort(np.concatenate([pos, neg]))[::-1]
    assert np.allclose(fpr[1:], np.mean(neg[None, :] >= th[:, None], axis=1))
    assert np.allclose(tpr[1:], np.mean(pos[None, :] >= th[:, None], axis=1))


@pytest.mark.parametrize("overrides,needle", [
    (["process.kind=cnf"], "for cnf use objective.kind=maxlik"),
    (["objective.kind=fm"], "needs process.kind=flow_linear or flow_vp, got vp"),
    (["process.kind=flow_vp", "objective.kind=fm", "objective.t_eps=0"],
     "'objective.t_eps' must be > 0 for process.kind=flow_vp"),
    (["process.kind=cnf", "objective.kind=maxlik", "sample.method=pc"], "set sample.method=ode"),
    (["sample.t_eps=0"], "'sample.t_eps' must be > 0 for process.kind=vp"),
])
def test_config_rejects_mismatched_flow_settings(overrides, needle):
    from sdegen import ConfigError
    from sdegen import config as C

    with pytest.raises(ConfigError, match=needle) as err:
        C.from_dict({}, overrides)
    assert "\n" not in str(err.value)
    C.from_dict({}, ["process.kind=cnf", "objective.kind=maxlik", "objective.t_eps=0",
                     "sample.t_eps=0", "eval.t_eps=0"])  # a CNF integrates to t = 0


def test_ot_assignment_on_device_matches_scipy():
    """optax's Hungarian (on the device) finds a matching of the same total cost as scipy's
    `linear_sum_assignment` (on the host), and both are permutations."""
    from sdegen.objectives.flow import ASSIGNMENTS

    x0 = jax.random.normal(jax.random.key(3), (48, 2))
    eps = jax.random.normal(jax.random.key(4), (48, 2))
    costs = {}
    for name in ("scipy", "optax"):
        paired = ot_coupling(x0, eps, assignment=name)
        assert sorted(np.asarray(paired[:, 0]).tolist()) == sorted(np.asarray(eps[:, 0]).tolist())
        costs[name] = float(jnp.sum((paired - x0) ** 2))
    np.testing.assert_allclose(costs["optax"], costs["scipy"], rtol=1e-6)
    assert set(ASSIGNMENTS) == {"scipy", "optax"}
