"""Training: it learns (test NLL well below the uniform density on the data's box), a resumed
run is bitwise the uninterrupted one, and a non-finite loss stops with a clear message that
keeps the last good checkpoint."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdegen import TrainingError
from sdegen import config as C
from sdegen.data import TOY_DATASETS
from sdegen.runs import evaluate_run
from sdegen.train import init_state, restore, train

SMALL = {"model": {"width": 64, "depth": 2}, "eval": {"n_test": 500},
         "sample": {"n": 500}, "train": {"batch_size": 256, "log_every": 1}}


def _cfg(tmp, name, **train):
    data = json.loads(json.dumps(SMALL))
    data["train"].update(train)
    return C.from_dict({**data, "name": name, "out_dir": str(tmp / name)})


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


def test_short_training_learns_8gaussians(tmp_path):
    cfg = _cfg(tmp_path, "learn", steps=1500, ckpt_every=1500, lr=3e-3)
    run = train(cfg, progress=False)
    result = evaluate_run(run, grid=20)
    assert result["test_nll_nats"] < result["uniform_box_nll_nats"] - 0.5, result
    assert result["sliced_w_model_vs_test"] < 1.5 * result["sliced_w_data_vs_test"], result
    assert (run / "density.png").is_file() and (run / "eval.json").is_file()
    env = json.loads((run / "eval.json").read_text())["environment"]
    assert env["versions"]["jax"] == jax.__version__ and env["backend"] == jax.default_backend()
    (call,) = json.loads((run / "run_info.json").read_text())["calls"]
    assert call["versions"] == env["versions"] and call["device_count"] == len(jax.devices())


def test_resume_is_bitwise_identical(tmp_path):
    full = _cfg(tmp_path, "full", steps=30, ckpt_every=15)
    train(full, progress=False)
    part = _cfg(tmp_path, "part", steps=15, ckpt_every=15)
    train(part, progress=False)
    resumed = _cfg(tmp_path, "part", steps=30, ckpt_every=15)
    train(resumed, progress=False)
    state, _ = init_state(full)
    a = restore(full.run_dir, state)
    b = restore(resumed.run_dir, state)
    assert a.step == b.step == 30
    for x, y in zip(_leaves((a.model, a.opt_state, a.ema)), _leaves((b.model, b.opt_state, b.ema)),
                    strict=True):
        assert np.array_equal(x, y)
    def losses(cfg):
        lines = (cfg.run_dir / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines]

    assert losses(full) == losses(resumed) and len(losses(full)) == 30


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    """A batch with a NaN (here: ~1 batch in 8) stops the run at that step with a one-line
    error; every checkpoint written before it is intact and finite."""
    import sdegen.train as T

    clean = TOY_DATASETS["8gaussians"]

    def sometimes_nan(key, n):
        x = clean(key, n)
        bad = jax.random.uniform(jax.random.fold_in(key, 7)) < 0.125
        return x.at[0, 0].set(jnp.where(bad, jnp.nan, x[0, 0]))

    monkeypatch.setattr(T, "data_sampler", lambda cfg, data=None: sometimes_nan)
    cfg = _cfg(tmp_path, "nan", steps=200, ckpt_every=1)
    with pytest.raises(TrainingError, match=r"at step \d+ \(last good checkpoint: .*checkpoints/"):
        train(cfg, progress=False)
    state, _ = init_state(cfg)
    restored = restore(cfg.run_dir, state)
    assert 1 <= restored.step < 200
    assert all(np.all(np.isfinite(x)) for x in _leaves((restored.model, restored.ema)))


def test_resume_with_another_config_is_refused(tmp_path):
    train(_cfg(tmp_path, "r", steps=2, ckpt_every=2), progress=False)
    with pytest.raises(C.ConfigError, match="holds a run with another config"):
        train(C.from_dict({**SMALL, "name": "r", "out_dir": str(tmp_path / "r"),
                           "model": {"width": 32}}), progress=False)
