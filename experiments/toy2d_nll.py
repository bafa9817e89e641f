"""Test NLL of VP / sub-VP / VE score models, a CNF, flow matching and OT-CFM on toy 2D data,
beside the ideal NLL.

Reproduces, on FFJORD's toy densities (Grathwohl et al. 2019, Fig. 2 and their toy NLLs), the
exact-likelihood evaluation of score-based models through the probability-flow ODE of Song et
al. 2021, "Score-Based Generative Modeling through Stochastic Differential Equations" (ICLR
2021, Sec. 4.3 and Table 2: VP, sub-VP and VE SDEs compared by NLL), at toy scale.

For each dataset (8gaussians, checkerboard) and each SDE (VP β ∈ [0.1, 20], sub-VP β ∈
[0.1, 20], VE σ ∈ [0.01, 10]) a noise-predicting MLP score model (Ho et al. 2020's ε
parameterisation) is trained with denoising score matching (`sdegen.train.train`), then
`sdegen.runs.evaluate_run` measures the test NLL in nats with the exact PF-ODE likelihood
(t_eps = 1e-5), the sliced Wasserstein distance of PF-ODE samples to held-out data, and writes
`density.png` into each run directory. Which published recipe each row follows:

- VP, sub-VP, VE "(σ² weighting)": Song et al. 2021 (ICLR), λ(t) = σ(t)², t ~ U[1e-5, 1] — their
  sample-quality recipe (`{vp,subvp,ve}_{dataset}.yaml`);
- VP, sub-VP "(likelihood IS)": Song, Durkan, Murray & Ermon 2021 ("Maximum Likelihood Training
  of Score-Based Diffusion Models", NeurIPS, Thm. 1 and Sec. 5): λ(t) = g(t)², which makes the
  loss a bound on the KL to the data, with t drawn by importance sampling q(t) ∝ g²/σ²
  (`objective.weighting=likelihood_is`, `{vp,subvp}_lik_{dataset}.yaml`) — the setting that
  paper reports NLL with (their Table 2 has VP and sub-VP rows; VE is not among them, so VE keeps
  only its σ² row). EDM preconditioning (Karras et al. 2022) is a sample-quality recipe; it was
  measured on the digits (issue 23, `benchmarks/digits_nll_outliers.py`) and is not used here.

The same table holds the neural-ODE flows of one API (`--models`): an FFJORD-style CNF trained
by maximum likelihood (FFJORD, Grathwohl et al. 2019; Hutchinson trace, light RNODE penalties of
Finlay et al. 2020), flow matching on the linear path (Lipman et al. 2023, the OT path their
likelihood tables use) and OT-CFM (Tong et al. 2024), all at t = 0. Every model
gets the same budget — the same number of optimiser steps and batch size — and the table
reports the training wall time that budget cost and the NFE of one adaptive ODE sample
(rtol = atol as in the setting). All are scored by the same exact `sdegen.log_prob`.

Outputs in `OUT/toy2d_nll/`:

- `metrics.json` — one record per run (NLL ± standard error, its median and the number of test
  points beyond the robust outlier threshold median + 3.5 · 1.4826 · MAD of `sdegen.runs.nll`,
  ideal, the true density's NLL on
  the same test points and the model's gap to it, uniform-on-box NLL, sliced W against the
  data-vs-data floor, NFE, wall times) and the settings used;
- `nll_table.md` — the same table as printed;
- `nll_densities.png` — the runs' `density.png` images in a grid (rows: datasets, columns:
  SDEs) beside a bar chart of test NLL against the ideal and the uniform-on-box NLL;
- `runs/{full,small}/{sde}_{dataset}/` — each run directory (config, checkpoints, eval.json,
  density.png). A run whose directory already holds a finished run of the same config is not
  trained again (`train` resumes it), so a rerun only re-evaluates.

Settings and wall time on 2 CPU cores (measured; the machine was shared, so expect less):

- full: 20 000 steps (batch 512, EMA 0.999), 2000 test points, likelihood rtol = atol = 1e-5,
  density grid 64 × 64. Training wall per row (measured 2026-11-28, cores shared with
  other jobs): SDE and FM rows 3-5 min; OT-CFM 32-47 min (an exact minibatch OT assignment
  every step, ~10 steps/s); the max-lik CNF solves its ODE in every step, 1-2.7 steps/s as
  its dynamics sharpen, 3.2 h on 8gaussians. Evaluation adds ~0.5 min per row. Without the
  CNF (`--models vp subvp ve fm ot_cfm`) the table took 1.8 h of training. Runs resume from
  their latest checkpoint (every 1000 steps), so the full table can be built in pieces.
  Measured test NLL: 8gaussians 2.87-2.91 (ideal 2.838; CNF 2.862), checkerboard 3.60-3.66
  (ideal 3.466). The likelihood-IS rows (2026-12-01, `--models vp_lik subvp_lik`, ~16 min
  on shared cores): 8gaussians VP 2.921, sub-VP 2.940; checkerboard VP 3.677, sub-VP 3.730,
  i.e. 0.02-0.07 nats *above* the σ²-weighted rows' 2.904 / 2.908 / 3.648 / 3.656: in 2-D at
  this budget the likelihood weighting does not pay;
- `--small`: the SDE rows only (both weightings), 800 steps (the EMA's warm-up in `train` keeps
  the initial weights out of it), 500 test points, rtol = atol = 1e-3, grid 24 × 24 — ≈ 2 min
  before the likelihood rows were added (measured again in issue 23's report). A smoke
  test: its NLLs are ~0.5-0.8 nats above the ideal.

    python experiments/toy2d_nll.py [--small] [--out results]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from matplotlib.figure import Figure
from matplotlib.image import imread

from sdegen.config import Config, load
from sdegen.data import IDEAL_NLL, checkerboard_log_prob, eight_gaussians
from sdegen.experiment import cli, write_metrics
from sdegen.runs import evaluate_run
from sdegen.runs.nll import OUTLIER_RULE, format_nll
from sdegen.train import data_sampler, keys, train

TRUE_LOG_PROB = {"8gaussians": eight_gaussians().log_prob, "checkerboard": checkerboard_log_prob}

NAME = "toy2d_nll"
META = {
    "paper": "Song et al. 2021, Score-Based Generative Modeling through Stochastic Differential "
             "Equations (ICLR); Grathwohl et al. 2019, FFJORD (ICLR)",
    "reproduces": "Table 2-style exact NLL of VP / sub-VP / VE via the PF-ODE (Sec. 4.3), on "
                  "FFJORD's toy data, beside a CNF, FM and OT-CFM",
    "published": None,  # the papers' NLLs are on images; the ideal NLL (analytic) is the bar
    "full_cost": "~8 h on 2 CPU cores: 3-5 min per SDE / FM row, 30-45 min per OT-CFM row, "
                 "3+ h per max-lik CNF row (20 000 steps at 1-2.7 steps/s); "
                 "`python experiments/toy2d_nll.py --models vp subvp ve fm ot_cfm` skips the "
                 "CNF (1.8 h)",
}
DATASETS = ("8gaussians", "checkerboard")
SDES = ("vp", "vp_lik", "subvp", "subvp_lik", "ve")
FLOWS = ("cnf", "fm", "ot_cfm")
MODELS = SDES + FLOWS
LABELS = {"vp": "VP (σ² weighting)", "vp_lik": "VP (likelihood IS)",
          "subvp": "sub-VP (σ² weighting)", "subvp_lik": "sub-VP (likelihood IS)",
          "ve": "VE (σ² weighting)", "cnf": "CNF (max-lik)", "fm": "FM", "ot_cfm": "OT-CFM"}
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "toy2d"
"""Each row is the shipped `configs/toy2d/{model}_{dataset}.yaml` (the CNF's is a smaller MLP with
slow time features, which keeps its max-lik ODE non-stiff: max_freq 64 made NFE explode); the
experiment only sets one training budget and its tolerances for every row."""

SETTINGS = {
    "full": {"steps": 20_000, "ema_decay": 0.999, "n_test": 2000, "tol": 1e-5, "grid": 64},
    # A short run relies on train's EMA warm-up, min(decay, (1+k)/(10+k)): without it 0.999^800
    # = 45% of the average would still be the random initial weights (measured: NLL 10.4 nats).
    "small": {"steps": 800, "ema_decay": 0.999, "n_test": 500, "tol": 1e-3, "grid": 24},
}


def make_config(process: str, dataset: str, setting: str, runs_root: Path) -> Config:
    s = SETTINGS[setting]
    overrides = {
        "seed": 0,
        "out_dir": str(runs_root / setting / f"{process}_{dataset}"),
        "train.steps": s["steps"], "train.batch_size": 512, "train.lr": 2e-3, "train.warmup": 200,
        # frequent checkpoints: a stopped full run (hours, with the CNF rows) resumes close to
        # where it stopped
        "train.ema_decay": s["ema_decay"], "train.ckpt_every": max(s["steps"] // 20, 1),
        "train.log_every": 100,
        "sample.method": "ode", "sample.rtol": s["tol"], "sample.atol": s["tol"],
        "eval.n_test": s["n_test"], "eval.rtol": s["tol"], "eval.atol": s["tol"],
        "eval.use_ema": True,
    }
    return load(CONFIGS / f"{process}_{dataset}.yaml", [f"{k}={v}" for k, v in overrides.items()])


def true_nll_on_test(cfg: Config) -> float:
    """NLL of the true density on the very test points `evaluate_run` scores (same key and
    size), so the model's gap to it is free of the test set's sampling noise."""
    test = data_sampler(cfg)(keys(cfg)["test"], cfg.eval.n_test)
    return float(-jnp.mean(jax.vmap(TRUE_LOG_PROB[cfg.data.name])(test)))


def _last_logged_step(run_dir: Path) -> int:
    log = run_dir / "metrics.jsonl"
    if not log.is_file():
        return 0
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    return json.loads(lines[-1]).get("step", 0) if lines else 0


def _training_wall(run_dir: Path) -> float:
    """Training wall seconds of a run over all its calls. `wall_s` in `metrics.jsonl` restarts
    at 0 in each call, and a resume drops the records past its checkpoint, so the total is the
    sum of the last `wall_s` before each drop (steps redone after a kill are not counted)."""
    log = run_dir / "metrics.jsonl"
    walls = [json.loads(ln).get("wall_s") for ln in log.read_text().splitlines() if ln.strip()]
    walls = [w for w in walls if w is not None]
    ends = [a for a, b in zip(walls, walls[1:], strict=False) if b < a]
    return round(sum(ends) + (walls[-1] if walls else 0.0), 1)


def format_table(records: list[dict]) -> str:
    head = ("| dataset | model | test NLL (nats) | median | outliers | ideal | true NLL on test | "
            "gap | uniform box | sliced W (data floor) | sample NFE | train s | eval s |")
    rule = "|" + "|".join("---" for _ in range(head.count("|") - 1)) + "|"
    rows = [head, rule]
    for r in records:
        ideal = r["ideal_nll_nats"]
        rows.append(
            f"| {r['dataset']} | {LABELS[r['model']]} | "
            f"{r['test_nll_nats']:.3f} ± {r['test_nll_stderr']:.3f} | "
            f"{r['test_nll_median']:.3f} | "
            f"{r['test_nll_outliers']}/{r['n_test']} > {r['test_nll_outlier_threshold']:.2f} | "
            f"{ideal:.3f} | "
            f"{r['true_nll_on_test_nats']:.3f} | {r['gap_to_true_on_test_nats']:+.3f} | "
            f"{r['uniform_box_nll_nats']:.3f} | "
            f"{r['sliced_w_model_vs_test']:.3f} ({r['sliced_w_data_vs_test']:.3f}) | "
            f"{r['sample_nfe']} | {r['train_wall_s']:.0f} | {r['eval_wall_s']:.0f} |"
        )
    return "\n".join(rows)


def _figure(records: list[dict], path: Path, datasets, models) -> Path:
    """Density images of every run (rows: datasets, columns: models) and a bar chart of NLL."""
    DATASETS, PROCESSES = datasets, models  # noqa: N806
    fig = Figure(figsize=(5.0 * len(PROCESSES) + 4.0, 2.0 * len(DATASETS) + 0.6),
                 layout="constrained")
    grid = fig.add_gridspec(len(DATASETS), len(PROCESSES) + 1,
                            width_ratios=[5.0] * len(PROCESSES) + [4.0])
    by_key = {(r["dataset"], r["model"]): r for r in records}
    for i, ds in enumerate(DATASETS):
        for j, proc in enumerate(PROCESSES):
            ax = fig.add_subplot(grid[i, j])
            r = by_key[(ds, proc)]
            ax.imshow(imread(Path(r["run_dir"]) / "density.png"))
            ax.set_axis_off()
            ax.set_title(f"{LABELS[proc]} on {ds}: NLL {r['test_nll_nats']:.3f} "
                         f"(ideal {r['ideal_nll_nats']:.3f})", fontsize=8)
        ax = fig.add_subplot(grid[i, -1])
        nll = [by_key[(ds, p)]["test_nll_nats"] for p in PROCESSES]
        err = [by_key[(ds, p)]["test_nll_stderr"] for p in PROCESSES]
        ax.bar([LABELS[p] for p in PROCESSES], nll, yerr=err,
               color=[f"C{MODELS.index(p)}" for p in PROCESSES])
        ax.tick_params(axis="x", labelsize=6, rotation=30)
        ax.axhline(IDEAL_NLL[ds], color="k", ls="--", lw=1, label="ideal")
        ax.axhline(by_key[(ds, PROCESSES[0])]["uniform_box_nll_nats"], color="gray", ls=":",
                   lw=1, label="uniform on box")
        lo = min(IDEAL_NLL[ds], *nll) - 0.3
        hi = max(by_key[(ds, PROCESSES[0])]["uniform_box_nll_nats"], *nll) + 0.3
        ax.set_ylim(lo, hi)
        ax.set_ylabel("test NLL (nats)")
        ax.set_title(ds, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path


def main(small: bool = False, out: str | Path = "results", models=None,
         datasets=DATASETS) -> dict:
    """Train and evaluate every (dataset, model) pair; write the table, figure and metrics.
    `models` defaults to all of them, or to the SDEs with `small` (the flows' --small runs
    are covered by ffjord_toy_densities, ot_cfm_straightness and anomaly_auroc)."""
    models = models or (SDES if small else MODELS)
    setting = "small" if small else "full"
    s = SETTINGS[setting]
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty()
    t_start = time.perf_counter()
    records = []
    for ds in datasets:
        for proc in models:
            cfg = make_config(proc, ds, setting, out_dir / "runs")
            start_step = _last_logged_step(cfg.run_dir)
            t0 = time.perf_counter()
            run_dir = train(cfg, progress=progress)
            t1 = time.perf_counter()
            result = evaluate_run(run_dir, grid=s["grid"])
            t2 = time.perf_counter()
            true_nll = true_nll_on_test(cfg)
            records.append({
                **result,
                "model": proc,
                "true_nll_on_test_nats": true_nll,
                "gap_to_true_on_test_nats": result["test_nll_nats"] - true_nll,
                "run_dir": str(run_dir),
                "trained_from_step": start_step,
                "train_steps": cfg.train.steps,
                "train_wall_s": round(t1 - t0, 1),
                "train_wall_s_all_calls": _training_wall(run_dir),
                "eval_wall_s": round(t2 - t1, 1),
            })
            print(f"[{len(records)}/{len(datasets) * len(models)}] {cfg.name}: "
                  f"train {t1 - t0:.0f} s, evaluate {t2 - t1:.0f} s, "
                  f"elapsed {t2 - t_start:.0f} s", flush=True)

    table = format_table(records)
    wall = time.perf_counter() - t_start
    (out_dir / "nll_table.md").write_text(
        f"Test NLL in nats, {setting} setting ({s['steps']} training steps, "
        f"{s['n_test']} test points); total wall {wall:.0f} s. `gap` = test NLL minus the true "
        f"density's NLL on the same test points; outliers: {OUTLIER_RULE}.\n\n{table}\n"
    )
    png = _figure(records, out_dir / "nll_densities.png", datasets, models)
    metrics = {
        "experiment": NAME,
        "reproduces": "Song et al. 2021 (ICLR) Table 2-style NLL of VP/sub-VP/VE via the "
                      "PF-ODE, on FFJORD toy 2D data (Grathwohl et al. 2019)",
        "small": small,
        "setting": {"name": setting, **s},
        "models": list(models),
        "ideal_nll_nats": {ds: IDEAL_NLL[ds] for ds in datasets},
        "runs": records,
        "wall_s": round(wall, 1),
        # a full run is hours on 2 cores and resumes from its run directories: the wall time
        # of this call alone can be minutes, so the index also states the training time of
        # every call that made these runs
        "resumed": any(r["trained_from_step"] > 0 for r in records),
        "training_wall_s_all_calls": round(sum(r["train_wall_s_all_calls"] for r in records), 1),
    }
    metrics_path = write_metrics(out_dir, metrics)
    print()
    print(table)
    print(f"\ntotal wall time {wall:.0f} s")
    print(f"figure  -> {png}")
    print(f"table   -> {out_dir / 'nll_table.md'}")
    print(f"metrics -> {metrics_path}")
    return metrics


def headline(metrics: dict) -> dict:
    """Test NLL of every run as mean ± s.e. (median; outliers/n > threshold), beside the ideal
    NLL of each dataset."""
    out = {f"ideal NLL {ds} (analytic)": v for ds, v in metrics["ideal_nll_nats"].items()}
    out["test NLL cells"] = (f"nats: mean ± s.e. (median; number of test points with "
                             f"{OUTLIER_RULE})")
    for r in metrics["runs"]:
        out[f"test NLL {r['dataset']} {LABELS[r['model']]}"] = format_nll(r, 3)
    return out


def _arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", choices=MODELS,
                        help="default: all; with --small the SDEs")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)


if __name__ == "__main__":
    cli(main, __doc__, _arguments)
