"""Several processes for real: `sdegen train --distributed` as 2 processes x 2 forced CPU devices
on 127.0.0.1 (gloo collectives, the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID
variables of the README) trains exactly like 1 process x 4 devices, writes one set of run files,
and leaves a checkpoint that restores and samples in a single process. A process killed mid-run
makes the other exit with one line within seconds, and re-running resumes.

Bounded and loopback-only: every process runs in its own session with a timeout, and every
process group is killed in `finally`, so a failure here can never leave a hang behind."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
import yaml

from sdegen.cli import main
from sdegen.train import load_run

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from sdegen.cli import main; sys.exit(main(sys.argv[1:]))"
TIMEOUT = 240  # s, for any one launch; the runs here take ~30 s on 2 busy cores


def _config(path: Path, out: Path, **train) -> Path:
    cfg = {"name": "dist", "out_dir": str(out), "data": {"name": "8gaussians"},
           "model": {"width": 32, "depth": 2, "n_freq": 4},
           "train": {"steps": 6, "batch_size": 64, "log_every": 1, "ckpt_every": 3,
                     "devices": 0, **train}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JAX_") and "proxy" not in k.lower()}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               NO_PROXY="127.0.0.1,localhost", PYTHONPATH=str(ROOT), **extra)
    return env


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = log.open("w")
    try:
        return subprocess.Popen([sys.executable, "-c", CLI, *argv], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()


def _launch(cfg: Path, tmp: Path, tag: str, *overrides: str, heartbeat: int = 20):
    port = _free_port()
    return [_start(["train", str(cfg), "--distributed", "--no-progress", *overrides],
                   _env(2, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                        JAX_PROCESS_ID=str(i), SDEGEN_HEARTBEAT_TIMEOUT=str(heartbeat)),
                   tmp / f"{tag}{i}.log")
            for i in range(2)]


def _wait(procs, timeout: float = TIMEOUT) -> list[int]:
    deadline = time.monotonic() + timeout
    return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in procs]


def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=30)


def _losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln)["loss"] for ln in lines if "loss" in json.loads(ln)]


def test_two_processes_train_like_one_process_with_four_devices(tmp_path):
    cfg = _config(tmp_path / "c.yaml", tmp_path / "two")
    procs = []
    try:
        procs = _launch(cfg, tmp_path, "two")
        procs.append(_start(["train", str(cfg), f"out_dir={tmp_path / 'one'}", "--no-progress"],
                            _env(4), tmp_path / "one.log"))
        rcs = _wait(procs)
    finally:
        _kill(procs)
    logs = [(tmp_path / name).read_text() for name in ("two0.log", "two1.log", "one.log")]
    assert rcs == [0, 0, 0], [log[-2000:] for log in logs]
    assert "data parallel over 4 cpu devices in 2 processes: 16 examples per device" in logs[0]
    assert "data parallel" not in logs[1]  # process 1 writes and reports nothing of the run's
    two, one = np.array(_losses(tmp_path / "two")), np.array(_losses(tmp_path / "one"))
    assert one.shape == (6,) and two.shape == (6,)  # one writer: one record per step
    assert np.ptp(one) > 1e-3  # the steps differ, so agreement is not trivial
    print("2x2 vs 1x4 max relative loss difference:", np.max(np.abs(two / one - 1)))
    np.testing.assert_allclose(two, one, rtol=1e-6)
    assert sorted(os.listdir(tmp_path / "two" / "checkpoints")) == ["3", "6"]
    # the two-process checkpoint restores in this single process, to the 1x4 parameters ...
    _, field2 = load_run(tmp_path / "two")
    _, field1 = load_run(tmp_path / "one")
    for a, b in zip(jax.tree.leaves(eqx.filter(field2, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(field1, eqx.is_inexact_array)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # ... and samples
    assert main(["sample", str(tmp_path / "two"), "--n", "64"]) == 0
    with np.load(tmp_path / "two" / "samples.npz") as f:
        x = f["x"]
    assert x.shape == (64, 2) and np.all(np.isfinite(x))


@pytest.mark.slow
def test_a_killed_process_ends_the_other_in_one_line_and_rerunning_resumes(tmp_path):
    run = tmp_path / "run"
    cfg = _config(tmp_path / "c.yaml", run, steps=100_000, log_every=10, ckpt_every=20)
    procs = []
    try:
        procs = _launch(cfg, tmp_path, "a", heartbeat=8)
        deadline = time.monotonic() + TIMEOUT
        while not (run / "checkpoints" / "40").is_dir():
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                [(tmp_path / f"a{i}.log").read_text()[-2000:] for i in range(2)]
            time.sleep(0.2)
        os.killpg(procs[1].pid, signal.SIGKILL)
        t0 = time.monotonic()
        rc = procs[0].wait(timeout=60)
        waited = time.monotonic() - t0
    finally:
        _kill(procs)
    log = (tmp_path / "a0.log").read_text()
    errors = [ln for ln in log.splitlines() if ln.startswith("sdegen: error:")]
    print(f"survivor exited {waited:.1f} s after the kill: {errors}")
    assert rc == 2 and len(errors) == 1 and "process 1 stopped responding" in errors[0], log
    assert "Traceback" not in log and "stack trace" not in log
    last = max(int(s) for s in os.listdir(run / "checkpoints") if s.isdigit())
    try:  # re-running the same command resumes from the last checkpoint
        procs = _launch(cfg, tmp_path, "b", f"train.steps={last + 10}")
        rcs = _wait(procs)
    finally:
        _kill(procs)
    log = (tmp_path / "b0.log").read_text()
    assert rcs == [0, 0], log[-2000:]
    assert f"from step {last}" in log
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(10, last + 11, 10))
