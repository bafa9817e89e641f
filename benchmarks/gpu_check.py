"""The measurements of `benchmarks/gpu_check.sh`, one section per call so that the shell script
can bound each with its own timeout:

    python benchmarks/gpu_check.py env|unet|sample OUT.json [--dry-run]

- `env`: python, jax/jaxlib/diffrax/equinox/optax/orbax versions, backend, devices, where
  sdegen was imported from (the `--no-deps` install, not the checkout).
- `unet`: training throughput of the CIFAR-10 UNet (`configs/images/cifar10_ddpmpp.yaml` with
  2 residual blocks per level, 32x32x3 images, batch 128, DSM on the sub-VP SDE, Adam): images/s
  over timed steps after the compile, and the achieved TFLOP/s = XLA's cost-analysis flops of
  the compiled step x steps / wall time.
- `sample`: sampling throughput of that (untrained) UNet with DPM-Solver++(2M), 20 steps:
  images/s of the second call (the first compiles).

`--dry-run`: the same code at toy sizes, on whatever backend is there (a CPU check that the
script runs)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNET_CFG = ROOT / "configs" / "images" / "cifar10_ddpmpp.yaml"


def env() -> dict:
    import importlib.metadata as md

    import jax

    import sdegen

    versions = {}
    for name in ("jax", "jaxlib", "diffrax", "equinox", "optax", "orbax-checkpoint",
                 "jaxtyping", "numpy", "scipy"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "versions": versions,
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "sdegen_file": sdegen.__file__}


def _unet(dry: bool):
    import jax

    from sdegen import config as C

    over = ["model.num_res_blocks=2", "train.batch_size=128"]
    if dry:
        over = ["model.channels=8", "model.num_res_blocks=1", "model.channel_mults=[1,2]",
                "model.attn_resolutions=[]", "train.batch_size=4"]
    cfg = C.load(UNET_CFG, over)
    process = C.build_process(cfg.process)
    model = C.build_field(cfg, (32, 32, 3), jax.random.key(0))
    return cfg, process, model, C.build_loss(cfg, process), C.build_optimizer(cfg.train)


def _flops(compiled) -> float | None:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    return float(cost["flops"]) if cost and "flops" in cost else None


def unet(dry: bool) -> dict:
    import equinox as eqx
    import jax
    import numpy as np

    from sdegen.fit import mean_loss

    cfg, _, model, loss, opt = _unet(dry)
    n = cfg.train.batch_size
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    key = jax.random.key(1)

    def step(params, opt_state, k):
        batch = jax.random.uniform(jax.random.fold_in(key, k), (n, 32, 32, 3))

        def f(p):
            return mean_loss(loss, eqx.combine(p, static), batch, jax.random.fold_in(key, -k))

        value, grads = jax.value_and_grad(f)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, value

    t0 = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, 0).compile()
    compile_s = time.perf_counter() - t0
    flops = _flops(compiled)
    params, opt_state, v = compiled(params, opt_state, 0)
    v.block_until_ready()
    steps = 3 if dry else 30
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        params, opt_state, v = compiled(params, opt_state, k)
    v.block_until_ready()
    wall = time.perf_counter() - t0
    count = sum(x.size for x in jax.tree.leaves(params))
    return {"params": int(count), "batch_size": n, "steps": steps, "compile_s": compile_s,
            "step_ms": 1e3 * wall / steps, "images_per_s": n * steps / wall,
            "flops_per_step": flops,
            "tflops_per_s": None if flops is None else flops * steps / wall / 1e12,
            "final_loss": float(np.asarray(v))}


def sample(dry: bool) -> dict:
    import jax

    import sdegen

    _, process, model, _, _ = _unet(dry)
    n, steps = (4, 3) if dry else (256, 20)
    out = {}
    for call in ("first (compiles)", "second"):
        t0 = time.perf_counter()
        x = sdegen.sample(process, model, key=jax.random.key(2), shape=(n, 32, 32, 3),
                          method="dpm2m", num_steps=steps)
        x.block_until_ready()
        out[call] = time.perf_counter() - t0
    return {"method": "dpm2m", "num_steps": steps, "n": n, "first_call_s": out["first (compiles)"],
            "wall_s": out["second"], "images_per_s": n / out["second"],
            "finite": bool(jax.numpy.all(jax.numpy.isfinite(x)))}


def main() -> None:
    section, out = sys.argv[1], Path(sys.argv[2])
    dry = "--dry-run" in sys.argv[3:]
    result = {"env": env, "unet": unet, "sample": sample}[section]
    got = result() if section == "env" else result(dry)
    out.write_text(json.dumps(got, indent=2))
    print(json.dumps(got))


if __name__ == "__main__":
    main()
