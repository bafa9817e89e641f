"""AUROC benchmark: `sdegen.metrics.auroc` (sort-based, O((n+m) log m)) against the all-pairs
Mann–Whitney count it replaced (O(n·m) memory and time) and scikit-learn's `roc_auc_score`, on
Gaussian scores with a 0.5 shift at n = m = 1k, 10k (and, for the sorted methods, 100k).

Columns: the AUROC each gives (they must agree: the same statistic, ties counted half), wall time
after compile (median of `--repeats` calls under `jax.block_until_ready`). Prints a table and
writes JSON (default benchmarks/results/auroc.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.metrics import roc_auc_score

from sdegen.metrics import auroc


@jax.jit
def all_pairs(pos, neg):
    diff = pos[:, None] - neg[None, :]
    return jnp.mean((diff > 0) + 0.5 * (diff == 0))


def timed(fn, repeats):
    jax.block_until_ready(fn())
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        walls.append(time.perf_counter() - t0)
    return float(out), float(np.median(walls))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--pairs-max", type=int, default=10_000, help="largest n for all pairs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/auroc.json")
    a = p.parse_args()
    sorted_auroc = jax.jit(auroc)
    rows = []
    for n in a.sizes:
        rng = np.random.default_rng(n)
        pos = jnp.asarray(rng.normal(0.5, 1.0, n).astype(np.float32))
        neg = jnp.asarray(rng.normal(0.0, 1.0, n).astype(np.float32))
        row = {"n": n, "m": n}
        row["sorted_auroc"], row["sorted_s"] = timed(
            lambda p=pos, q=neg: sorted_auroc(p, q), a.repeats)
        if n <= a.pairs_max:
            row["pairs_auroc"], row["pairs_s"] = timed(lambda p=pos, q=neg: all_pairs(p, q),
                                                         a.repeats)
        labels = np.r_[np.ones(n), np.zeros(n)]
        scores = np.r_[np.asarray(pos), np.asarray(neg)]
        row["sklearn_auroc"], row["sklearn_s"] = timed(
            lambda y=labels, s=scores: roc_auc_score(y, s), a.repeats)
        rows.append(row)
        print(" | ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in row.items()), flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backend": jax.default_backend(), "rows": rows}, indent=2))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
