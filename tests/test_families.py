"""The classic families against closed forms: linear-Gaussian VAE, IWAE ordering, wake–sleep
on an enumerable binary distribution, GAN losses at the optimal discriminator."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sdegen.families import (
    GAN,
    VAE,
    HelmholtzMachine,
    discriminator_loss,
    elbo,
    gan_loss,
    generator_loss,
    helmholtz_log_prob,
    iwae_bound,
    r1_penalty,
    wake_sleep_loss,
)


def _linear(weight, bias):
    layer = eqx.nn.Linear(weight.shape[1], weight.shape[0], key=jax.random.key(0))
    layer = eqx.tree_at(lambda m: m.weight, layer, jnp.asarray(weight))
    return eqx.tree_at(lambda m: m.bias, layer, jnp.asarray(bias))


@pytest.fixture(scope="module")
def linear_gaussian():
    """p(z) = N(0, I₂), p(x | z) = N(W z + b, σ² I₃) with orthogonal columns of W, so the exact
    posterior is diagonal and a linear encoder represents it."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 2)))
    W, b, sx = q * np.array([1.5, 0.7]), np.array([0.3, -0.2, 0.5]), 0.5
    post_var = 1.0 / (1.0 + np.sum(W**2, 0) / sx**2)
    A = (post_var[:, None] * W.T) / sx**2
    enc = _linear(np.vstack([A, np.zeros((2, 3))]),
                  np.concatenate([-A @ b, 0.5 * np.log(post_var)]))
    model = VAE(enc, _linear(W, b), jnp.full(3, math.log(sx)), latent=2)
    cov = W @ W.T + sx**2 * np.eye(3)

    def exact(x):
        r = x - b
        return float(-0.5 * r @ np.linalg.solve(cov, r) - 0.5 * np.linalg.slogdet(cov)[1]
                     - 1.5 * math.log(2 * math.pi))

    return model, exact


def test_elbo_is_exact_with_true_posterior(linear_gaussian):
    model, exact = linear_gaussian
    x = jnp.array([0.4, 1.0, -0.8])
    keys = jax.random.split(jax.random.key(1), 4000)
    mc = jax.vmap(lambda k: elbo(model, x, k, kl="mc"))(keys)
    np.testing.assert_allclose(mc, exact(np.asarray(x)), atol=1e-10)  # every draw
    analytic = jax.vmap(lambda k: elbo(model, x, k))(keys)
    err = float(jnp.std(analytic)) / math.sqrt(len(keys))
    assert abs(float(jnp.mean(analytic)) - exact(np.asarray(x))) < 4 * err + 1e-12


def test_iwae_increases_with_k_and_stays_below(linear_gaussian):
    model, exact = linear_gaussian
    # a wrong encoder: shifted means, too narrow
    enc = model.encoder
    bad = eqx.tree_at(lambda m: m.bias, enc, enc.bias + jnp.array([0.6, -0.4, -0.5, -0.5]))
    model = eqx.tree_at(lambda m: m.encoder, model, bad)
    x = jnp.array([0.4, 1.0, -0.8])
    keys = jax.random.split(jax.random.key(2), 3000)
    means = [float(jnp.mean(jax.vmap(lambda kk, k=k: iwae_bound(model, x, kk, k))(keys)))
             for k in (1, 4, 32)]
    truth = exact(np.asarray(x))
    assert means[0] < means[1] < means[2] < truth
    assert truth - means[2] < 0.5 * (truth - means[0])  # and it closes most of the gap


def _enumerate_log_px(model, d, hidden):
    hs = jnp.array(list(itertools.product([0.0, 1.0], repeat=hidden)))
    xs = jnp.array(list(itertools.product([0.0, 1.0], repeat=d)))
    lj = jax.vmap(lambda x: jax.vmap(lambda h: model.log_joint(x, [h]))(hs))(xs)
    return xs, jax.nn.logsumexp(lj, axis=1)


def test_wake_sleep_moves_model_toward_data_and_is_log_prob_agrees():
    d, hidden = 3, 2
    # data: a two-component mixture of product Bernoullis, which the model can represent
    configs = np.array(list(itertools.product([0, 1], repeat=d)))
    comp = np.array([[0.9, 0.9, 0.1], [0.1, 0.2, 0.9]])
    lik = np.prod(np.where(configs[:, None], comp[None], 1 - comp[None]), axis=2)
    probs = jnp.asarray(lik @ np.array([0.6, 0.4]))
    model = HelmholtzMachine((d, hidden), key=jax.random.key(3))
    xs, _ = _enumerate_log_px(model, d, hidden)

    def kl(m):
        _, lp = _enumerate_log_px(m, d, hidden)
        return float(jnp.sum(probs * (jnp.log(probs) - lp)))

    opt = optax.adam(0.05)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        k_x, k_l = jax.random.split(key)
        x = xs[jax.random.choice(k_x, 8, (128,), p=probs)]

        def loss(p):
            m = eqx.combine(p, static)
            return jnp.mean(jax.vmap(lambda xi, ki: wake_sleep_loss(m, xi, ki))(
                x, jax.random.split(k_l, 128)))

        g = jax.grad(loss)(params)
        upd, state = opt.update(g, state)
        return eqx.apply_updates(params, upd), state

    before = kl(model)
    for i in range(400):
        params, state = step(params, state, jax.random.key(100 + i))
    trained = eqx.combine(params, static)
    after = kl(trained)
    assert after < 0.25 * before, (before, after)
    # importance sampling through the recognition model recovers the enumerated log p(x)
    _, exact = _enumerate_log_px(trained, d, hidden)
    est = jax.vmap(lambda x: helmholtz_log_prob(trained, x, jax.random.key(7), k=4096))(xs)
    np.testing.assert_allclose(est, exact, atol=0.02)


def test_discriminator_loss_at_optimum_is_two_log_two_minus_two_jsd():
    """Goodfellow et al. 2014, Thm. 1, with p_data = N(0, 1), p_g = N(1.5, 0.8²), by quadrature."""
    x = np.linspace(-12, 14, 200_001)
    dx = x[1] - x[0]
    p = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    q = np.exp(-0.5 * ((x - 1.5) / 0.8) ** 2) / (0.8 * math.sqrt(2 * math.pi))
    m = 0.5 * (p + q)
    jsd = 0.5 * np.sum(p * np.log(p / m)) * dx + 0.5 * np.sum(q * np.log(q / m)) * dx
    logit = jnp.log(p) - jnp.log(q)  # D* = p / (p + q)
    per_pair = jax.vmap(discriminator_loss)
    expected = (float(jnp.sum(p * per_pair(logit, jnp.full_like(logit, -jnp.inf)))) * dx
                + float(jnp.sum(q * per_pair(jnp.full_like(logit, jnp.inf), logit))) * dx)
    assert abs(expected - (2 * math.log(2) - 2 * jsd)) < 1e-6
    assert float(discriminator_loss(0.0, 0.0)) == pytest.approx(2 * math.log(2))  # p = q


def test_gan_loss_gives_each_player_its_own_gradient():
    model = GAN.mlp(2, 3, key=jax.random.key(4), width=16, depth=1)
    x, key = jnp.array([0.3, -1.2]), jax.random.key(5)
    g = eqx.filter_grad(lambda m: gan_loss(m, x, key, r1_gamma=0.5))(model)
    z = jax.random.normal(key, (3,), x.dtype)

    def gen_only(gen):
        return generator_loss(model.discriminator(gen(z)))

    def disc_only(disc):
        fake = model.generator(z)
        return discriminator_loss(disc(x), disc(fake)) + 0.5 * r1_penalty(disc, x)

    for got, want in [(g.generator, eqx.filter_grad(gen_only)(model.generator)),
                      (g.discriminator, eqx.filter_grad(disc_only)(model.discriminator))]:
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    w = jnp.array([0.7, -2.0])
    assert float(r1_penalty(lambda y: w @ y + 1.0, x)) == pytest.approx(0.5 * float(w @ w))
