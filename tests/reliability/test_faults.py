"""Numerical and environmental faults: non-finite losses (stop, or skip up to a limit), a
metrics file cut mid-line by a kill, solver failures reported through the CLI with the config
key to change, and run directories that cannot be created."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdegen import TrainingError
from sdegen import config as C
from sdegen.cli import main
from sdegen.data import TOY_DATASETS
from sdegen.fit import _truncate_metrics
from sdegen.train import init_state, restore_verified

from .conftest import COUNTS, tiny_cfg


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("sdegen: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_skip_nonfinite_updates_then_stop_at_limit(tmp_path, monkeypatch):
    """With on_nonfinite=skip a NaN batch (~1 in 3 here) skips that update; three in a row
    (steps 12-14 with this seed) exceed max_skips=2 and stop the run naming the step, the last
    good checkpoint and the limit."""
    import sdegen.train as T

    clean = TOY_DATASETS["8gaussians"]

    def half_nan(key, n):
        x = clean(key, n)
        bad = jax.random.uniform(jax.random.fold_in(key, 7)) < 0.3
        return x.at[0, 0].set(jnp.where(bad, jnp.nan, x[0, 0]))

    monkeypatch.setattr(T, "data_sampler", lambda cfg, data=None: half_nan)
    cfg = tiny_cfg(tmp_path / "run", train={"steps": 20, "on_nonfinite": "skip",
                                           "max_skips": 2})
    with pytest.raises(TrainingError) as err:
        T.train(cfg, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "train.max_skips=2" in msg and "3 steps in a row" in msg, msg
    stop = int(msg.split(" at step ")[1].split()[0])
    records = [json.loads(ln) for ln in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    skipped = [r["step"] for r in records if "skipped" in r]
    trained = [r["step"] for r in records if "loss" in r]
    assert stop == 14 and skipped == [1, 2, 4, 5, 7, 9, 10, 12, 13], (stop, skipped)
    assert trained == [3, 6, 8, 11]
    assert not set(skipped) & set(trained)  # a skipped step logs no loss
    assert np.all(np.isfinite([r["loss"] for r in records if "loss" in r]))
    last = (stop - 1) // 2 * 2
    assert f"last good checkpoint: {cfg.run_dir / 'checkpoints'}/{last}" in msg
    state, _ = restore_verified(cfg.run_dir, init_state(cfg)[0])
    leaves = jax.tree_util.tree_leaves((state.opt_state, state.ema))
    assert all(np.all(np.isfinite(x)) for x in leaves if hasattr(x, "dtype"))
    COUNTS["non-finite steps skipped"] += len(skipped)


def test_metrics_cut_mid_line_by_a_kill_is_repaired(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [json.dumps({"step": s, "loss": 1.0}) for s in range(1, 6)]
    path.write_text("\n".join(good) + '\n{"step": 6, "lo')
    _truncate_metrics(path, 4)
    assert path.read_text().splitlines() == good[:4]
    path.write_text("\x00\x00garbage\n" + "\n".join(good) + "\n[1, 2]\n")
    _truncate_metrics(path, 10)
    assert path.read_text().splitlines() == good


def test_out_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = tmp_path / "c.yaml"
    C.dump(tiny_cfg(blocker), cfg)
    assert main(["train", str(cfg), "--no-progress"]) == 2
    assert "is a file, not a directory" in _one_error_line(capsys)


@pytest.mark.parametrize("argv,needle", [
    (["sample", "{run}", "--n", "8", "sample.max_steps=1"],
     "hit its step limit (max_steps=1)"),
    pytest.param(["evaluate", "{run}", "eval.max_steps=1"], "hit its step limit (max_steps=1)",
                 marks=pytest.mark.slow),
])
def test_solver_failure_through_cli_names_the_config_key(tiny_run, tmp_path, capsys, argv,
                                                         needle):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    key = argv[-1].split("=")[0]
    assert main([a.format(run=run) for a in argv]) == 2
    line = _one_error_line(capsys)
    assert needle in line and f"in the run's config: {key}" in line, line
    COUNTS["solver failures via CLI"] += 1


def test_rewrites_on_resume_are_atomic(tmp_path, monkeypatch):
    """config.yaml and metrics.jsonl are rewritten on every resume; a kill in the middle
    (here: the final rename fails) leaves the old file whole and no stray tmp file in use."""
    import os

    cfg_path = tmp_path / "config.yaml"
    C.dump(tiny_cfg(tmp_path / "run"), cfg_path)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3)))
    before = cfg_path.read_text(), metrics.read_text()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        C.dump(tiny_cfg(tmp_path / "other"), cfg_path)
    with pytest.raises(KeyboardInterrupt):
        _truncate_metrics(metrics, 1)
    assert (cfg_path.read_text(), metrics.read_text()) == before
    assert C.load(cfg_path).out_dir == str(tmp_path / "run")
