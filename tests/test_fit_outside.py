"""sdegen extended from outside the package, as a researcher's own file would: a process (an SDE
subclass), a network and a loss defined here, trained with `sdegen.fit`, then sampled and scored
with `sdegen.sample` / `sdegen.log_prob` — against the closed-form answer for Gaussian data.
Also `fit`'s contract: its loss forms, data forms and bitwise resume from a run directory."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sdegen

MEAN = jnp.array([1.0, -0.5])
STD = 0.5


class ConstantOU(sdegen.AbstractSDE):
    """dx = -½β x dt + √β dW with constant β: α(t) = e^{-βt/2}, σ(t)² = 1 − e^{-βt}."""

    beta: float = 12.0
    T: float = 1.0

    def drift(self, x, t):
        return -0.5 * self.beta * x

    def diffusion(self, t):
        return jnp.sqrt(self.beta)

    def marginal(self, x0, t):
        return jnp.exp(-0.5 * self.beta * t) * x0, jnp.sqrt(-jnp.expm1(-self.beta * t))

    def prior_std(self):
        return 1.0


class Net(eqx.Module):
    """A small MLP on (x, log σ(t)) that predicts the noise; score = −ε̂ / σ(t)."""

    mlp: eqx.nn.MLP
    sde: ConstantOU

    def __init__(self, sde, key):
        self.sde = sde
        self.mlp = eqx.nn.MLP(3, 2, 64, 2, activation=jax.nn.silu, key=key)

    def __call__(self, x, t):
        _, std = self.sde.marginal(x, t)
        return -self.mlp(jnp.concatenate([x, jnp.log(std)[None]])) / std


def my_dsm(model, x0, key):
    """Per-example denoising score matching, σ²-weighted (Song et al. 2021, eq. 7)."""
    k_t, k_z = jax.random.split(key)
    t = jax.random.uniform(k_t, (), minval=1e-3, maxval=1.0)
    mean, std = model.sde.marginal(x0, t)
    z = jax.random.normal(k_z, x0.shape)
    return jnp.sum((std * model(mean + std * z, t) + z) ** 2)


def gaussian_data(key, n):
    return MEAN + STD * jax.random.normal(key, (n, 2))


def true_log_prob(x):
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, MEAN, STD), axis=-1)


def test_own_process_network_and_loss_train_sample_and_score(tmp_path):
    sde = ConstantOU()
    model = Net(sde, jax.random.key(0))
    result = sdegen.fit(my_dsm, model, gaussian_data, key=jax.random.key(1), steps=1000,
                        batch_size=256, optimizer=optax.adam(3e-3), run_dir=tmp_path / "run",
                        ckpt_every=1000, log_every=100, progress=False)
    assert result.step == 1000 and (tmp_path / "run" / "checkpoints" / "1000").is_dir()
    test = gaussian_data(jax.random.key(2), 500)
    lp = sdegen.log_prob(sde, result.ema_model, test, rtol=1e-5, atol=1e-5)
    gap = float(jnp.mean(true_log_prob(test)) - jnp.mean(lp))
    print(f"fit-from-outside: mean log-lik gap to the true density {gap:.4f} nats")
    assert abs(gap) < 0.1, gap  # the exact NLL is 2·(log 0.5 + ½ log 2π + ½) = 1.452 nats
    x = sdegen.sample(sde, result.ema_model, key=jax.random.key(3), shape=(2000, 2))
    assert np.allclose(np.mean(x, 0), MEAN, atol=0.08), np.mean(x, 0)
    assert np.allclose(np.std(x, 0), STD, atol=0.08), np.std(x, 0)


def _losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


def test_fit_resumes_bitwise_and_forms_agree(tmp_path):
    """Calling fit again with more steps continues bitwise; a per-example loss equals the same
    loss averaged by hand as a `BatchLoss`; an array of examples trains like any source."""
    sde = ConstantOU()
    model = Net(sde, jax.random.key(0))
    kw = dict(key=jax.random.key(4), batch_size=64, log_every=1, ckpt_every=5, progress=False)
    full = sdegen.fit(my_dsm, model, gaussian_data, steps=10, run_dir=tmp_path / "full", **kw)
    sdegen.fit(my_dsm, model, gaussian_data, steps=5, run_dir=tmp_path / "part", **kw)
    resumed = sdegen.fit(my_dsm, model, gaussian_data, steps=10, run_dir=tmp_path / "part", **kw)
    assert _losses(tmp_path / "full") == _losses(tmp_path / "part") and resumed.step == 10
    for a, b in zip(_leaves(full.ema_model), _leaves(resumed.ema_model), strict=True):
        assert np.array_equal(a, b)

    def by_hand(m, batch, key):
        keys = jax.random.split(key, batch.shape[0])
        return jnp.mean(jax.vmap(my_dsm, in_axes=(None, 0, 0))(m, batch, keys))

    batched = sdegen.fit(sdegen.BatchLoss(by_hand), model, gaussian_data, steps=10, **kw)
    assert [v for _, v in batched.losses] == pytest.approx(_losses(tmp_path / "full"), rel=1e-6)

    examples = gaussian_data(jax.random.key(5), 300)
    from_array = sdegen.fit(my_dsm, model, examples, steps=10, **kw)
    assert len(from_array.losses) == 10 and all(math.isfinite(v) for _, v in from_array.losses)
    with pytest.raises(sdegen.ConfigError, match="another key"):
        sdegen.fit(my_dsm, model, gaussian_data, steps=12, run_dir=tmp_path / "full",
                   **{**kw, "key": jax.random.key(99)})


def test_fit_rejects_bad_input_in_one_line():
    model = Net(ConstantOU(), jax.random.key(0))
    cases = [(dict(data="points.csv"), TypeError, "data must be a DataSource"),
             (dict(on_nonfinite="ignore"), ValueError, "on_nonfinite must be one of"),
             (dict(steps=0), ValueError, "steps must be a positive integer")]
    for change, err, match in cases:
        kw = {**dict(data=gaussian_data, key=jax.random.key(0), steps=5, batch_size=8,
                     progress=False), **change}
        data = kw.pop("data")
        with pytest.raises(err, match=match) as got:
            sdegen.fit(my_dsm, model, data, **kw)
        assert "\n" not in str(got.value)
