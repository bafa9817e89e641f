"""Sampler benchmark: NFE versus error for every `sdegen.sample` method, measured side by side
with the PyTorch peers on the same analytic score.

Problems (float32, `sdegen.VPSDE()`, t_eps = 1e-3, the exact marginal score of a Gaussian
mixture): `2d`, the 3-component mixture of benchmarks/toy_sampling.py; `16d`, 6 components in
16 dimensions with means drawn from N(0, 2² I) (seed 0) and stds 0.4–0.7. Every method starts
from the same prior draw x_T.

Errors, against a high-accuracy reference (Dopri8 PF-ODE, rtol = atol = 1e-7, from the same x_T):
- `err`: RMS over samples of the per-sample distance to the reference end point (deterministic
  methods only; for the stochastic ones this distance is not an error);
- `sw_ref`: sliced 2-Wasserstein distance (256 projections) to the reference end points;
- `sw_true`: the same to independent true samples of the mixture (for stochastic methods).
Methods: ddim, dpm2m, edm_heun, edm_churn, pc_ode, sde (Euler–Maruyama), pc, at each NFE of the
grid (steps = NFE / evaluations per step), plus the adaptive `ode` (Dopri5, rtol = atol = 1e-5).

Peers (`benchmarks/peers/samplers_torch.py`, run as a subprocess in `benchmarks/peers/.venv`,
created by `bash benchmarks/peers/setup.sh`): torchdiffeq dopri5 PF-ODE (same tolerances),
torchsde Euler reverse SDE (1000 steps), diffusers DPMSolverMultistep (2M, data prediction),
Euler and Heun schedulers on the Karras σ-grid with their discrete table set to the same VP SDE.
They are compared with sdegen at equal NFE and on the same Karras grid: dpm2m ↔
DPMSolverMultistep, ddim ↔ Euler (Euler in σ on x/α is DDIM), edm_heun ↔ Heun. The diffusers
schedulers end with a first-order step from σ(t_eps) to σ = 0, i.e. one evaluation of the
denoiser D; sdegen runs its method to t_eps with one evaluation fewer and applies the same D, and
both are compared with D(reference end point).

`--frontier` (issue 21): every fixed-grid method (ddim, ddim η = 1, dpm2m, dpm3m, dpm2s,
dpm2m_sde, ipndm, deis, unipc (orders 3, 2), unipc_bh1, edm_heun) and the diffusers
DPMSolverMultistep (2M, 3M, 2M SDE), UniPCMultistep (orders 2, 3), DEISMultistep (3), Euler and
Heun schedulers, all on the Karras grid, at NFE 5, 8, 10, 15, 20, 50 on 2-D, 16-D and 64-D
mixtures; peers run with PEER_PYTHON (default benchmarks/peers/.venv/bin/python). Also runs
the diffusers-convention variants (`lower_order_final="diffusers"`, `DEIS(basis="log_rho")`:
dpm3m_d, unipc_d, unipc2_d, deis_d, dpm2m_sde_d) and prints each peer against its counterpart
(`PARITY`, error and wall ratios) and the best sdegen method / best peer error ratio at each
NFE. `--methods` restricts the runs (and the peers) to some FRONTIER names. The same mixtures
on the rectified-flow path (`LinearPath`, exact velocity, uniform grid; `frontier_flow`) with
diffusers' FlowMatchEulerDiscreteScheduler as the peer of ddim, in samplers_frontier.json
under "flow" and samplers_frontier_flow.png.

Targets checked (and printed): PF-ODE wall per NFE ≤ torchdiffeq's; sdegen sde wall ≤ 1.2× a
bare lax.scan Euler–Maruyama loop; best sw_true at ≤ 20 NFE within 10% of 1000-step EM's; for
each peer scheduler, sdegen's err at the same NFE no worse. Wall times: one warm-up call, then
the median of `--repeats` calls. Writes benchmarks/results/samplers.json and samplers.png.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import sdegen
from sdegen.data import GaussianMixture
from sdegen.metrics import sliced_wasserstein
from sdegen.processes import denoiser
from sdegen.solvers import DEIS

sys.path.insert(0, str(Path(__file__).parent))
from toy_sampling import scan_em  # noqa: E402
from toy_sampling import timed as interleaved  # noqa: E402

HERE = Path(__file__).parent
PEER_PYTHON = HERE / "peers" / ".venv" / "bin" / "python"
PEER_SCRIPT = HERE / "peers" / "samplers_torch.py"
T_EPS = 1e-3
PER_STEP = {"ddim": 1, "dpm2m": 1, "edm_heun": 2, "edm_churn": 2, "pc_ode": 2, "sde": 1, "pc": 2}
DETERMINISTIC = ("ddim", "dpm2m", "edm_heun", "ode")
PEER_MATCH = {"dpm2m": "dpm2m", "euler": "ddim", "heun": "edm_heun"}


def problems():
    rng = np.random.default_rng(0)
    return {
        "2d": GaussianMixture([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.0, 1.0], [2.0, -2.0]],
                              [0.3, 0.5, 0.4]),
        "16d": GaussianMixture(rng.uniform(0.5, 1.5, 6), 2.0 * rng.standard_normal((6, 16)),
                               rng.uniform(0.4, 0.7, 6)),
    }


def timed(fn, repeats):
    out = jax.block_until_ready(fn())
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - start)
    return out, statistics.median(walls)


def bench_problem(prob, mixture, sde, n, nfes, repeats, keys, rows, checks):
    """Every sdegen method at every NFE on one problem; returns (mixture, x_T, ref, D(ref))."""
    score = mixture.score(sde)
    x_T = sde.prior_sample(keys[0], (n, mixture.dim))
    true = mixture.sample(keys[2], n)
    ref = sdegen.sample(sde, score, key=keys[1], x_T=x_T, method="ode", solver="dopri8",
                        rtol=1e-7, atol=1e-7)
    ref_denoised = jax.vmap(denoiser(sde, score), (0, None))(ref, T_EPS)

    def run(method, **kw):
        fn = functools.partial(sdegen.sample, sde, score, key=keys[1], x_T=x_T, method=method,
                               t_eps=T_EPS, return_stats=True, **kw)
        (x, stats), wall = timed(fn, repeats)
        err = rms(x, ref) if method in DETERMINISTIC else None
        row = dict(problem=prob, method=method, nfe=stats.nfe, wall_s=wall, err=err,
                   sw_ref=float(sliced_wasserstein(keys[3], x, ref)),
                   sw_true=float(sliced_wasserstein(keys[3], x, true)),
                   **{k: v for k, v in kw.items() if k != "snr"})
        rows.append(row)
        print(f"{prob:>4} {method:<10} NFE {stats.nfe:>5}  wall {wall:8.4f} s  err "
              f"{fmt(err, '.2e'):>9}  sw_ref {row['sw_ref']:.4f}  sw_true {row['sw_true']:.4f}",
              flush=True)
        return row

    for nfe in nfes:
        for method, per in PER_STEP.items():
            run(method, num_steps=nfe // per, snr=0.05)
    run("ode", solver="dopri5", rtol=1e-5, atol=1e-5)
    em = run("sde", num_steps=1000)
    floor = float(sliced_wasserstein(keys[3], mixture.sample(keys[1], n), true))
    few = [r for r in rows if r["problem"] == prob and r["nfe"] <= 20 and r["method"] != "ode"]
    best = min(few, key=lambda r: r["sw_true"])
    checks[f"{prob}: best sw_true at <= 20 NFE / EM-1000 sw_true (<= 1.1)"] = dict(
        value=best["sw_true"] / em["sw_true"], best=f"{best['method']}@{best['nfe']}",
        em1000=em["sw_true"], true_vs_true=floor)
    return mixture, x_T, ref, ref_denoised


def rms(x, y):
    """RMS over samples of the per-sample Euclidean distance."""
    return float(jnp.sqrt(jnp.mean(jnp.sum((x - y) ** 2, axis=1))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer NFE values and points")
    parser.add_argument("--n", type=int, default=None, help="points per problem")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--nfes", type=int, nargs="+", default=None,
                        help="NFE values (default 10 20 50 100 200; --small: 10 20 50)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--frontier", action="store_true",
                        help="issue 21: every fixed-grid method and diffusers scheduler at NFE "
                             "5-50 on 2-D/16-D/64-D mixtures (samplers_frontier.json/.png)")
    parser.add_argument("--problems", nargs="+", default=None, help="with --frontier")
    parser.add_argument("--flow-only", action="store_true",
                        help="with --frontier: only the rectified-flow rows")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="with --frontier: only these FRONTIER runs (and their peers)")
    args = parser.parse_args(argv)
    if args.frontier:
        return frontier(args)
    n = args.n or (1000 if args.small else 5000)
    nfes = tuple(args.nfes or ((10, 20, 50) if args.small else (10, 20, 50, 100, 200)))
    repeats = 1 if args.small else args.repeats
    sde = sdegen.VPSDE()
    keys = jax.random.split(jax.random.key(0), 4)
    rows, peer_rows, checks = [], [], {}
    data = {}
    for prob, mixture in problems().items():
        data[prob] = bench_problem(prob, mixture, sde, n, nfes, repeats, keys, rows, checks)

    # fixed-step SDE vs a bare lax.scan loop (2d)
    mixture, x_T, ref, ref_denoised = data["2d"]
    score = mixture.score(sde)
    scan = scan_em(sde, score, 1000, T_EPS)
    pair = {"scan": lambda: scan(x_T, keys[1]),
            "sde": lambda: sdegen.sample(sde, score, key=keys[1], x_T=x_T, method="sde",
                                         num_steps=1000, t_eps=T_EPS)}
    jax.block_until_ready([fn() for fn in pair.values()])
    walls = interleaved(pair, max(repeats, 3), calls={})  # load changes hit both alike
    scan_wall, sde_wall = walls["scan"], walls["sde"]
    checks["2d: sdegen sde wall / lax.scan wall (<= 1.2)"] = dict(
        value=sde_wall / scan_wall, sdegen_s=sde_wall, scan_s=scan_wall)

    if not args.no_peers:
        peer_rows = run_peers(sde, data, nfes, repeats, keys, checks, rows)

    print_table(rows, peer_rows, checks)
    args.out.mkdir(parents=True, exist_ok=True)
    result = dict(benchmark="samplers", n=n, nfes=nfes, repeats=repeats, dtype="float32",
                  t_eps=T_EPS, rows=rows, peers=peer_rows, checks=checks,
                  jax=jax.__version__, diffrax=diffrax.__version__, cpu_count=os.cpu_count(),
                  platform=f"{jax.default_backend()}; {platform.platform()}",
                  date=datetime.datetime.now().isoformat(timespec="seconds"))
    (args.out / "samplers.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, peer_rows, args.out / "samplers.png")
    print(f"wrote {args.out / 'samplers.json'} and {args.out / 'samplers.png'}")


def run_peer_script(python, script, spec, arrays):
    """Run `script` (PROBLEM.npz OUT.npz) with the peer venv's `python` on the run list `spec`
    and the `arrays`; returns (its per-run meta, {run name: end points})."""
    with tempfile.TemporaryDirectory() as tmp:
        problem, out = Path(tmp) / "problem.npz", Path(tmp) / "out.npz"
        np.savez(problem, spec=json.dumps(spec), **arrays)
        subprocess.run([str(python), str(script), str(problem), str(out)], check=True,
                       env={**os.environ, "PEER_THREADS": os.environ.get("PEER_THREADS", "1")})
        res = np.load(out)
        meta = json.loads(str(res["meta"]))["runs"]
        return meta, {name: jnp.asarray(res[name]) for name in meta}


def mixture_arrays(data):
    """The peers' view of each problem: its mixture's parameters and prior draws x_T."""
    arrays = {}
    for prob, (mixture, x_T, *_rest) in data.items():
        arrays.update({f"{prob}_weights": np.asarray(mixture.weights),
                       f"{prob}_means": np.asarray(mixture.means),
                       f"{prob}_stds": np.asarray(mixture.stds), f"{prob}_x_T": np.asarray(x_T)})
    return arrays


def run_peers(sde, data, nfes, repeats, keys, checks, rows):
    """Run the torch peers in their own venv on the 2d problem and compare at equal NFE."""
    if not PEER_PYTHON.exists():
        print(f"peers skipped: {PEER_PYTHON} missing (run: bash benchmarks/peers/setup.sh)")
        return []
    mixture, x_T, ref, ref_denoised = data["2d"]
    score = mixture.score(sde)
    runs = [dict(name="torchdiffeq dopri5", peer="torchdiffeq", problem="2d", rtol=1e-5,
                 atol=1e-5),
            dict(name="torchsde euler 1000", peer="torchsde", problem="2d", steps=1000)]
    for nfe in nfes:
        for kind in PEER_MATCH:
            peer_nfe = nfe + 1 if kind == "heun" else nfe  # Heun: NFE = 2 steps - 1, odd
            runs.append(dict(name=f"diffusers {kind} {peer_nfe}", peer="diffusers", kind=kind,
                             nfe=peer_nfe, problem="2d"))
    spec = dict(beta_min=sde.beta_min, beta_max=sde.beta_max, t_eps=T_EPS, repeats=repeats,
                runs=runs)
    meta, peers = run_peer_script(PEER_PYTHON, PEER_SCRIPT, spec,
                                  mixture_arrays({"2d": data["2d"]}))
    true = mixture.sample(keys[2], x_T.shape[0])
    den = jax.jit(jax.vmap(denoiser(sde, score), (0, None)))
    out_rows = []
    for r in runs:
        name = r["name"]
        x = peers[name]
        target = ref_denoised if r["peer"] == "diffusers" else ref
        row = dict(peer=name, nfe=meta[name]["nfe"], wall_s=meta[name]["wall_s"],
                   err=None if r["peer"] == "torchsde" else rms(x, target),
                   sw_true=float(sliced_wasserstein(keys[3], x, true)))
        if r["peer"] == "diffusers":
            ours = PEER_MATCH[r["kind"]]
            steps = (r["nfe"] - 1) // PER_STEP[ours]  # then the same final denoising step
            (y, stats), wall = timed(functools.partial(
                sdegen.sample, sde, score, key=keys[1], x_T=x_T, method=ours, num_steps=steps,
                t_eps=T_EPS, return_stats=True), repeats)
            y, nfe = den(y, T_EPS), stats.nfe + 1
            row.update(sdegen=ours, sdegen_nfe=nfe, sdegen_wall_s=wall,
                       sdegen_err=rms(y, target))
            row["err_ratio"] = row["sdegen_err"] / row["err"]
            row["wall_ratio"] = wall / row["wall_s"]
        elif r["peer"] == "torchdiffeq":
            ode = next(q for q in rows if q["problem"] == "2d" and q["method"] == "ode")
            row.update(sdegen="ode dopri5", sdegen_nfe=ode["nfe"], sdegen_wall_s=ode["wall_s"],
                       sdegen_err=ode["err"])
            row["wall_per_nfe_ratio"] = (ode["wall_s"] / ode["nfe"]) / (row["wall_s"] / row["nfe"])
            checks["2d: PF-ODE wall per NFE, sdegen / torchdiffeq (<= 1)"] = dict(
                value=row["wall_per_nfe_ratio"])
        else:
            em = [q for q in rows if q["problem"] == "2d" and q["method"] == "sde"
                  and q["nfe"] == 1000][0]
            row.update(sdegen="sde 1000", sdegen_nfe=1000, sdegen_wall_s=em["wall_s"],
                       sdegen_sw_true=em["sw_true"], wall_ratio=em["wall_s"] / row["wall_s"])
        out_rows.append(row)
    worst = max((r["err_ratio"] for r in out_rows if "err_ratio" in r), default=None)
    if worst is not None:
        checks["2d: worst sdegen err / peer scheduler err at equal NFE (<= 1)"] = dict(value=worst)
    return out_rows


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(rows, peer_rows, checks):
    print(f"\n{'problem':<8}{'method':<11}{'NFE':>6}{'wall [s]':>10}{'err':>10}{'sw_ref':>9}"
          f"{'sw_true':>9}")
    for r in rows:
        print(f"{r['problem']:<8}{r['method']:<11}{r['nfe']:>6}{r['wall_s']:>10.4f}"
              f"{fmt(r['err'], '.2e'):>10}{r['sw_ref']:>9.4f}{r['sw_true']:>9.4f}")
    if peer_rows:
        print(f"\n{'peer (2d)':<24}{'NFE':>5}{'wall [s]':>10}{'err':>10}{'sdegen':>12}{'NFE':>5}"
              f"{'wall [s]':>10}{'err':>10}")
        for r in peer_rows:
            print(f"{r['peer']:<24}{r['nfe']:>5}{r['wall_s']:>10.4f}{fmt(r['err'], '.2e'):>10}"
                  f"{r['sdegen']:>12}{r['sdegen_nfe']:>5}{r['sdegen_wall_s']:>10.4f}"
                  f"{fmt(r.get('sdegen_err'), '.2e'):>10}")
    print()
    for name, c in checks.items():
        print(f"{name}: {c['value']:.3f}  {({k: v for k, v in c.items() if k != 'value'})}")


def plot(rows, peer_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = sorted({r["problem"] for r in rows})
    fig, axes = plt.subplots(2, len(probs), figsize=(5.5 * len(probs), 8), squeeze=False)
    for j, prob in enumerate(probs):
        for i, key in enumerate(("err", "sw_true")):
            ax = axes[i, j]
            for method in PER_STEP:
                pts = sorted((r["nfe"], r[key]) for r in rows if r["problem"] == prob
                             and r["method"] == method and r[key] is not None and r["nfe"] <= 200)
                if pts:
                    ax.plot(*zip(*pts, strict=True), "o-", label=method, ms=4)
            if prob == "2d" and peer_rows:
                for kind in PEER_MATCH:
                    pts = sorted((r["nfe"], r[key if key == "err" else "sw_true"])
                                 for r in peer_rows if r["peer"].startswith(f"diffusers {kind}"))
                    if pts:
                        ax.plot(*zip(*pts, strict=True), "x--", label=f"diffusers {kind}", ms=6)
            ax.set(xscale="log", yscale="log", xlabel="NFE",
                   ylabel="RMS error to reference" if key == "err" else "sliced W to truth",
                   title=f"{prob}: {key}")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)



# --- the low-NFE frontier (issue 21): every fixed-grid method and the diffusers schedulers on
# the same Karras grid, at NFE 5-50, on 2-D, 16-D and 64-D mixtures --------------------------

FRONTIER_NFES = (5, 8, 10, 15, 20, 50)
FRONTIER = {  # name -> (method, sample options, evaluations per step)
    "ddim": ("ddim", {}, 1), "dpm2m": ("dpm2m", {}, 1), "dpm3m": ("dpm3m", {}, 1),
    "dpm2s": ("dpm2s", {}, 2), "ipndm": ("ipndm", {}, 1), "deis": ("deis", {}, 1),
    "unipc": ("unipc", {}, 1), "unipc2": ("unipc", dict(order=2), 1),
    "unipc_bh1": ("unipc_bh1", {}, 1), "edm_heun": ("edm_heun", {}, 2),
    "ddim_eta1": ("ddim", dict(eta=1.0), 1), "dpm2m_sde": ("dpm2m_sde", {}, 1),
    # diffusers' conventions: the final-step rule counted with the sigma -> 0 step, and DEIS's
    # polynomial in log r (`DEIS(basis="log_rho")`, a solver instance)
    "dpm3m_d": ("dpm3m", dict(lower_order_final="diffusers"), 1),
    "unipc_d": ("unipc", dict(lower_order_final="diffusers"), 1),
    "unipc2_d": ("unipc", dict(order=2, lower_order_final="diffusers"), 1),
    "deis_d": ("deis", dict(basis="log_rho", lower_order_final="diffusers"), 1),
    "dpm2m_sde_d": ("dpm2m_sde", dict(lower_order_final="diffusers"), 1),
}
STOCHASTIC = ("ddim_eta1", "dpm2m_sde", "dpm2m_sde_d")
PEER_KINDS = ("dpm2m", "dpm3m", "dpm2m_sde", "unipc2", "unipc3", "deis3", "euler", "heun")
PEER_ENDS_AT_SIGMA_MIN = ("deis3",)  # DEISMultistep ends at σ_min, the others at σ = 0
PARITY = {  # peer kind -> the sdegen run that takes its orders step by step on its grid
    "euler": "ddim", "dpm2m": "dpm2m", "dpm3m": "dpm3m_d", "unipc2": "unipc2_d",
    "unipc3": "unipc_d", "deis3": "deis_d", "heun": "edm_heun", "dpm2m_sde": "dpm2m_sde_d",
}
"""DEIS: diffusers' N evaluations are N - 1 steps to σ_min and a last, zero-length step (its
evaluation unused), so its counterpart is the same N - 1 steps before the final D, compared
with the reference end point itself (`err_end`). Heun: diffusers' NFE is odd (2 steps - 1)."""


def frontier_run(sde, score, keys, x_T, name, steps, repeats):
    """One FRONTIER run: `steps` steps on the Karras grid to t_eps; returns (x, nfe, wall)."""
    method, kw, _per = FRONTIER[name]
    kw = dict(kw)
    if "basis" in kw:
        kw["solver"] = DEIS(sde, solver_order=3, num_steps=steps,
                                           basis=kw.pop("basis"),
                                           lower_order_final=kw.pop("lower_order_final"))
    fn = functools.partial(sdegen.sample, sde, score, key=keys[1], x_T=x_T, method=method,
                           num_steps=steps, t_eps=T_EPS, return_stats=True, **kw)
    (x, stats), wall = timed(fn, repeats)
    return x, stats.nfe, wall


def frontier_problems():
    rng = np.random.default_rng(0)
    out = problems()
    out["64d"] = GaussianMixture(rng.uniform(0.5, 1.5, 8), 2.0 * rng.standard_normal((8, 64)),
                                 rng.uniform(0.4, 0.7, 8))
    return out


def frontier_rows(sde, score, prob, keys, problem_data, nfes, args, names=tuple(FRONTIER),
                  tag="", steps_of=lambda nfe, per: (nfe - 1) // per):
    """The runs `names` (only `args.methods` if given) at each NFE on one problem: `steps_of(nfe,
    evaluations per step)` steps on the method's default grid (Karras for the VP SDE) to t_eps,
    then one evaluation of D (σ -> 0); `problem_data` is (anything, x_T, reference end point,
    D(reference), true samples), examples flattened to vectors."""
    _, x_T, ref, target, true = problem_data
    den = jax.jit(jax.vmap(denoiser(sde, score), (0, None)))
    rows = []
    for nfe in nfes:
        for name in names:
            if args.methods and name not in args.methods:
                continue
            steps = steps_of(nfe, FRONTIER[name][2])
            if steps < 1:
                continue
            x_end, nfe_run, wall = frontier_run(sde, score, keys, x_T, name, steps, args.repeats)
            x = den(x_end, T_EPS)
            row = dict(problem=prob, method=name, nfe=nfe_run + 1, wall_s=wall,
                       err=rms(x, target), err_end=rms(x_end, ref),
                       sw_true=float(sliced_wasserstein(keys[3], x, true)))
            rows.append(row)
            print(f"{tag}{prob:>4} {name:<10} NFE {row['nfe']:>3}  err {row['err']:.3e}  "
                  f"sw_true {row['sw_true']:.4f}  wall {wall:.4f}", flush=True)
    return rows


def frontier(args):
    """Error vs NFE: each run ends like the diffusers schedulers, steps on the Karras grid to
    t_eps then one evaluation of D (σ -> 0), and is compared with D(reference end point):
    `err` the per-sample RMS distance, `sw_true` the sliced W to true samples."""
    sde = sdegen.VPSDE()
    keys = jax.random.split(jax.random.key(0), 4)
    n = args.n or 1000
    nfes = tuple(args.nfes or FRONTIER_NFES)
    if args.flow_only:
        flow = frontier_flow(args, keys, nfes, n)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "samplers_frontier_flow.json").write_text(json.dumps(
            dict(benchmark="samplers_frontier_flow", n=n, nfes=nfes, dtype="float32",
                 t_eps=T_EPS, jax=jax.__version__, diffrax=diffrax.__version__,
                 cpu_count=os.cpu_count(),
                 date=datetime.datetime.now().isoformat(timespec="seconds"), **flow),
            indent=2) + "\n")
        frontier_plot(flow["rows"], [], args.out / "samplers_frontier_flow.png",
                      peers_fm=flow["peers"], title="rectified flow (LinearPath), uniform grid")
        print(f"wrote {args.out / 'samplers_frontier_flow.json'} and samplers_frontier_flow.png")
        return
    rows, data = [], {}
    for prob, mixture in frontier_problems().items():
        if args.problems and prob not in args.problems:
            continue
        score = mixture.score(sde)
        den = jax.jit(jax.vmap(denoiser(sde, score), (0, None)))
        x_T = sde.prior_sample(keys[0], (n, mixture.dim))
        true = mixture.sample(keys[2], n)
        ref = sdegen.sample(sde, score, key=keys[1], x_T=x_T, method="ode", solver="dopri8",
                            rtol=1e-7, atol=1e-7)
        target = den(ref, T_EPS)
        data[prob] = (mixture, x_T, ref, target, true)
        rows += frontier_rows(sde, score, prob, keys, data[prob], nfes, args)
    kinds = tuple(k for k in PEER_KINDS if not args.methods or PARITY[k] in args.methods)
    peer_rows = [] if args.no_peers else frontier_peers(sde, data, nfes, args.repeats, keys,
                                                        kinds)
    parity = frontier_parity(sde, data, rows, peer_rows, keys, args.repeats)
    summary = frontier_summary(rows, peer_rows, nfes)
    args.out.mkdir(parents=True, exist_ok=True)
    result = dict(benchmark="samplers_frontier", n=n, nfes=nfes, dtype="float32", t_eps=T_EPS,
                  grid="karras rho=7", rows=rows, peers=peer_rows, summary=summary, parity=parity,
                  jax=jax.__version__, diffrax=diffrax.__version__, cpu_count=os.cpu_count(),
                  platform=f"{jax.default_backend()}; {platform.platform()}",
                  date=datetime.datetime.now().isoformat(timespec="seconds"))
    result["flow"] = frontier_flow(args, keys, nfes, n)
    (args.out / "samplers_frontier.json").write_text(json.dumps(result, indent=2) + "\n")
    frontier_plot(rows, peer_rows, args.out / "samplers_frontier.png")
    flow = result["flow"]
    frontier_plot(flow["rows"], [], args.out / "samplers_frontier_flow.png",
                  peers_fm=flow["peers"], title="rectified flow (LinearPath), uniform grid")
    print(f"wrote {args.out / 'samplers_frontier.json'}, samplers_frontier.png and "
          "samplers_frontier_flow.png")


FLOW_FRONTIER = tuple(k for k in FRONTIER if not k.endswith("_d"))
"""The FRONTIER runs on the rectified-flow path (the "_d" variants are diffusers' VP
conventions)."""


def frontier_flow(args, keys, nfes, n):
    """The same mixtures on the rectified-flow path x_t = (1 - t) x0 + t ε with their exact
    velocity (`GaussianMixture.velocity`): every FLOW_FRONTIER method on its default grid there
    (uniform in t; the first step from the pure-noise prior is `FromPureNoise`'s, so 2-evaluation
    methods cost 2 steps - 1), ending like the VP runs with one evaluation of D (t -> 0), and
    diffusers' FlowMatchEulerDiscreteScheduler on the same grid (σ = t, with its own last step
    to σ = 0, which is that D), whose counterpart is ddim (DDIM is Euler on this path)."""
    path = sdegen.LinearPath()
    rows, data = [], {}
    for prob, mixture in frontier_problems().items():
        if args.problems and prob not in args.problems:
            continue
        velocity = mixture.velocity(path)
        den = jax.jit(jax.vmap(denoiser(path, velocity), (0, None)))
        x_T = path.prior_sample(keys[0], (n, mixture.dim))
        true = mixture.sample(keys[2], n)
        ref = sdegen.sample(path, velocity, key=keys[1], x_T=x_T, method="ode", solver="dopri8",
                            rtol=1e-7, atol=1e-7, t_eps=T_EPS)
        target = den(ref, T_EPS)
        data[prob] = (mixture, x_T, ref, target, true)
        rows += frontier_rows(path, velocity, prob, keys, data[prob], nfes, args,
                              names=FLOW_FRONTIER, tag="flow ",
                              steps_of=lambda nfe, per: nfe // 2 if per == 2 else nfe - 1)
    peers = [] if args.no_peers or (args.methods and "ddim" not in args.methods) else \
        flow_peers(data, nfes, args.repeats, keys)
    parity = []
    if peers:
        print(f"\n{'flow':<8}{'peer':<16}{'NFE':>4}{'peer err':>10}{'ddim err':>10}{'ratio':>7}"
              f"{'wall ratio':>11}")
    for p in peers:
        ours = next(r for r in rows if r["problem"] == p["problem"] and r["method"] == "ddim"
                    and r["nfe"] == p["nfe"])
        parity.append(dict(problem=p["problem"], peer=p["peer"], sdegen="ddim", nfe=p["nfe"],
                           peer_err=p["err"], sdegen_err=ours["err"],
                           ratio=ours["err"] / p["err"], wall_ratio=ours["wall_s"] / p["wall_s"]))
        q = parity[-1]
        print(f"{q['problem']:<8}{q['peer']:<16}{q['nfe']:>4}{q['peer_err']:>10.3e}"
              f"{q['sdegen_err']:>10.3e}{q['ratio']:>7.3f}{q['wall_ratio']:>11.3f}", flush=True)
    summary = frontier_summary(rows, peers, nfes)
    return dict(process="LinearPath(sigma_min=0)", grid="uniform", rows=rows, peers=peers,
                parity=parity, summary=summary)


def flow_peers(data, nfes, repeats, keys):
    """FlowMatchEulerDiscreteScheduler on the uniform grid of the NFE - 1 step ddim run."""
    python = Path(os.environ.get("PEER_PYTHON", PEER_PYTHON))
    if not python.exists():
        print(f"flow peers skipped: {python} missing")
        return []
    runs = [dict(name=f"{prob} flow_euler {nfe}", peer="flow_euler", kind="flow_euler",
                 nfe=nfe, problem=prob,
                 sigmas=[float(v) for v in np.linspace(1.0, T_EPS, nfe)])
            for prob in data for nfe in nfes if nfe >= 2]
    spec = dict(beta_min=0.1, beta_max=20.0, t_eps=T_EPS, repeats=repeats, runs=runs)
    arrays = mixture_arrays(data)
    meta, peers = run_peer_script(python, PEER_SCRIPT, spec, arrays)
    rows = []
    for r in runs:
        _mixture, _x_T, _ref, target, true = data[r["problem"]]
        x = peers[r["name"]]
        rows.append(dict(problem=r["problem"], peer="flow_euler", nfe=meta[r["name"]]["nfe"],
                         wall_s=meta[r["name"]]["wall_s"], err=rms(x, target),
                         sw_true=float(sliced_wasserstein(keys[3], x, true))))
    return rows


def frontier_peers(sde, data, nfes, repeats, keys, kinds=PEER_KINDS):
    python = Path(os.environ.get("PEER_PYTHON", PEER_PYTHON))
    if not python.exists():
        print(f"peers skipped: {python} missing (PEER_PYTHON=/work/peer-venv/bin/python)")
        return []
    runs = [dict(name=f"{prob} {kind} {nfe + (kind == 'heun')}", peer="diffusers", kind=kind,
                 nfe=nfe + (kind == "heun"), problem=prob)
            for prob in data for nfe in nfes for kind in kinds]
    spec = dict(beta_min=sde.beta_min, beta_max=sde.beta_max, t_eps=T_EPS, repeats=repeats,
                runs=runs)
    arrays = mixture_arrays(data)
    meta, peers = run_peer_script(python, PEER_SCRIPT, spec, arrays)
    rows = []
    for r in runs:
        _mixture, _x_T, ref, target, true = data[r["problem"]]
        x = peers[r["name"]]
        goal = ref if r["kind"] in PEER_ENDS_AT_SIGMA_MIN else target
        rows.append(dict(problem=r["problem"], peer=r["kind"], nfe=meta[r["name"]]["nfe"],
                         wall_s=meta[r["name"]]["wall_s"], err=rms(x, goal),
                         sw_true=float(sliced_wasserstein(keys[3], x, true))))
    return rows


def frontier_parity(sde, data, rows, peer_rows, keys, repeats):
    """Each peer scheduler against its sdegen counterpart (`PARITY`) at the peer's counted NFE
    on the same grid: the ratio of RMS errors (sliced W to truth for the stochastic 2M SDE,
    whose noise differs) and of wall times. Heun's counterpart runs here, at the peer's odd
    NFE; the others are rows of the frontier at the same NFE."""
    out = []
    print(f"\n{'problem':<8}{'peer':<11}{'NFE':>4}  {'sdegen':<12}{'NFE':>4}{'peer err':>10}"
          f"{'sdegen err':>11}{'ratio':>7}{'wall ratio':>11}")
    for p in peer_rows:
        name = PARITY[p["peer"]]
        mixture, x_T, ref, target, true = data[p["problem"]]
        ours = next((r for r in rows if r["problem"] == p["problem"] and r["method"] == name
                     and r["nfe"] == p["nfe"]), None)
        if ours is None:
            score = mixture.score(sde)
            steps = (p["nfe"] - 1) // FRONTIER[name][2]
            x_end, nfe_run, wall = frontier_run(sde, score, keys, x_T, name, steps, repeats)
            x = jax.vmap(denoiser(sde, score), (0, None))(x_end, T_EPS)
            ours = dict(nfe=nfe_run + 1, wall_s=wall, err=rms(x, target),
                        err_end=rms(x_end, ref),
                        sw_true=float(sliced_wasserstein(keys[3], x, true)))
        key = ("sw_true" if name in STOCHASTIC else
               "err_end" if p["peer"] in PEER_ENDS_AT_SIGMA_MIN else "err")
        peer_key = "sw_true" if key == "sw_true" else "err"
        row = dict(problem=p["problem"], peer=p["peer"], sdegen=name, nfe=p["nfe"],
                   sdegen_nfe=ours["nfe"], metric=key, peer_value=p[peer_key],
                   sdegen_value=ours[key], ratio=ours[key] / p[peer_key],
                   wall_ratio=ours["wall_s"] / p["wall_s"])
        out.append(row)
        print(f"{row['problem']:<8}{row['peer']:<11}{row['nfe']:>4}  {name:<12}"
              f"{row['sdegen_nfe']:>4}{row['peer_value']:>10.3e}{row['sdegen_value']:>11.3e}"
              f"{row['ratio']:>7.3f}{row['wall_ratio']:>11.3f}", flush=True)
    return out


def frontier_summary(rows, peer_rows, nfes):
    """Per problem and NFE: the best sdegen method and the best peer by RMS error (stochastic
    methods excluded: their distance to the ODE reference is not an error), and their ratio."""
    out = []
    print(f"\n{'problem':<8}{'NFE':>4}  {'best sdegen':<22}{'best peer':<22}{'ratio':>7}")
    for prob in sorted({r["problem"] for r in rows}):
        for nfe in nfes:
            ours = [r for r in rows if r["problem"] == prob and r["nfe"] == nfe
                    and r["method"] not in STOCHASTIC]
            theirs = [r for r in peer_rows if r["problem"] == prob and r["nfe"] == nfe
                      and "sde" not in r["peer"]]
            if not ours:
                continue
            a = min(ours, key=lambda r: r["err"])
            b = min(theirs, key=lambda r: r["err"]) if theirs else None
            ratio = a["err"] / b["err"] if b else None
            out.append(dict(problem=prob, nfe=nfe, sdegen=a["method"], sdegen_err=a["err"],
                            peer=b and b["peer"], peer_err=b and b["err"], ratio=ratio))
            peer = f"{b['peer']} {b['err']:.2e}" if b else "-"
            print(f"{prob:<8}{nfe:>4}  {a['method'] + ' ' + format(a['err'], '.2e'):<22}"
                  f"{peer:<22}{fmt(ratio, '.3f'):>7}")
    return out


def frontier_plot(rows, peer_rows, path, peers_fm=(), title=None):
    """Error (top; deterministic methods and peers only) and sliced W to truth (bottom) vs NFE,
    one column per problem; each peer dashed in the colour of its sdegen counterpart
    (`peers_fm`: FlowMatchEuler rows, whose counterpart is ddim)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    probs = sorted({r["problem"] for r in rows},
                   key=lambda p: int(p.rstrip("d")) if p.rstrip("d").isdigit() else 0)
    colors = dict(zip(FRONTIER, plt.get_cmap("tab20").colors, strict=False))
    fig, axes = plt.subplots(2, len(probs), figsize=(5 * len(probs) + 2.5, 8), squeeze=False)
    for j, prob in enumerate(probs):
        for i, key in enumerate(("err", "sw_true")):
            ax = axes[i, j]
            for name in FRONTIER:
                if key == "err" and name in STOCHASTIC:
                    continue  # the distance to the ODE reference is not an error
                pts = sorted((r["nfe"], r[key]) for r in rows
                             if r["problem"] == prob and r["method"] == name)
                if pts:
                    ax.plot(*zip(*pts, strict=True), "o-", color=colors[name], label=name,
                            ms=3, lw=1)
            for kind in PEER_KINDS:
                if key == "err" and "sde" in kind:
                    continue
                pts = sorted((r["nfe"], r[key]) for r in peer_rows
                             if r["problem"] == prob and r["peer"] == kind)
                if pts:
                    ax.plot(*zip(*pts, strict=True), "x--", color=colors[PARITY[kind]],
                            label=f"diffusers {kind}", ms=6, lw=1.5, alpha=0.8)
            pts = sorted((r["nfe"], r[key]) for r in peers_fm if r["problem"] == prob)
            if pts:
                ax.plot(*zip(*pts, strict=True), "x--", color=colors["ddim"],
                        label="diffusers FlowMatchEuler", ms=6, lw=1.5, alpha=0.8)
            head = f"{title}\n" if title and i == 0 else ""
            ax.set(xscale="log", yscale="log", xlabel="NFE", title=f"{head}{prob}: {key}",
                   ylabel="RMS error to D(reference)" if key == "err" else "sliced W to truth")
            ax.set_xticks(FRONTIER_NFES, [str(v) for v in FRONTIER_NFES])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.grid(True, which="both", alpha=0.2)
    handles, labels = {}, {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels.setdefault(lab, lab)
    fig.legend(list(handles.values()), list(labels), loc="center right", fontsize=8,
               title="sdegen (o-) / diffusers (x--)", title_fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 2.3 / (5 * len(probs) + 2.5), 1))
    fig.savefig(path, dpi=110)

if __name__ == "__main__":
    main()
