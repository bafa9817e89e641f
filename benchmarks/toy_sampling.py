"""Toy sampling benchmark: cost and quality of `sdegen.sample` on an analytic 2D score.

Problem: `--n` 2D points (default 10k), float32, `sdegen.VPSDE()` with the exact marginal score
of a 3-component Gaussian mixture (`sdegen.data.GaussianMixture(...).score(sde)`), generation
from t = T to t_eps = 1e-3. Every method starts from the same prior draw x_T.

Rows measured:

- `ode`  — probability-flow ODE, Tsit5, rtol = atol = 1e-5;
- `sde`  — Euler–Maruyama on the reverse SDE, 1000 uniform steps;
- `pc`   — predictor–corrector, 500 steps, 1 Langevin corrector, snr = 0.05;
- `lax.scan EM` — reference: a bare `jax.lax.scan` Euler–Maruyama loop on the same reverse SDE
  (forward solver time s = T - t, drift f - g² score, noise g dW, 1000 steps, same score);
- `true vs true` — sliced-W between two independent sets of true samples (the noise floor).

Columns: NFE (batched score evaluations, from `return_stats=True`); wall time after compile
(one warm-up call, then the median of `--repeats` = 3 calls under `jax.block_until_ready`, the
methods' calls interleaved so that changes in machine load hit all alike); sliced 2-Wasserstein
distance to `--n` true samples (`sdegen.metrics.sliced_wasserstein`, 256 fixed projections);
overhead ratio = wall / (NFE × t_score), t_score the median time of a jitted
`jax.vmap(score, (0, None))` on the whole batch, 100 calls a round, interleaved likewise (near 1:
the sampler costs little beyond its score evaluations). Also: sdegen-sde wall / lax.scan wall
(target ≤ 1.2). Prints a table and writes JSON (default benchmarks/results/toy_sampling.json).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp

import sdegen
from sdegen.data import GaussianMixture
from sdegen.metrics import sliced_wasserstein

T_EPS = 1e-3
METHODS = {
    "ode": dict(method="ode", rtol=1e-5, atol=1e-5),
    "sde": dict(method="sde", num_steps=1000),
    "pc": dict(method="pc", num_steps=500, n_corrector=1, snr=0.05),
}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def timed(fns, repeats, calls):
    """Median wall time of each (already compiled) function in `fns`, over `repeats` rounds of
    `calls[name]` timed calls. Rounds interleave the functions, so that a change in machine
    load hits every entry alike (the score's unit cost included)."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(calls.get(name, 1)):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def scan_em(sde, score, num_steps, t_eps):
    """Bare Euler–Maruyama on the reverse SDE in solver time s = T - t, as one jitted scan."""
    T = sde.T
    ds = (T - t_eps) / num_steps
    batched_score = jax.vmap(score, in_axes=(0, None))

    @jax.jit
    def run(x_T, key):
        def step(x, inputs):
            k, s = inputs
            t = T - s
            g = sde.diffusion(t)
            drift = sde.drift(x, t) - g**2 * batched_score(x, t)  # reverse drift, forward time
            z = jax.random.normal(k, x.shape, x.dtype)
            return x - drift * ds + g * jnp.sqrt(ds) * z, None

        s_grid = jnp.arange(num_steps, dtype=x_T.dtype) * ds
        x, _ = jax.lax.scan(step, x_T, (jax.random.split(key, num_steps), s_grid))
        return x

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of 2D points")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "toy_sampling.json")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (calls per method)")
    args = parser.parse_args(argv)
    n = args.n

    sde = sdegen.VPSDE()
    mixture = GaussianMixture([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.0, 1.0], [2.0, -2.0]],
                              [0.3, 0.5, 0.4])
    score = mixture.score(sde)
    k_prior, k_solve, k_true, k_floor, k_proj = jax.random.split(jax.random.key(0), 5)
    x_T = sde.prior_sample(k_prior, (n, 2))
    assert x_T.dtype == jnp.float32, x_T.dtype
    true = mixture.sample(k_true, n)

    def swd(x):
        return float(sliced_wasserstein(k_proj, x, true))

    score_fn = jax.jit(jax.vmap(score, in_axes=(0, None)))  # the unit of cost
    t_mid = jnp.asarray(0.5, dtype=jnp.float32)
    ref = scan_em(sde, score, 1000, T_EPS)
    runs = {name: functools.partial(sdegen.sample, sde, score, key=k_solve, x_T=x_T, t_eps=T_EPS,
                                    return_stats=True, **kwargs)
            for name, kwargs in METHODS.items()}
    runs["lax.scan EM"] = lambda: (ref(x_T, k_solve), None)
    runs["score"] = lambda: (score_fn(x_T, t_mid), None)
    outs = {name: jax.block_until_ready(fn()) for name, fn in runs.items()}  # compile
    walls = timed(runs, args.repeats, calls={"score": 100})
    t_score = walls.pop("score")
    del outs["score"]
    rows = []
    for name, (x, stats) in outs.items():
        nfe = stats.nfe if stats is not None else 1000
        rows.append(dict(method=name, nfe=nfe, wall_s=walls[name], sliced_w=swd(x),
                         overhead_ratio=walls[name] / (nfe * t_score)))
    floor = float(sliced_wasserstein(k_proj, mixture.sample(k_floor, n), true))
    rows.append(dict(method="true vs true", nfe=None, wall_s=None, sliced_w=floor,
                     overhead_ratio=None))
    by_name = {r["method"]: r for r in rows}
    sde_vs_scan = by_name["sde"]["wall_s"] / by_name["lax.scan EM"]["wall_s"]

    print(f"n = {n}, float32, VPSDE, {jax.default_backend()} ({os.cpu_count()} CPUs); "
          f"one batched score eval = {t_score * 1e6:.1f} us")
    print(f"{'method':<14}{'NFE':>7}{'wall [s]':>11}{'sliced-W':>11}{'overhead':>10}")
    for r in rows:
        print(f"{r['method']:<14}{fmt(r['nfe'], 'd'):>7}{fmt(r['wall_s'], '.4f'):>11}"
              f"{r['sliced_w']:>11.4f}{fmt(r['overhead_ratio'], '.2f'):>10}")
    verdict = "ok" if sde_vs_scan <= 1.2 else "ABOVE TARGET"
    print(f"sdegen sde wall / lax.scan wall = {sde_vs_scan:.2f} (target <= 1.2: {verdict})")

    result = dict(
        benchmark="toy_sampling", n=n, repeats=args.repeats, dtype="float32", t_eps=T_EPS,
        score_eval_s=t_score,
        sde_over_scan_wall=sde_vs_scan, rows=rows, jax=jax.__version__,
        diffrax=diffrax.__version__, cpu_count=os.cpu_count(),
        platform=f"{jax.default_backend()} ({jax.devices()[0].device_kind}); {platform.platform()}",
        date=datetime.datetime.now().isoformat(timespec="seconds"),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
