"""Training you can watch: `fit`'s metrics rows (learning rate, gradient norm, skipped updates,
steps/s) checked against an independent recomputation, `loss.png`, `sdegen plot`, and tracker
writers (a researcher's own logger object; TensorBoard and W&B where installed)."""

import importlib.util
import json
import struct
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sdegen.cli import main
from sdegen.errors import ConfigError
from sdegen.fit import adam, as_sampler, fit, initial_state, mean_loss, restore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA = np.random.default_rng(0).normal(size=(64, 2))


def _loss(model, x, key):
    return jnp.sum((model(x) - x + 0.1 * jax.random.normal(key, x.shape)) ** 2)


def _model():
    return eqx.nn.MLP(2, 2, 8, 1, key=jax.random.key(0))


def _fit(steps, **kw):
    kw = dict(key=jax.random.key(1), batch_size=16, progress=False, **kw)
    return fit(_loss, _model(), DATA, steps=steps, **kw)


def _records(run):
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]


def _grad_norm(model, step):
    """The raw gradient norm of step `step` from `model`, recomputed outside `fit` (its batch and
    loss noise are `fold_in` of the split key at the step), as sqrt of a sum of squares."""
    data_key, loss_key = jax.random.split(jax.random.key(1))
    batch = as_sampler(DATA)(jax.random.fold_in(data_key, step), 16)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    grads = jax.grad(lambda p: mean_loss(_loss, eqx.combine(p, static), batch,
                                         jax.random.fold_in(loss_key, step)))(params)
    return float(np.sqrt(sum(np.sum(np.asarray(g) ** 2) for g in jax.tree_util.tree_leaves(grads))))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs of the default optimizer (Adam, warm-up 200 to 2e-3)."""
    root = tmp_path_factory.mktemp("runs")
    _fit(2, run_dir=root / "a", log_every=2)
    _fit(4, run_dir=root / "b", log_every=1, ckpt_every=1, keep=4)
    return root


def test_rows_log_lr_grad_norm_skips_and_rate_recomputed_outside(runs):
    (row,) = _records(runs / "a")
    assert set(row) == {"step", "loss", "wall_s", "grad_norm", "lr", "skipped_total",
                        "steps_per_s"}
    # grad_norm: the mean over the row's two steps of the raw gradient norm, recomputed from the
    # initial model (step 1) and from run b's checkpoint after one step (step 2; same key, data
    # and schedule as run a)
    after_one = restore(runs / "b", initial_state(_model(), adam()), step=1).model
    first, second = _grad_norm(_model(), 1), _grad_norm(after_one, 2)
    assert row["grad_norm"] == pytest.approx((first + second) / 2, rel=1e-6)
    assert abs(first - second) > 1e-6  # the row holds a mean, not either step's norm
    rows = _records(runs / "b")  # one step per row: each step's own norm
    assert [r["grad_norm"] for r in rows[:2]] == pytest.approx([first, second], rel=1e-6)
    # lr of step 2's update: the warm-up schedule at update count 1, 2e-3 * 1/200
    assert row["lr"] == pytest.approx(1e-5, rel=1e-6)
    assert row["skipped_total"] == 0 and row["steps_per_s"] > 0
    assert [r["lr"] for r in rows] == pytest.approx([2e-3 * k / 200 for k in range(4)], rel=1e-6)


def test_loss_png_is_written_with_the_run(runs):
    for run in ("a", "b"):
        png = (runs / run / "loss.png").read_bytes()
        assert png[:8] == PNG_MAGIC
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        assert width > 300 and height > 300
    assert not list(runs.glob("*/.loss.png.*"))  # no temporary file left behind


def test_sdegen_plot_overlays_runs_and_errors_in_one_line(runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", str(runs / "a"), str(runs / "b"), "--out", str(out),
                 "--key", "grad_norm", "--smooth", "0.5"]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    (tmp_path / "empty").mkdir()
    for argv, needle in [
        (["plot", str(tmp_path / "nope")], "not found"),
        (["plot", str(tmp_path / "empty")], "has no metrics.jsonl"),
        (["plot", str(runs / "a"), "--key", "gradnorm"], "invalid choice"),
        (["plot", str(runs / "a"), "--smooth", "1.5"], "[0, 1)"),
    ]:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err


class Recorder:
    """A researcher's own tracker: anything with log(step, metrics) and close()."""

    def __init__(self):
        self.rows, self.closed = [], False

    def log(self, step, metrics):
        self.rows.append((step, dict(metrics)))

    def close(self):
        self.closed = True


def test_own_logger_gets_each_row_and_inject_hyperparams_lr():
    schedule = optax.linear_schedule(0.0, 0.01, 10)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=schedule)
    rec = Recorder()
    result = _fit(6, optimizer=opt, log_every=3, loggers=[rec])
    assert rec.closed
    assert [(s, m["loss"]) for s, m in rec.rows] == result.losses
    assert [m["lr"] for _, m in rec.rows] == pytest.approx([float(schedule(2)),
                                                                   float(schedule(5))])
    assert all({"grad_norm", "skipped_total", "steps_per_s"} <= set(m) for _, m in rec.rows)


def test_skipped_total_counts_the_skip_rows(tmp_path):
    def half_nan(key, n):
        x = jax.random.normal(key, (n, 2))
        return x.at[0, 0].set(jnp.where(jax.random.uniform(jax.random.fold_in(key, 7)) < 0.4,
                                        jnp.nan, x[0, 0]))

    rec = Recorder()
    result = fit(_loss, _model(), half_nan, key=jax.random.key(2), steps=12, batch_size=8,
                 log_every=3, on_nonfinite="skip", max_skips=12, run_dir=tmp_path,
                 progress=False, loggers=[rec])
    records = _records(tmp_path)
    skips = [r["step"] for r in records if "skipped" in r]
    assert 0 < len(skips) == result.skipped < 12
    for r in records:
        if "loss" in r:
            assert r["skipped_total"] == sum(s <= r["step"] for s in skips)


def test_bad_logger_names_fail_in_one_line(tmp_path, capsys):
    from sdegen import config as C

    with pytest.raises(ConfigError, match=r"train.loggers' takes names from tensorboard, wandb, "
                                          r"got 'tensorbord'; did you mean 'tensorboard'\?"):
        C.from_dict({"train": {"loggers": ["tensorbord"]}})
    assert C.from_dict({}).train.loggers == []
    assert main(["train", "toy2d/demo", f"out_dir={tmp_path / 'r'}", "train.loggers=[nope]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.loggers" in err and "tensorboard, wandb" in err and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match="unknown logger 'nope'; choose from tensorboard, wandb"):
        _fit(1, loggers=["nope"])
    assert main(["list"]) == 0
    assert "loggers:   tensorboard, wandb" in capsys.readouterr().out


def test_a_missing_extra_names_its_pip_install(tmp_path, monkeypatch):
    from sdegen.loggers import make_logger

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "wandb", None)
    for name in ("tensorboard", "wandb"):
        with pytest.raises(ConfigError, match=rf"pip install sdegen\[{name}\]"):
            make_logger(name, tmp_path)


def _events(logdir):
    """(tag, step, value) of the scalars in tensorboardX event files (TFRecord framing:
    length u64, crc u32, Event proto, crc u32)."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        raw, i = path.read_bytes(), 0
        while i < len(raw):
            (n,) = struct.unpack("<Q", raw[i:i + 8])
            event = Event.FromString(raw[i + 12:i + 12 + n])
            i += 12 + n + 4
            out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return out


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None,
                    reason="tensorboardX is not installed (pip install sdegen[tensorboard])")
def test_tensorboard_logger_writes_the_rows(tmp_path):
    _fit(4, run_dir=tmp_path, log_every=2, loggers=["tensorboard"])
    events = _events(tmp_path / "tensorboard")
    rows = _records(tmp_path)
    assert [(s, v) for t, s, v in events if t == "train/loss"] == [
        (r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in rows]
    assert {t for t, _, _ in events} == {f"train/{k}" for k in rows[0] if k != "step"}


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None,
                    reason="wandb is not installed (pip install sdegen[wandb])")
def test_wandb_logger_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _fit(2, run_dir=tmp_path, log_every=1, loggers=["wandb"])
    run_id = (tmp_path / "wandb_id").read_text().strip()
    (record,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    keys = [f"train/{k}".encode() for k in ("loss", "grad_norm", "lr", "skipped_total",
                                             "steps_per_s")]
    for _ in range(100):  # wandb-core may still be writing the file after finish() returns
        if all(k in record.read_bytes() for k in keys):
            break
        time.sleep(0.1)
    assert all(k in record.read_bytes() for k in keys), record.stat().st_size
