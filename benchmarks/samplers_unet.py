"""Sampler benchmark on a trained model (issue 21): error vs NFE of every FRONTIER method of
benchmarks/samplers.py on the digits VP UNet, against a tight adaptive solve.

Trains `configs/images/digits_vp.yaml` CPU-small (`--steps`, default 1500; or loads `--run RUN`,
any trained VP run directory), then from one fixed batch of prior draws x_T (`--n`, default 128,
key 0 as in the mixture harness) solves the PF-ODE tightly (`ode`, Dopri8, rtol = atol =
`--ref-tol`, default 1e-6, float32; its NFE is reported, and its own error estimated by the same
solve at 10× the tolerance) and runs every FRONTIER method at NFE 5, 8, 10, 15, 20, 50 exactly
as `samplers.py --frontier` does on the mixtures: steps on the Karras grid (ρ = 7) to t_eps =
1e-3, then one evaluation of the denoiser D (σ -> 0), compared with D(reference end point).
`err` is the RMS over samples of the per-sample distance (64 pixels in [0, 1)), `sw_true` the
sliced W of the samples to the 180 test digits. The field is the run's EMA UNet seen by the
harness as a field on flattened 64-vectors (`FlatField`), so the mixture harness's functions
serve unchanged.

Peers (unless `--no-peers`): diffusers' DPMSolverMultistep (2M, 3M, 2M SDE), UniPCMultistep
(orders 2, 3), DEISMultistep (3), Euler and Heun on the same σ grid, driven by the same JAX UNet
from the torch venv (PEER_PYTHON, default /work/peer-venv/bin/python: torch + diffusers, no
JAX; `peers/samplers_unet_torch.py` appends this process's site-packages and repository to its
sys.path after its own, so it loads the run with sdegen). Errors only: the peers' wall time
holds a numpy <-> torch <-> JAX round trip per evaluation and is not comparable.

Writes benchmarks/results/samplers_unet.json and samplers_unet.png.

Measured (2026-12-01, 2 CPU cores shared with a CI run, ~26 min in all; after the UNet's
channel-last convolutions, which made its evaluations ~5x faster inside solver loops): 1500 steps
in 283 s, n = 128; the reference took 1522 NFE in 51 s (at rtol = atol = 1e-5: 1080 NFE, D(x)
moves by RMS 1.8e-5, far below every error here). RMS error (pixels in [0, 1), 64 per digit)
at NFE 5, 8, 10, 15, 20, 50: ddim 1.54, 0.81, 0.62, 0.40, 0.31, 0.12; dpm2m 3.23, 0.77, 0.50,
0.22, 0.12, 0.021; dpm3m 1.97, 0.60, 0.45, 0.26, 0.083, 0.013; unipc2 1.85, 0.62, 0.40, 0.16,
0.082, 0.012; deis_d 2.13, 1.24, 0.51, 0.13, 0.070, 0.014; ipndm 8.95, 4.13, 1.90, 0.55, 0.11,
0.013; edm_heun (NFE 5, 15) 371, 0.75. Order 3-4 multistep methods are unstable at NFE 5 on
this model (ipndm 9.0, unipc_d 45, dpm3m_d 28, unipc_bh1 23) and win from NFE 15 on. Every
diffusers scheduler matches its counterpart (PARITY) to 0.1% (DEIS 0.927 at NFE 50; the 2M SDE
0.88-1.18, by sliced W, its noise differing); best sdegen / best peer at NFE 5, 8, 10, 15, 20,
50: 0.90 (dpm2s / euler), 0.93 (dpm3m / unipc2), 0.89 (unipc2 / unipc2), 0.99, 1.006 (deis_d /
deis3: the same algorithm, diffusers' own σs), 1.00. sdegen / peer wall time 0.4-0.9 at most
NFEs (up to 1.9 in single noisy cells). Sliced W to the test digits reaches its floor (~0.05) by
NFE 10-15 for most methods.

    python benchmarks/samplers_unet.py [--run RUN] [--steps 1500] [--n 256] [--no-peers]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import sysconfig
import time
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import sdegen
from sdegen import config as C
from sdegen.metrics import sliced_wasserstein
from sdegen.processes import denoiser
from sdegen.runs import open_run
from sdegen.train import train

sys.path.insert(0, str(Path(__file__).parent))
from samplers import (  # noqa: E402
    FRONTIER,
    FRONTIER_NFES,
    PARITY,
    PEER_ENDS_AT_SIGMA_MIN,
    PEER_KINDS,
    STOCHASTIC,
    T_EPS,
    frontier_parity,
    frontier_plot,
    frontier_rows,
    frontier_summary,
    rms,
    run_peer_script,
)

HERE = Path(__file__).parent
PEER_SCRIPT = HERE / "peers" / "samplers_unet_torch.py"
PROBLEM = "digits"


class FlatField(eqx.Module):
    """A field on one example of shape `shape`, seen as a field on its flattened vector."""

    field: eqx.Module
    shape: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, x, t):
        return self.field(x.reshape(self.shape), t).reshape(-1)


class Trained(eqx.Module):
    """The trained model in the place of a mixture for `samplers.frontier_parity`, which asks
    its problem for `.score(sde)`."""

    field: FlatField

    def score(self, sde):
        del sde
        return self.field


def trained_run(args):
    """The run directory `--run`, or the digits VP UNet trained for `--steps` steps (a
    finished run directory of the same config is loaded, not trained again)."""
    if args.run:
        return open_run(args.run)
    cfg = C.load("images/digits_vp", [f"train.steps={args.steps}",
                                      f"out_dir={args.out / 'samplers_unet_run'}"])
    start = time.perf_counter()
    train(cfg, progress=False)
    print(f"trained / loaded {cfg.run_dir} in {time.perf_counter() - start:.0f} s", flush=True)
    return open_run(cfg.run_dir)


def last_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None,
                        help="a trained VP run directory (default: train digits_vp CPU-small)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps (without --run)")
    parser.add_argument("--n", type=int, default=128, help="samples (one batch of x_T)")
    parser.add_argument("--nfes", type=int, nargs="+", default=list(FRONTIER_NFES))
    parser.add_argument("--ref-tol", type=float, default=1e-6,
                        help="rtol = atol of the Dopri8 reference solve")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls after a warm-up")
    parser.add_argument("--methods", nargs="+", default=None, help="only these FRONTIER runs")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.methods and set(args.methods) - set(FRONTIER):
        parser.error(f"unknown --methods {sorted(set(args.methods) - set(FRONTIER))}; "
                     f"choose from {list(FRONTIER)}")
    args.out.mkdir(parents=True, exist_ok=True)
    run = trained_run(args)
    sde = run.process
    if not isinstance(sde, sdegen.VPSDE):
        raise SystemExit(f"--run {run.dir}: the harness's grid and peers are VP; this run's "
                         f"process is {type(sde).__name__}")
    field = FlatField(run.field, tuple(run.data.shape))
    dim = int(np.prod(run.data.shape))
    keys = jax.random.split(jax.random.key(0), 4)
    x_T = sde.prior_sample(keys[0], (args.n, dim))
    test = run.data.test_set(keys[2], 10**9)
    test = test[0] if isinstance(test, tuple) else test  # a labelled source: (x, labels)
    true = jnp.asarray(test).reshape(test.shape[0], -1)

    def reference(tol):
        start = time.perf_counter()
        x, stats = sdegen.sample(sde, field, key=keys[1], x_T=x_T, method="ode", solver="dopri8",
                                 rtol=tol, atol=tol, t_eps=T_EPS, max_steps=100_000,
                                 return_stats=True)
        x = jax.block_until_ready(x)
        return x, int(stats.nfe), time.perf_counter() - start

    ref, ref_nfe, ref_wall = reference(args.ref_tol)
    loose, loose_nfe, _ = reference(10 * args.ref_tol)
    den = jax.jit(jax.vmap(denoiser(sde, field), (0, None)))
    target = den(ref, T_EPS)
    ref_err = rms(den(loose, T_EPS), target)
    print(f"reference: dopri8 rtol = atol = {args.ref_tol:g}, NFE {ref_nfe}, {ref_wall:.1f} s; "
          f"at 10x the tolerance (NFE {loose_nfe}) it moves D(x) by RMS {ref_err:.2e}",
          flush=True)
    data = {PROBLEM: (Trained(field), x_T, ref, target, true)}
    rows = frontier_rows(sde, field, PROBLEM, keys, data[PROBLEM], tuple(args.nfes), args)
    kinds = tuple(k for k in PEER_KINDS if not args.methods or PARITY[k] in args.methods)
    peer_rows = [] if args.no_peers else unet_peers(run, data, args.nfes, kinds, keys)
    parity = frontier_parity(sde, data, rows, peer_rows, keys, args.repeats) if peer_rows else []
    summary = frontier_summary(rows, peer_rows, tuple(args.nfes))
    print_table(rows, peer_rows, tuple(args.nfes))

    metrics = last_metrics(run.dir)
    result = dict(benchmark="samplers_unet", run=str(run.dir), config=run.cfg.name,
                  train_steps=run.step, final_loss=metrics.get("loss"),
                  train_wall_s=metrics.get("wall_s"), ema=run.ema, n=args.n,
                  nfes=list(args.nfes), dtype="float32", t_eps=T_EPS, grid="karras rho=7",
                  reference=dict(method="ode", solver="dopri8", rtol=args.ref_tol,
                                 atol=args.ref_tol, nfe=ref_nfe, wall_s=ref_wall,
                                 err_vs_10x_tol=ref_err, nfe_10x_tol=loose_nfe),
                  rows=rows, peers=peer_rows, parity=parity, summary=summary,
                  peer_wall_note="peer wall times include a numpy/torch/JAX round trip per "
                                 "evaluation; not comparable with sdegen's",
                  jax=jax.__version__, diffrax=diffrax.__version__, cpu_count=os.cpu_count(),
                  platform=f"{jax.default_backend()}; {platform.platform()}",
                  date=datetime.datetime.now().isoformat(timespec="seconds"))
    (args.out / "samplers_unet.json").write_text(json.dumps(result, indent=2) + "\n")
    frontier_plot(rows, peer_rows, args.out / "samplers_unet.png",
                  title=f"digits VP UNet ({run.step} steps), {args.n} samples, Karras grid")
    print(f"wrote {args.out / 'samplers_unet.json'} and samplers_unet.png")


def unet_peers(run, data, nfes, kinds, keys):
    """The diffusers schedulers `kinds` at each NFE, driven by the run's UNet from the torch
    venv; rows like `samplers.frontier_peers` (error only)."""
    python = Path(os.environ.get("PEER_PYTHON", "/work/peer-venv/bin/python"))
    if not python.exists():
        print(f"peers skipped: {python} missing (set PEER_PYTHON to a torch + diffusers venv)")
        return []
    _, x_T, ref, target, true = data[PROBLEM]
    runs = [dict(name=f"{kind} {nfe + (kind == 'heun')}", kind=kind, nfe=nfe + (kind == "heun"))
            for nfe in nfes for kind in kinds]
    repo = str(Path(sdegen.__file__).resolve().parents[1])
    spec = dict(run=str(run.dir.resolve()), step=run.step, ema=run.ema, t_eps=T_EPS, runs=runs,
                sys_path=[repo, sysconfig.get_paths()["purelib"]])
    meta, peers = run_peer_script(python, PEER_SCRIPT, spec, dict(x_T=np.asarray(x_T)))
    rows = []
    for r in runs:
        x = peers[r["name"]]
        goal = ref if r["kind"] in PEER_ENDS_AT_SIGMA_MIN else target
        rows.append(dict(problem=PROBLEM, peer=r["kind"], nfe=meta[r["name"]]["nfe"],
                         wall_s=meta[r["name"]]["wall_s"], err=rms(x, goal),
                         sw_true=float(sliced_wasserstein(keys[3], x, true))))
    return rows


def print_table(rows, peer_rows, nfes):
    """RMS error by method (rows) and NFE budget (columns); the diffusers peers ("d:") below.
    An entry is the run whose counted NFE is nearest the budget, starred where they differ
    (2-evaluation methods: 2 steps + 1; diffusers' Heun: 2 steps - 1)."""
    print(f"\n{'RMS err':<12}" + "".join(f"{n:>11}" for n in nfes))

    def line(label, runs, note=""):
        cells = []
        for n in nfes:
            r = min(runs, key=lambda r: (abs(r["nfe"] - n), r["nfe"]))
            star = "*" if r["nfe"] != n else " "
            cells.append(f"{format(r['err'], '.3e') + star:>11}")
        print(f"{label:<12}" + "".join(cells) + note)

    for name in FRONTIER:
        runs = [r for r in rows if r["method"] == name]
        if runs:
            line(name, runs, "  (stochastic: distance to the ODE end point)"
                 if name in STOCHASTIC else "")
    for kind in PEER_KINDS:
        runs = [r for r in peer_rows if r["peer"] == kind]
        if runs:
            line("d:" + kind, runs)


if __name__ == "__main__":
    main()
