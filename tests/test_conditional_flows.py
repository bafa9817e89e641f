"""Class-conditional flows against closed forms: on a 2-class Gaussian mixture under the linear
path x_t = (1 - t) x0 + t ε every class-conditional and marginal velocity is known, so
classifier-free guidance of a velocity, class sampling and log p(x | y) can be checked exactly;
the class-conditional OT coupling against per-class brute-force assignments."""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from jax.scipy.special import logsumexp

import sdegen
from sdegen import config as C
from sdegen.conditional import ClassifierFreeGuidance, conditional_fm_loss, conditional_ot_cfm_loss
from sdegen.errors import ConfigError
from sdegen.nets import ClassTimeMLP
from sdegen.objectives import class_ot_coupling

PATH = sdegen.LinearPath()
WEIGHTS, MEANS, STDS = jnp.array([0.3, 0.7]), jnp.array([[-2.0, 1.0], [1.5, -0.5]]), jnp.array(
    [0.4, 0.6])
NULL = 2


def _var(t):
    """Per-class variance of p_t(x | y): (1 - t)² s_y² + t²."""
    return (1 - t) ** 2 * STDS**2 + t**2


def class_velocity(x, t, y):
    """Exact velocity of p_t(x | y) = N((1-t) μ_y, σ_y² I): m' + (σ'/σ)(x - m); for NULL the
    mixture's, Σ_k p_t(k | x) v_k (the marginal velocity: the posterior mean of the class ones)."""
    var = _var(t)
    comp = jax.vmap(lambda m, v, s: -m + (t - (1 - t) * s**2) / v * (x - (1 - t) * m))(
        MEANS, var, STDS)
    logits = jnp.log(WEIGHTS) - 0.5 * jnp.sum((x - (1 - t) * MEANS) ** 2, -1) / var - jnp.log(var)
    post = jax.nn.softmax(logits)
    return jnp.where(y == NULL, post @ comp, comp[jnp.minimum(y, 1)])


def _log_density(x, t, y):
    """log p_t(x | y) (y in {0, 1}) or of the mixture (y = NULL), 2-D."""
    var = _var(t)
    lc = -0.5 * jnp.sum((x - (1 - t) * MEANS) ** 2, -1) / var - jnp.log(2 * jnp.pi * var)
    return jnp.where(y == NULL, logsumexp(jnp.log(WEIGHTS) + lc), lc[jnp.minimum(y, 1)])


def _tweedie_velocity(x, t, y):
    """Independent route: v = (ȧ/a) x + b²(ȧ/a - ḃ/b) ∇ log p_t = -x/(1-t) - t/(1-t) ∇ log p_t."""
    return -x / (1 - t) - t / (1 - t) * jax.grad(_log_density)(x, t, y)


@jax.jit
def _guided(t, y, w):
    xs = jax.random.normal(jax.random.key(0), (16, 2)) * 2.0
    got = jax.vmap(ClassifierFreeGuidance(class_velocity, y, w, NULL), (0, None))(xs, t)
    v_c = jax.vmap(_tweedie_velocity, (0, None, None))(xs, t, y)
    v_u = jax.vmap(_tweedie_velocity, (0, None, None))(xs, t, NULL)
    return got, v_u + (1 + w) * (v_c - v_u), v_c


def test_cfg_of_a_velocity_is_v_u_plus_one_plus_w_times_the_difference():
    for t in (0.2, 0.5, 0.8):
        for y in (0, 1):
            for w in (0.0, 2.5):
                got, want, v_c = _guided(t, y, w)
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
                if w == 0.0:  # w = 0 (ω = 1 in Zheng et al.'s convention) is the class velocity
                    np.testing.assert_allclose(got, v_c, rtol=1e-9, atol=1e-9)


def test_conditional_flow_samples_and_scores_its_class():
    """w = 0 sampling of the exact conditional field lands on class 0's Gaussian, and
    log_prob through the change of variables is log N(x; μ_1, s_1² I) for label 1."""
    field = ClassifierFreeGuidance(class_velocity, 0, 0.0, NULL)
    x = sdegen.sample(PATH, field, key=jax.random.key(1), shape=(2000, 2), method="ode",
                      t_eps=0.0, rtol=1e-6, atol=1e-6)
    se = STDS[0] / np.sqrt(2000)
    np.testing.assert_allclose(x.mean(0), MEANS[0], atol=5 * se)
    np.testing.assert_allclose(x.std(0), STDS[0], rtol=0.06)
    pts = MEANS[1] + STDS[1] * jax.random.normal(jax.random.key(2), (8, 2))
    lp = sdegen.log_prob(PATH, ClassifierFreeGuidance(class_velocity, 1, 0.0, NULL), pts,
                         t_eps=0.0, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(lp, jax.vmap(_log_density, (0, None, None))(pts, 0.0, 1),
                               atol=1e-5)


@pytest.mark.parametrize("assignment", ["scipy", "optax"])
def test_class_ot_coupling_never_crosses_classes_and_is_optimal_per_class(assignment):
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    labels = jax.random.randint(k1, (13,), 0, 3)
    x0 = jax.random.normal(k2, (13, 2)) + 3.0 * labels[:, None]
    eps = jax.random.normal(k3, (13, 2))
    paired = np.asarray(class_ot_coupling(x0, eps, labels, assignment=assignment))
    perm = np.array([int(np.argmin(np.abs(np.asarray(eps) - p).sum(1))) for p in paired])
    assert sorted(perm) == list(range(13))  # a permutation of the noise draws
    labels, x0, eps = np.asarray(labels), np.asarray(x0), np.asarray(eps)
    np.testing.assert_array_equal(labels[perm], labels)
    for c in np.unique(labels):
        i = np.flatnonzero(labels == c)
        cost = ((x0[i, None] - eps[None, i]) ** 2).sum(-1)
        r, col = scipy.optimize.linear_sum_assignment(cost)
        got = ((x0[i] - eps[perm[i]]) ** 2).sum()
        np.testing.assert_allclose(got, cost[r, col].sum(), rtol=1e-6)


def test_label_dropout_trains_the_null_row_and_only_it():
    """p_uncond = 1: only the null label's embedding gets a gradient; p_uncond = 0: never it.
    For the per-example loss and the class-coupled batch loss alike."""
    net = ClassTimeMLP((2,), 2, key=jax.random.key(4), width=8, depth=1, embed=4)
    x0 = MEANS[jnp.array([0, 1, 1, 0])]
    y = jnp.array([0, 1, 1, 0])

    def grads(p):
        per = lambda m, k: jnp.mean(jax.vmap(lambda x, c, kk: conditional_fm_loss(
            PATH, m, (x, c), kk, null=NULL, p_uncond=p))(x0, y, jax.random.split(k, 4)))
        ot = lambda m, k: conditional_ot_cfm_loss(PATH, m, (x0, y), k, null=NULL, p_uncond=p)
        return [np.abs(np.asarray(eqx.filter_grad(f)(net, jax.random.key(5)).label_embed.weight
                                  )).sum(1) for f in (per, ot)]

    for g in grads(1.0):
        assert g[NULL] > 0 and np.all(g[:NULL] == 0)
    for g in grads(0.0):
        assert g[NULL] == 0 and np.all(g[:NULL] > 0)


def test_conditional_fm_config_trains_and_draws_guided_through_runs():
    """data.conditional=true validates for fm and ot_cfm; a tiny fm run takes training steps
    with label dropout, and `runs.guided_field` + `runs.draw` sample it for a label and a
    guidance weight as for diffusion; unsupported objectives and bad labels are one-line errors."""
    from sdegen.fit import fit
    from sdegen.runs import Run, draw, guided_field
    from sdegen.train import keys

    tiny = {"model": {"width": 8, "depth": 1}, "data": {"name": "digits", "conditional": True}}
    C.from_dict({**tiny, "objective": {"kind": "ot_cfm"}, "process": {"kind": "flow_linear"}})
    cfg = C.from_dict({**tiny, "objective": {"kind": "fm", "t_eps": 0.0},
                       "process": {"kind": "flow_linear"}, "sample": {"t_eps": 0.0}})
    data = C.build_data(cfg)
    model = C.build_field(cfg, data.shape, jax.random.key(0), data=data)
    assert isinstance(model, ClassTimeMLP)
    loss = C.build_loss(cfg, C.build_process(cfg.process), data.num_classes)
    result = fit(loss, model, data.train_batch, key=jax.random.key(1), steps=2, batch_size=8,
                 progress=False)
    assert result.step == 2
    run = Run(Path("tiny"), cfg, result.model, data, C.build_process(cfg.process), keys(cfg))
    field = guided_field(run, 3, 2.0)
    assert isinstance(field, ClassifierFreeGuidance) and field.null == 10
    x, stats = draw(cfg, field, 3, jax.random.key(2), shape=data.shape, process=run.process)
    assert x.shape == (3, 8, 8, 1) and np.all(np.isfinite(x)) and stats.nfe > 0
    for bad, match in ((dict(label=10), "out of range"), (dict(guidance=1.0), "needs a class")):
        with pytest.raises(ConfigError, match=match):
            guided_field(run, **bad)
    with pytest.raises(ConfigError, match="not available for process.kind=cnf") as err:
        C.from_dict({**tiny, "objective": {"kind": "maxlik"}, "process": {"kind": "cnf"}})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="objective.kind must be dsm or fm or ot_cfm or "
                                          "classifier, got ssm"):
        C.from_dict({**tiny, "objective": {"kind": "ssm"}})

