"""`sdegen evaluate RUN` on images: test bits/dim of the PF-ODE likelihood on dequantised test
images (`sdegen.bpd`, the exact or the Hutchinson trace), a grid of model samples, and the
worst-scored test images beside typical ones (`nll_extremes.png`, `nll_extremes_figure`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .. import plot
from ..bpd import bits_per_dim
from ..errors import ConfigError
from .nll import OUTLIER_RULE, outlier_threshold

EXACT_TRACE_MAX_DIM = 64
"""With eval.trace=auto, images with at most this many entries (8×8 digits) get the exact
divergence; larger ones the Hutchinson estimator (an unbiased estimate of the log-density, one
Rademacher probe per image)."""
GRID_N = 64
EXTREMES_N = 8
"""Images per row of `nll_extremes.png`: the worst-scored test images, then typical ones."""


def _trace(run) -> str:
    trace, dim = run.cfg.eval.trace, math.prod(run.data.shape)
    if trace == "auto":
        return "exact" if dim <= EXACT_TRACE_MAX_DIM else "hutchinson"
    return trace


def log_prob(run, test):
    """log p of dequantised test images (`run`: a `runs.core.Run`) with the `eval.trace`
    divergence (one Hutchinson probe per image from the run's eval key). A class-conditional
    run is scored by its unconditional model (the null class it learnt by label dropout)."""
    cfg = run.cfg
    if cfg.objective.kind == "classifier":
        raise ConfigError(f"'{run.dir}' is a noise-conditioned classifier (objective.kind="
                          "classifier), not a generative model: evaluate the run it guides")
    if not getattr(run.data, "levels", 0):
        raise ConfigError(f"bits/dim needs dequantised images; the run has data.binarize=true "
                          f"({cfg.data.name}), whose likelihood is not a density on [0, 1)^D")
    trace = _trace(run)
    print(f"test bits/dim of {test.shape[0]} {cfg.data.name} images ({trace} trace) ...")
    return run.log_prob(test, trace=trace, key=run.keys["eval"])


def nll_extremes_figure(test, lp, path: str | Path, *, title: str = "",
                        n: int = EXTREMES_N) -> Path:
    """The `n` test images of highest NLL (top row, worst first) beside the `n` others whose
    NLL is closest to the median (bottom row), each titled with its NLL in nats; the suptitle
    gives the outlier threshold of `runs.nll` and how many images exceed it. `test`:
    (m, H, W, C) images in [0, 1], `lp`: their log-likelihoods (nats)."""
    x = np.clip(np.asarray(test, dtype=np.float32), 0.0, 1.0)
    nll = -np.asarray(lp, dtype=np.float64)
    n = min(n, x.shape[0])
    worst = np.argsort(-nll, kind="stable")[:n]
    rest = np.setdiff1d(np.arange(nll.size), worst) if nll.size > n else np.arange(nll.size)
    typical = rest[np.argsort(np.abs(nll[rest] - np.median(nll)), kind="stable")[:n]]
    threshold = outlier_threshold(nll)
    fig = Figure(figsize=(1.1 * n, 2.9), layout="constrained")
    for r, (label, idx) in enumerate((("worst", worst), ("typical", typical))):
        for j, i in enumerate(idx):
            ax = fig.add_subplot(2, n, r * n + j + 1)
            img = x[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                      cmap="gray_r" if img.shape[-1] == 1 else None, vmin=0.0, vmax=1.0,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"#{i}: {nll[i]:.1f}", fontsize=7,
                         color="C3" if nll[i] > threshold else "k")
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{title}\ntest NLL (nats): median {np.median(nll):.2f}; "
                 f"{int((nll > threshold).sum())}/{nll.size} above {threshold:.1f} "
                 f"({OUTLIER_RULE})", fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def report(run, test, lp, nll: dict, grid: int):
    """`(metrics, line, figure)` of an image run: test bits/dim under uniform dequantisation
    (`bpd.bits_per_dim`) and a grid of `GRID_N` samples, samples_grid.png."""
    cfg, data = run.cfg, run.data
    dim, trace = math.prod(data.shape), _trace(run)
    bpd = np.asarray(bits_per_dim(lp, dim, data.levels))
    mean, se = float(bpd.mean()), float(bpd.std() / math.sqrt(test.shape[0]))
    x, stats = run.draw(GRID_N, run.keys["eval"])
    png = plot.image_grid(np.asarray(x), run.dir / "samples_grid.png",
                          title=f"{cfg.name}: {GRID_N} samples ({cfg.sample.method}, NFE "
                                f"{stats.nfe}); test {mean:.3f} bits/dim")
    extremes = nll_extremes_figure(test, lp, run.dir / "nll_extremes.png", title=cfg.name)
    metrics = {
        "test_bpd": mean,
        "test_bpd_median": float(np.median(bpd)),
        "test_bpd_stderr": se,
        "levels": data.levels,
        "dims": dim,
        "trace": trace,
        "bpd_convention": "x = (k + u) / levels; bpd = (-log p(x) + D log levels) / (D log 2)",
        "sample_method": cfg.sample.method,
        "sample_nfe": stats.nfe,
        "nll_extremes_figure": str(extremes),
    }
    if cfg.data.conditional:
        metrics["conditioning"] = ("none: the null class of label dropout, the run's "
                                   "unconditional model log p(x)")
    line = (f"test {mean:.4f} ± {se:.4f} bits/dim (median {float(np.median(bpd)):.4f}; "
            f"{nll['test_nll_outliers']}/{test.shape[0]} images above the outlier threshold "
            f"{nll['test_nll_outlier_threshold']:.1f} nats, {extremes.name}; {data.levels} "
            f"levels, {trace} trace, {nll['likelihood_wall_s']:.1f} s)")
    return metrics, line, png
