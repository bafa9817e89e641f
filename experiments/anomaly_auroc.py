"""Anomaly detection by likelihood: train an ODE model on 8gaussians, score held-out in- and
out-of-distribution points by `sdegen.anomaly_score` (= -log p, exact trace), report AUROC and
draw the ROC curves — the likelihood-based novelty detection of normalizing flows (e.g. the
evaluation in Nalisnick et al. 2019, "Do deep generative models know what they don't know?",
Sec. 2), on toy data where the answer is known.

Model: flow matching (Lipman et al. 2023) on the linear path (`configs/toy2d/fm_8gaussians.yaml`
settings, trained by `sdegen.train`). In-distribution: fresh 8gaussians points. Shifted sets:
(a) 8gaussians rotated by 22.5° (modes between the training modes), (b) 8gaussians translated
by (1, 0), (c) 8gaussians with twice the component std. AUROC (`sdegen.metrics.auroc`, the
Mann–Whitney statistic) is reported beside the oracle AUROC of the true density's -log p on the
same points — the best any density-based score can do.

Outputs in `OUT/anomaly_auroc/`: `metrics.json`, `roc.png`, `run/` (the trained model).

    python experiments/anomaly_auroc.py [--small] [--out results]
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import sdegen
from sdegen.data import GaussianMixture, eight_gaussians
from sdegen.experiment import cli, train_from_config, write_metrics
from sdegen.metrics import auroc, roc_curve

NAME = "anomaly_auroc"
META = {
    "paper": "Nalisnick et al. 2019, Do deep generative models know what they don't know?",
    "reproduces": "Sec. 2: likelihood-based novelty detection (AUROC of -log p), on toy data",
    "published": None,  # the paper's numbers are on images; here the oracle AUROC is the bar
    "full_cost": "~6 min on 2 CPU cores",
}
SETTINGS = {"full": {"steps": 3000, "n": 1000, "tol": 1e-5, "width": 128},
            "small": {"steps": 200, "n": 200, "tol": 1e-3, "width": 32}}


def shifted_sets() -> dict[str, GaussianMixture]:
    base = eight_gaussians()
    a = math.pi / 8
    rot = jnp.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return {
        "rotated 22.5°": GaussianMixture(base.weights, base.means @ rot.T, base.stds),
        "translated (1, 0)": GaussianMixture(base.weights, base.means + jnp.array([1.0, 0.0]),
                                             base.stds),
        "std × 2": GaussianMixture(base.weights, base.means, 2 * base.stds),
    }


def main(small: bool = False, out: str | Path = "results") -> dict:
    s = SETTINGS["small" if small else "full"]
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    _, process, field = train_from_config("configs/toy2d/fm_8gaussians.yaml", out_dir / "run",
                                          s["steps"], (f"model.width={s['width']}",))
    kw = dict(t_eps=0.0, rtol=s["tol"], atol=s["tol"])
    inlier = eight_gaussians().sample(jax.random.key(100), s["n"])
    true_score = jax.vmap(lambda x: -eight_gaussians().log_prob(x))
    s_in = sdegen.anomaly_score(process, field, inlier, **kw)
    results = {}
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_roc = fig.add_subplot(1, 2, 1)
    ax_pts = fig.add_subplot(1, 2, 2)
    ax_pts.scatter(*np.asarray(inlier).T, s=2, c="k", label="in-distribution")
    for i, (name, mix) in enumerate(shifted_sets().items()):
        outlier = mix.sample(jax.random.key(200 + i), s["n"])
        s_out = sdegen.anomaly_score(process, field, outlier, **kw)
        results[name] = {
            "auroc_model": float(auroc(s_out, s_in)),
            "auroc_true_density": float(auroc(true_score(outlier), true_score(inlier))),
            "mean_score_in": float(jnp.mean(s_in)), "mean_score_out": float(jnp.mean(s_out)),
        }
        fpr, tpr = roc_curve(s_out, s_in)
        ax_roc.plot(fpr, tpr, color=f"C{i}",
                    label=f"{name}: AUROC {results[name]['auroc_model']:.3f} "
                          f"(oracle {results[name]['auroc_true_density']:.3f})")
        ax_pts.scatter(*np.asarray(outlier).T, s=2, color=f"C{i}", alpha=0.5, label=name)
        print(name, results[name], flush=True)
    ax_roc.plot([0, 1], [0, 1], "k:", lw=1)
    ax_roc.set_xlabel("false-positive rate")
    ax_roc.set_ylabel("true-positive rate")
    ax_roc.set_title("ROC of -log p (flow matching, exact likelihood)", fontsize=9)
    ax_roc.legend(fontsize=7, loc="lower right")
    ax_pts.set_aspect("equal")
    ax_pts.legend(fontsize=7, markerscale=4)
    fig.savefig(out_dir / "roc.png", dpi=130)
    metrics = {"experiment": NAME, "small": small, "setting": s, "n_in": s["n"],
               "results": results}
    write_metrics(out_dir, metrics)
    print(f"-> {out_dir}")
    return metrics


def headline(metrics: dict) -> dict:
    """AUROC of the model and of the true density per shifted set."""
    out = {}
    for name, r in metrics["results"].items():
        out[f"AUROC {name}"] = r["auroc_model"]
        out[f"AUROC {name}, true density (oracle)"] = r["auroc_true_density"]
    return out


if __name__ == "__main__":
    cli(main, __doc__)
