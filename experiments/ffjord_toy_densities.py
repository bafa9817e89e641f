"""Learned densities of a CNF trained by maximum likelihood on FFJORD's toy sets — Grathwohl et
al. 2019, "FFJORD: Free-form continuous dynamics for scalable reversible generative models"
(ICLR), Fig. 2 (8gaussians, checkerboard, pinwheel, two spirals), at toy scale.

Each model is `configs/toy2d/cnf_8gaussians.yaml` with the dataset swapped: a time-conditioned
MLP velocity, the augmented ODE with the Hutchinson trace in training (tsit5, rtol = atol =
1e-3, `RecursiveCheckpointAdjoint`), light RNODE kinetic/Frobenius penalties (Finlay et al.
2020), trained by `sdegen.train`; then `sdegen.runs.evaluate_run` scores held-out points with
the exact trace (t_eps = 0) and draws the density on a grid. Outputs in
`OUT/ffjord_toy_densities/`: `densities.png` (one panel per dataset), `metrics.json` (test NLL
beside the ideal where known, NFE, wall times), `runs/<dataset>/`.

`--small` (the CI setting): 8gaussians and checkerboard only, 20 training steps.

    python experiments/ffjord_toy_densities.py [--small] [--out results] [--datasets ...]
"""

from __future__ import annotations

import time
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.image import imread

from sdegen import config as C
from sdegen.experiment import cli, write_metrics
from sdegen.runs import evaluate_run
from sdegen.train import train

NAME = "ffjord_toy_densities"
META = {
    "paper": "Grathwohl et al. 2019, FFJORD: Free-form continuous dynamics for scalable "
             "reversible generative models (ICLR)",
    "reproduces": "Fig. 2: learned densities on the toy sets",
    "published": None,  # qualitative figure; the ideal NLL (analytic) is in the headline
    "full_cost": "~21 min on 2 CPU cores (measured 1282 s, 2026-11-28)",
}
REPO = Path(__file__).resolve().parents[1]
DATASETS = ("8gaussians", "checkerboard", "pinwheel", "2spirals")
SETTINGS = {"full": {"steps": 1500, "n_test": 1000, "tol": 1e-4, "grid": 48,
                     "datasets": DATASETS},
            # two datasets: each CNF's max-likelihood training compiles anew (~1 min loaded)
            "small": {"steps": 20, "n_test": 100, "tol": 1e-3, "grid": 16,
                      "datasets": DATASETS[:2]}}


def main(small: bool = False, out: str | Path = "results", datasets=None) -> dict:
    s = SETTINGS["small" if small else "full"]
    datasets = s["datasets"] if datasets is None else datasets
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for ds in datasets:
        cfg = C.load(REPO / "configs/toy2d/cnf_8gaussians.yaml", [
            f"name=cnf_{ds}", f"data.name={ds}", f"out_dir={out_dir / 'runs' / ds}",
            f"train.steps={s['steps']}", f"train.ckpt_every={s['steps']}",
            f"eval.n_test={s['n_test']}", f"eval.rtol={s['tol']}", f"eval.atol={s['tol']}",
            f"sample.rtol={s['tol']}", f"sample.atol={s['tol']}"])
        t0 = time.perf_counter()
        train(cfg, progress=False)
        t1 = time.perf_counter()
        result = evaluate_run(cfg.run_dir, grid=s["grid"])
        records.append({**result, "train_wall_s": round(t1 - t0, 1),
                        "eval_wall_s": round(time.perf_counter() - t1, 1),
                        "run_dir": str(cfg.run_dir)})
    fig = Figure(figsize=(4.0 * len(records), 3.4), layout="constrained")
    for i, r in enumerate(records):
        ax = fig.add_subplot(1, len(records), i + 1)
        ax.imshow(imread(Path(r["run_dir"]) / "density.png"))
        ax.set_axis_off()
        ideal = f" (ideal {r['ideal_nll_nats']:.3f})" if r["ideal_nll_nats"] else ""
        ax.set_title(f"{r['dataset']}: NLL {r['test_nll_nats']:.3f}{ideal}", fontsize=8)
    fig.savefig(out_dir / "densities.png", dpi=130)
    metrics = {"experiment": NAME, "small": small, "setting": s, "runs": records}
    write_metrics(out_dir, metrics)
    print("| dataset | test NLL (nats) | ideal | sample NFE | train s |")
    print("|---|---|---|---|---|")
    for r in records:
        ideal = f"{r['ideal_nll_nats']:.3f}" if r["ideal_nll_nats"] else "-"
        print(f"| {r['dataset']} | {r['test_nll_nats']:.3f} ± {r['test_nll_stderr']:.3f} | "
              f"{ideal} | {r['sample_nfe']} | {r['train_wall_s']:.0f} |")
    print(f"-> {out_dir}")
    return metrics


def headline(metrics: dict) -> dict:
    """Test NLL per dataset, beside the ideal where it is known."""
    out = {}
    for r in metrics["runs"]:
        out[f"test NLL {r['dataset']} (nats)"] = r["test_nll_nats"]
        if r["ideal_nll_nats"]:
            out[f"ideal NLL {r['dataset']} (analytic)"] = r["ideal_nll_nats"]
    return out


if __name__ == "__main__":
    cli(main, __doc__, lambda p: p.add_argument("--datasets", nargs="+", choices=DATASETS))
