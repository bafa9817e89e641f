"""diffusers peers for benchmarks/samplers_unet.py: the schedulers of `samplers_torch.py`
(`diffusers_run`: DPMSolverMultistep 2M/3M/2M SDE, UniPCMultistep 2/3, DEISMultistep 3, Euler,
Heun on the Karras σ grid of the VP SDE) driven by a trained sdegen UNet.

The torch venv has no JAX: the harness passes its repository and site-packages, which are
appended to sys.path *after* this venv's own (so torch, diffusers and numpy stay this venv's),
and the run is loaded with sdegen. Each evaluation converts torch -> numpy -> JAX and back, so
the wall times here are not comparable with sdegen's.

    PEER_PYTHON benchmarks/peers/samplers_unet_torch.py PROBLEM.npz OUT.npz
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from samplers_torch import VP, diffusers_run  # noqa: E402


class JaxScore:
    """The run's score on flattened examples, called with torch tensors (n, d) and a float t."""

    def __init__(self, run):
        import jax

        shape = tuple(run.data.shape)
        field = run.field
        self.fn = jax.jit(jax.vmap(lambda x, t: field(x.reshape(shape), t).reshape(-1),
                                   (0, None)))
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        out = self.fn(x.numpy(), np.float32(float(t)))
        return torch.from_numpy(np.array(out, dtype=np.float32))


def main():
    problem, out = sys.argv[1], sys.argv[2]
    p = np.load(problem, allow_pickle=False)
    spec = json.loads(str(p["spec"]))
    sys.path[:0] = spec["sys_path"][:1]  # the sdegen under test first
    sys.path += spec["sys_path"][1:]  # its dependencies after this venv's own
    from sdegen.runs import open_run

    run = open_run(spec["run"], step=spec["step"], ema=spec["ema"])
    sde = VP(run.process.beta_min, run.process.beta_max)
    score = JaxScore(run)
    x_T = torch.as_tensor(p["x_T"], dtype=torch.float32)
    results, meta = {}, {}
    for r in spec["runs"]:
        score.calls = 0
        start = time.perf_counter()
        with torch.no_grad():
            x = diffusers_run(r["kind"], score, sde, x_T, spec["t_eps"], r["nfe"])
        wall = time.perf_counter() - start
        results[r["name"]] = x.numpy()
        meta[r["name"]] = dict(nfe=score.calls, wall_s=wall)
        print(f"peer {r['name']:<14} nfe {score.calls:>3}  wall {wall:.3f} s", flush=True)
    np.savez(out, meta=json.dumps(dict(runs=meta, torch=torch.__version__)), **results)


if __name__ == "__main__":
    main()
