"""Exact minibatch OT coupling (OT-CFM): scipy's `linear_sum_assignment` through
`jax.pure_callback` against optax's Hungarian algorithm in JAX, inside one jitted call, at the
OT-CFM configs' batch (512, 2-D) and around it. Decides `sdegen.objectives.flow`'s "auto".

    python benchmarks/ot_coupling.py [--sizes 128 512 2048]
                                     [--out benchmarks/results/ot_coupling.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from sdegen.objectives.flow import ot_coupling


def time_ms(f, *args, reps: int = 5) -> float:
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[128, 512, 2048])
    p.add_argument("--out", default="benchmarks/results/ot_coupling.json")
    args = p.parse_args()
    rows = []
    for n in args.sizes:
        x0 = jax.random.normal(jax.random.key(0), (n, 2))
        eps = jax.random.normal(jax.random.key(1), (n, 2))
        row = {"n": n, "backend": jax.default_backend()}
        for name in ("scipy", "optax"):
            f = jax.jit(lambda a, b, name=name: ot_coupling(a, b, assignment=name))
            row[f"{name}_ms"] = time_ms(f, x0, eps)
            row[f"{name}_cost"] = float(((f(x0, eps) - x0) ** 2).sum())
        row["faster"] = "scipy" if row["scipy_ms"] < row["optax_ms"] else "optax"
        rows.append(row)
        print(f"n={n:5d} {row['backend']}: scipy {row['scipy_ms']:9.1f} ms  optax "
              f"{row['optax_ms']:9.1f} ms  (costs {row['scipy_cost']:.4f} / "
              f"{row['optax_cost']:.4f})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
