"""Digits anomaly detection: a score model trained on digits 0–8 flags held-out 9s by −log p.

An unconditional VP-SDE score model (the MLP of `configs/images/digits_cond_mlp.yaml` with
`objective.label_dropout=1`, i.e. always the null label, so it is a plain unconditional model)
is trained on the digits training split without any 9 (`data.holdout=9`). Each dequantised test
digit is scored by its exact PF-ODE negative log-likelihood (`sdegen.anomaly_score`, exact
trace; Song et al. 2021, Sec. 4.3 / App. D.2), and the AUROC of "9 scores higher than 0–8"
(`sdegen.metrics.auroc`) is reported with the ROC curve and the mean NLL per class — the
likelihood-based novelty detection whose pitfalls Nalisnick et al. 2019 ("Do deep generative
models know what they don't know?") documented: a class with fewer ink pixels can be *more*
likely than the training classes, so the per-class NLLs are part of the result.

Outputs in `OUT/digits_anomaly/`: `metrics.json`, `roc.png`, `run/`.

    python experiments/digits_anomaly.py [--small] [--out results]
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import sdegen
from sdegen import config as C
from sdegen.bpd import bits_per_dim
from sdegen.data.digits import DIGITS_LEVELS
from sdegen.experiment import cli, train_from_config, write_metrics
from sdegen.metrics import auroc, roc_curve

NAME = "digits_anomaly"
META = {
    "paper": "Nalisnick et al. 2019, Do Deep Generative Models Know What They Don't Know?; "
             "Song et al. 2021, Score-Based Generative Modeling through SDEs (likelihoods)",
    "reproduces": "likelihood-based novelty detection (held-out class) with an ROC curve, on "
                  "8x8 digits",
    "published": None,
    "full_cost": "~10 min on 2 CPU cores",
}
CONFIG = "configs/images/digits_cond_mlp.yaml"
SETTINGS = {
    "full": {"steps": 6000, "width": 256, "n_test": 180, "tol": 1e-5},
    "small": {"steps": 1500, "width": 128, "n_test": 180, "tol": 1e-3},
}
HOLDOUT = 9


def main(small: bool = False, out: str | Path = "results") -> dict:
    s = SETTINGS["small" if small else "full"]
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # score(x, t): the null label, the only one trained
    cfg, process, score = train_from_config(CONFIG, out_dir / "run", s["steps"], (
        f"model.width={s['width']}", "objective.label_dropout=1.0", f"data.holdout={HOLDOUT}",
        "name=digits_anomaly"))
    x, y = C.build_data(cfg).test_set(jax.random.key(3), s["n_test"])  # dequantised test split
    nll = np.asarray(sdegen.anomaly_score(process, score, x, trace="exact", rtol=s["tol"],
                                          atol=s["tol"]))
    y = np.asarray(y)
    dim = int(np.prod(x.shape[1:]))
    bpd = np.asarray(bits_per_dim(-nll, dim, DIGITS_LEVELS))  # score-SDE offset D log(levels)
    s_out, s_in = jnp.asarray(nll[y == HOLDOUT]), jnp.asarray(nll[y != HOLDOUT])
    area = float(auroc(s_out, s_in))
    per_class = {str(c): float(nll[y == c].mean()) for c in range(10) if np.any(y == c)}
    metrics = {
        "experiment": NAME, "small": small, "setting": s, "holdout_class": HOLDOUT,
        "n_in": int(s_in.shape[0]), "n_out": int(s_out.shape[0]),
        "auroc_nll": area,
        "mean_nll_nats_in": float(s_in.mean()), "mean_nll_nats_out": float(s_out.mean()),
        "test_bpd_in": float(bpd[y != HOLDOUT].mean()),
        "mean_nll_nats_per_class": per_class,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(f"AUROC(-log p; 9 vs 0-8) = {area:.3f}; per-class NLL {per_class}", flush=True)
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_roc, ax_cls = fig.subplots(1, 2)
    fpr, tpr = roc_curve(s_out, s_in)
    ax_roc.plot(fpr, tpr, label=f"-log p: AUROC {area:.3f}")
    ax_roc.plot([0, 1], [0, 1], "k:", lw=1)
    ax_roc.set_xlabel("false-positive rate (0-8 flagged)")
    ax_roc.set_ylabel("true-positive rate (9 flagged)")
    ax_roc.legend(fontsize=8, loc="lower right")
    ax_cls.bar(list(per_class), list(per_class.values()),
               color=["C3" if c == str(HOLDOUT) else "C0" for c in per_class])
    ax_cls.set_xlabel("test class (red: held out)")
    ax_cls.set_ylabel("mean -log p (nats)")
    fig.savefig(out_dir / "roc.png", dpi=130)
    write_metrics(out_dir, metrics)
    print(f"-> {out_dir}")
    return metrics


if __name__ == "__main__":
    cli(main, __doc__)
