"""Guidance against closed forms on a 2-class Gaussian mixture, whose class-conditional and
marginal scores and exact posterior p_t(y | x) are known at every t under a linear SDE."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdegen
from sdegen.conditional import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    classifier_loss,
    conditional_dsm_loss,
    label_dropout,
)
from sdegen.data import GaussianMixture

SDE = sdegen.VPSDE()
WEIGHTS, MEANS, STDS = jnp.array([0.3, 0.7]), jnp.array([[-2.0, 1.0], [1.5, -0.5]]), jnp.array(
    [0.4, 0.6])
MIX = GaussianMixture(WEIGHTS, MEANS, STDS)
NULL = 2


def class_score(x, t, y):
    """Exact ∇ log p_t(x | y) (component y under the SDE), or the mixture score for NULL."""
    a, s = SDE.alpha(t), SDE.std(t)
    var = a**2 * STDS**2 + s**2
    comp = -(x - a * MEANS[jnp.minimum(y, 1)]) / var[jnp.minimum(y, 1)]
    return jnp.where(y == NULL, MIX.score(SDE)(x, t), comp)


def exact_logits(x, t):
    """log π_k + log N(x; α μ_k, (α² s_k² + σ²) I): the exact posterior p_t(y | x) up to a
    constant."""
    a, s = SDE.alpha(t), SDE.std(t)
    var = a**2 * STDS**2 + s**2
    sq = jnp.sum((x[None] - a * MEANS) ** 2, axis=-1)
    return jnp.log(WEIGHTS) - 0.5 * sq / var - jnp.log(var)  # d = 2: log det = 2 log √var


def grid():
    return jax.random.normal(jax.random.key(0), (16, 2)) * 2.0, jnp.array([0.05, 0.3, 0.7])


@jax.jit
def _cfg_vs_closed_form(t, y, w):
    xs = grid()[0]
    got = jax.vmap(ClassifierFreeGuidance(class_score, y, w, NULL), (0, None))(xs, t)
    # independent: gradients of the closed-form log densities
    var = SDE.alpha(t) ** 2 * STDS[y] ** 2 + SDE.std(t) ** 2
    lp_c = jax.vmap(jax.grad(lambda x: -0.5 * jnp.sum((x - SDE.alpha(t) * MEANS[y]) ** 2) / var))
    lp_m = jax.vmap(jax.grad(lambda x: MIX.log_prob_t(SDE, x, t)))
    want = (1 + w) * lp_c(xs) - w * lp_m(xs)
    return got, want, jax.vmap(class_score, (0, None, None))(xs, t, y)


@jax.jit
def _classifier_guidance(t, y, w):
    xs = grid()[0]
    guided = jax.vmap(ClassifierGuidance(MIX.score(SDE), exact_logits, y, w), (0, None))(xs, t)
    return (guided, jax.vmap(class_score, (0, None, None))(xs, t, y),
            jax.vmap(MIX.score(SDE), (0, None))(xs, t))


def test_cfg_w0_is_the_class_score_and_w_follows_eq6():
    for t in grid()[1]:
        for y in (0, 1):
            for w in (0.0, 2.5):
                got, want, cond = _cfg_vs_closed_form(t, y, w)
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
                if w == 0.0:
                    np.testing.assert_array_equal(got, cond)


def test_classifier_guidance_with_exact_posterior_is_the_class_score():
    for t in grid()[1]:
        for y in (0, 1):
            guided, cond, _ = _classifier_guidance(t, y, 1.0)
            np.testing.assert_allclose(guided, cond, rtol=1e-8, atol=1e-8)
            guided, _, marginal = _classifier_guidance(t, y, 0.0)
            np.testing.assert_array_equal(guided, marginal)


def test_guided_sampling_draws_the_class():
    """Every sampler takes the guided field: class 0 (weight 0.3) drawn by classifier
    guidance at w = 1 has the component's mean and spread."""
    field = ClassifierGuidance(MIX.score(SDE), exact_logits, 0, 1.0)
    x = sdegen.sample(SDE, field, key=jax.random.key(1), shape=(2000, 2), method="sde",
                      num_steps=300)
    se = STDS[0] / np.sqrt(2000)
    np.testing.assert_allclose(x.mean(0), MEANS[0], atol=5 * se + 0.02)
    np.testing.assert_allclose(x.std(0), STDS[0], rtol=0.1)


@jax.jit
def _losses(key):
    """Label-dropout draws, and mean conditional-DSM / classifier losses of the exact models and
    of label-blind ones at the same noise draws, on labelled mixture data (label = component)."""
    k_drop, k_idx, k_eps, k_loss = jax.random.split(key, 4)
    n = 3000
    dropped = jax.vmap(lambda k: label_dropout(k, 1, 0.25, NULL))(jax.random.split(k_drop, n))
    ys = jax.random.bernoulli(k_idx, WEIGHTS[1], (n,)).astype(int)
    x0 = MEANS[ys] + STDS[ys, None] * jax.random.normal(k_eps, (n, 2))
    lk = jax.random.split(k_loss, n)

    def dsm(score):
        f = lambda x, y, k: conditional_dsm_loss(SDE, score, (x, y), k, null=NULL, p_uncond=0.0)
        return jnp.mean(jax.vmap(f)(x0, ys, lk))

    def ce(clf):
        return jnp.mean(jax.vmap(lambda x, y, k: classifier_loss(SDE, clf, (x, y), k))(x0, ys, lk))

    blind_score = lambda x, t, y: MIX.score(SDE)(x, t)
    blind_clf = lambda x, t: jnp.log(WEIGHTS)
    return dropped, dsm(class_score), dsm(blind_score), ce(exact_logits), ce(blind_clf)


def test_label_dropout_rate_and_losses_prefer_the_true_model():
    dropped, dsm_true, dsm_blind, ce_true, ce_blind = _losses(jax.random.key(2))
    assert set(np.unique(dropped)) == {1, NULL}
    assert abs(np.mean(dropped == NULL) - 0.25) < 4 * np.sqrt(0.25 * 0.75 / len(dropped))
    assert dsm_true < dsm_blind - 0.05
    assert ce_true < ce_blind - 0.05


def test_cfg_with_a_network_w0_equals_conditional_call():
    from sdegen.fields import ScoreField
    from sdegen.nets import ClassTimeMLP

    net = ClassTimeMLP((2,), 2, key=jax.random.key(0), width=16, depth=1)
    score = ScoreField(net, SDE, "noise")
    x = jnp.array([0.3, -0.2])
    np.testing.assert_array_equal(ClassifierFreeGuidance(score, 1, 0.0, NULL)(x, 0.4),
                                  score(x, 0.4, 1))
    np.testing.assert_array_equal(score(x, 0.4), score(x, 0.4, NULL))  # y=None is the null class


def test_conditional_config_errors_are_one_line():
    from sdegen import config as C
    from sdegen.errors import ConfigError

    with pytest.raises(ConfigError, match="needs labels: set data.conditional=true"):
        C.from_dict({"data": {"name": "digits"}, "objective": {"kind": "classifier"}})
    with pytest.raises(ConfigError, match="labelled images"):
        C.from_dict({"data": {"conditional": True}})
    with pytest.raises(ConfigError,
                       match="objective.kind must be dsm or fm or ot_cfm or classifier"):
        C.from_dict({"data": {"name": "digits", "conditional": True},
                     "objective": {"kind": "ssm"}})
