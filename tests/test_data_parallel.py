"""Data-parallel training over a `jax.sharding` mesh: 4 forced CPU devices give the same
losses as one device (the batch is sharded, the parameters replicated)."""

import json
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import numpy as np
import pytest

from sdegen import config as C
from sdegen.errors import ConfigError
from sdegen.train import data_mesh, load_run

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    from sdegen import config as C
    from sdegen.errors import ConfigError
    from sdegen.train import data_mesh, load_run, train
    assert jax.device_count() == 4, jax.devices()
    try:
        data_mesh(C.from_dict({"train": {"batch_size": 66}}).train)
    except ConfigError as err:
        print("REFUSED", err)
    out = {}
    for devices in (1, 4):
        cfg = C.from_dict({"name": "dp", "out_dir": f"{sys.argv[1]}/d{devices}",
                           "data": {"name": "8gaussians"},
                           "model": {"width": 32, "depth": 2, "n_freq": 4},
                           "train": {"steps": 6, "batch_size": 64, "log_every": 1,
                                     "ckpt_every": 6, "devices": devices}})
        run = train(cfg, progress=False)
        lines = (run / "metrics.jsonl").read_text().splitlines()
        out[devices] = [json.loads(line)["loss"] for line in lines]
    print("LOSSES", json.dumps(out))
""")


def test_four_cpu_devices_give_the_one_device_losses(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "data parallel over 4 cpu devices: 16 examples per device" in proc.stdout
    assert "REFUSED train.batch_size=66 does not divide over 4 devices" in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("LOSSES"))
    losses = json.loads(line.split(" ", 1)[1])
    one, four = np.array(losses["1"]), np.array(losses["4"])
    assert one.shape == (6,) and np.all(np.isfinite(one))
    assert np.ptp(one) > 1e-3  # the steps differ, so agreement is not trivial
    np.testing.assert_allclose(four, one, rtol=2e-5)
    # the 4-device checkpoint restores on this one-device process, to the 1-device parameters
    _, field4 = load_run(tmp_path / "d4")
    _, field1 = load_run(tmp_path / "d1")
    for a, b in zip(jax.tree.leaves(eqx.filter(field4, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(field1, eqx.is_inexact_array)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_devices_must_exist():
    with pytest.raises(ConfigError, match="train.devices=64 but only"):
        data_mesh(C.from_dict({"train": {"devices": 64}}).train)
    assert data_mesh(C.from_dict({"train": {"devices": 1}}).train) is None
