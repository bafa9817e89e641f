"""Kill-and-resume sweep (slow; `tests/reliability/run_slow.sh`): `sdegen train` runs as a
subprocess and is SIGKILLed at ≥ 10 points — inside checkpoint writes (after the arrays are on
disk, before orbax's commit rename) and at random moments from outside — then resumed from its
run directory each time. The final checkpoint must equal an uninterrupted run's bit for bit:
parameters, Adam state, EMA (one SHA-256 over all their bytes, plus a leaf-by-leaf
comparison), step and seed (the RNG is a pure function of both), and the logged losses.
A second uninterrupted run checks determinism: same config and seed, same bytes."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from sdegen import checkpoints as ckpt
from sdegen import config as C
from sdegen.train import init_state, restore_verified

from .conftest import COUNTS, TINY

VICTIM = Path(__file__).with_name("victim.py")
REPO = Path(__file__).resolve().parents[2]
STEPS, EVERY = 60, 2

pytestmark = pytest.mark.slow


def _config(tmp: Path) -> Path:
    data = json.loads(json.dumps(TINY))
    data["train"].update(steps=STEPS, ckpt_every=EVERY, keep=2)
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _victim(args, *, kill_in_ckpt=None, delay=0.0):
    cmd = [sys.executable, str(VICTIM)]
    if kill_in_ckpt is not None:
        cmd += ["--kill-in-ckpt", str(kill_in_ckpt)]
    if delay:
        cmd += ["--step-delay", str(delay)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([*cmd, "--", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _logged_steps(run: Path) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    steps = [json.loads(ln)["step"] for ln in lines[:-1]]  # the last line may be partial
    return max(steps, default=0)


def _final(run: Path):
    cfg = C.load(run / "config.yaml")
    state, got = restore_verified(run, init_state(cfg)[0])
    losses = [json.loads(ln)["loss"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return state, got, losses


def _same(a, b) -> bool:
    la = jax.tree_util.tree_leaves((a.model, a.opt_state, a.ema))
    lb = jax.tree_util.tree_leaves((b.model, b.opt_state, b.ema))
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y)
        for x, y in zip(la, lb, strict=True) if hasattr(x, "shape"))


def test_kill_resume_sweep_is_bit_exact(tmp_path):
    config = _config(tmp_path)
    ref_run, run = tmp_path / "reference", tmp_path / "killed"
    ref = _victim([config, f"out_dir={ref_run}"])
    assert ref.wait(timeout=600) == 0, ref.stderr.read()

    # alternate: a kill inside the write of checkpoint s, then one from outside a few steps
    # after s (before the next planned checkpoint kill, >= 6 steps later); last, a kill inside
    # the write of the final checkpoint
    rng = random.Random(9)
    plan, s = [], 4
    while s <= STEPS - 16:
        plan += [("ckpt", s), ("outside", s + rng.randint(1, 3))]
        s += rng.choice((6, 8))
    plan.append(("ckpt", STEPS))
    kills, resumed_from = [], []
    for kind, step in plan:
        args = [config, f"out_dir={run}"] if not run.exists() else [run]
        if kind == "ckpt":
            proc = _victim(args, kill_in_ckpt=step)
            rc = proc.wait(timeout=600)
        else:
            proc = _victim(args, delay=0.02)
            while proc.poll() is None and _logged_steps(run) < step:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.04))  # land anywhere in the next steps or writes
            proc.send_signal(signal.SIGKILL)
            rc = proc.wait(timeout=60)
        out = proc.stdout.read()
        if "resuming" in out:
            resumed_from.append(int(out.split("from step ")[1].split()[0]))
        assert rc == -signal.SIGKILL, (kind, step, rc, proc.stderr.read()[-2000:])
        kills.append((kind, step, _logged_steps(run)))
        COUNTS["kill points"] += 1
        # after every kill the newest complete checkpoint restores and verifies
        latest = ckpt.manager(run / "checkpoints").latest_step()
        if latest is not None:
            assert restore_verified(run, init_state(C.load(run / "config.yaml"))[0])[0].step \
                == latest
    done = _victim([run])
    assert done.wait(timeout=600) == 0, done.stderr.read()

    a, got_a, losses_a = _final(ref_run)
    b, got_b, losses_b = _final(run)
    assert a.step == b.step == STEPS
    assert got_a.meta["digest"] == got_b.meta["digest"]
    assert got_a.meta["seed"] == got_b.meta["seed"]
    assert _same(a, b)
    assert losses_a == losses_b and len(losses_a) == STEPS
    assert len(kills) >= 10 and len(resumed_from) >= len(kills) - 1, (kills, resumed_from)
    COUNTS["kill points bit-exact"] += len(kills)
    print(f"\nkill points (kind, planned step, last logged step): {kills}")
    print(f"resumed from steps: {resumed_from}")


def test_same_config_and_seed_give_identical_runs(tmp_path):
    config = _config(tmp_path)
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [_victim([config, f"out_dir={r}"]) for r in runs]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    (a, got_a, la), (b, got_b, lb) = _final(runs[0]), _final(runs[1])
    assert got_a.meta["digest"] == got_b.meta["digest"] and _same(a, b) and la == lb
    COUNTS["determinism runs"] += 2
