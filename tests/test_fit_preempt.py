"""`sdegen.fit` on an accelerator's terms: a SIGTERM (how clusters pre-empt) writes a checkpoint
at the current step and stops with one line; calling `fit` again resumes bitwise, with
asynchronous checkpoints; the donated training state never takes the caller's model with it."""

import os
import signal
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sdegen
from sdegen.errors import TrainingError

FIT = sys.modules["sdegen.fit"]  # the module (sdegen.fit the attribute is the function)


def data(key, n):
    return jnp.array([1.0, -0.5]) + 0.5 * jax.random.normal(key, (n, 2))


def loss(model, x0, key):
    return jnp.sum((model(x0 + 0.1 * jax.random.normal(key, x0.shape)) - x0) ** 2)


def _fit(model, run_dir, steps, **kw):
    return sdegen.fit(loss, model, data, key=jax.random.key(1), steps=steps, batch_size=32,
                      optimizer=optax.adam(1e-2), run_dir=run_dir, ckpt_every=5, log_every=2,
                      progress=False, async_checkpoints=True, **kw)


def test_sigterm_checkpoints_then_resumes_bitwise(tmp_path, monkeypatch):
    model = eqx.nn.MLP(2, 2, 16, 2, key=jax.random.key(0))
    before = [np.array(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]

    plain, handler = FIT.tqdm, signal.getsignal(signal.SIGTERM)

    calls = []

    class Preempted(plain):  # a disabled bar counts nothing: count its calls (= steps) here
        def update(self, n=1):
            calls.append(n)
            if len(calls) == 7:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().update(n)

    monkeypatch.setattr(FIT, "tqdm", Preempted)
    with pytest.raises(TrainingError) as err:
        _fit(model, tmp_path / "run", 12)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("stopped by SIGTERM at step 7"), msg
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["5", "7"]
    assert signal.getsignal(signal.SIGTERM) is handler  # fit's handler is gone again
    monkeypatch.setattr(FIT, "tqdm", plain)
    resumed = _fit(model, tmp_path / "run", 12)
    whole = _fit(model, tmp_path / "whole", 12)
    assert resumed.step == whole.step == 12
    for a, b in zip(jax.tree.leaves(eqx.filter(resumed.ema_model, eqx.is_array)),
                    jax.tree.leaves(eqx.filter(whole.ema_model, eqx.is_array)), strict=True):
        np.testing.assert_array_equal(a, b)
    # the caller's model was copied, not donated
    after = [np.array(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
