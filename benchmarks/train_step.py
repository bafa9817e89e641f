"""Training step time of `sdegen.fit` on a shipped config, against a bare jitted optax loop on
the same problem (same model, loss, data sampler, optimizer and batch; no EMA, no non-finite
guard, no logging, no checkpoints).

    python benchmarks/train_step.py [--configs configs/toy2d/demo.yaml ...] [--steps 200]
                                    [--label after] [--out benchmarks/results/train_step.json]

`fit`'s step time is read from its own `metrics.jsonl`: the wall-clock difference between its
first and last logging steps (each taken once that step's loss is on the host, so the compile
and the final checkpoint are outside it) over the steps between; `fit` runs N steps with the
config's `train.log_every` (at most N/4) and a checkpoint only at the end. The bare loop's time
is the median of N timed steps after a compile step, blocking each step's output (the honest
per-step cost of a loop that looks at every loss). With `--label`, the rows are merged into the
JSON under that label, so a run at the commit before a change (`--label before`, with that
commit's sdegen on PYTHONPATH) and one after land side by side.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

import sdegen
from sdegen import config as C
from sdegen.fit import mean_loss

RFM_FALLBACK = "configs/sphere/rfm_vmf_mixture.yaml"


def _objects(cfg):
    data = C.build_data(cfg)
    keys = jax.random.split(jax.random.key(cfg.seed), 3)
    model = C.build_field(cfg, data.shape, keys[0], data=data)
    loss = C.build_loss(cfg, C.build_process(cfg.process), getattr(data, "num_classes", None))
    return data.train_batch, model, loss, C.build_optimizer(cfg.train), keys


def fit_step_s(cfg, steps: int, log_every: int) -> float:
    sampler, model, loss, opt, keys = _objects(cfg)
    t = cfg.train
    with tempfile.TemporaryDirectory() as tmp:
        sdegen.fit(loss, model, sampler, key=jax.numpy.stack([keys[1], keys[2]]), steps=steps,
                   batch_size=t.batch_size, optimizer=opt, log_every=log_every, devices=1,
                   run_dir=tmp, ckpt_every=10 * steps, progress=False, name="bench")
        records = [json.loads(ln) for ln in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]  # wall_s is taken once the step's loss is on the host
    return (last["wall_s"] - first["wall_s"]) / (last["step"] - first["step"])


def bare_step_s(cfg, steps: int) -> float:
    sampler, model, loss, opt, keys = _objects(cfg)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    n = cfg.train.batch_size

    @jax.jit
    def step(params, opt_state, k):
        batch = sampler(jax.random.fold_in(keys[1], k), n)

        def f(p):
            return mean_loss(loss, eqx.combine(p, static), batch, jax.random.fold_in(keys[2], k))

        value, grads = jax.value_and_grad(f)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, value

    params, opt_state, v = step(params, opt_state, 0)
    v.block_until_ready()
    times = []
    for k in range(1, steps + 1):
        t0 = time.perf_counter()
        params, opt_state, v = step(params, opt_state, k)
        v.block_until_ready()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="*",
                   default=["configs/toy2d/demo.yaml", "configs/sphere/rfm_volcano.yaml"])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--big-steps", type=int, default=40,
                   help="steps for configs with batch_size > 1024 (the sphere RFM)")
    p.add_argument("--label", default="after")
    p.add_argument("--out", default="benchmarks/results/train_step.json")
    args = p.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    rows = results.setdefault(args.label, {})
    for path in args.configs:
        try:
            cfg = C.load(path)
            C.build_data(cfg)
        except sdegen.errors.DataMissingError:
            print(f"{path}: data missing, using {RFM_FALLBACK}")
            path, cfg = RFM_FALLBACK, C.load(RFM_FALLBACK)
        n = args.steps if cfg.train.batch_size <= 1024 else args.big_steps
        log_every = min(cfg.train.log_every, n // 4)
        fit_s, bare_s = fit_step_s(cfg, n, log_every), bare_step_s(cfg, n)
        rows[path] = {"fit_step_ms": 1e3 * fit_s, "bare_step_ms": 1e3 * bare_s,
                      "ratio": fit_s / bare_s, "steps": n, "log_every": log_every,
                      "batch_size": cfg.train.batch_size,
                      "backend": jax.default_backend(), "jax": jax.__version__}
        print(f"{args.label:>8} {path:40s} fit {1e3 * fit_s:8.3f} ms/step  bare "
              f"{1e3 * bare_s:8.3f} ms/step  ratio {fit_s / bare_s:5.2f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
