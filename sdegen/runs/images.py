"""`sdegen evaluate RUN` on images: test bits/dim of the PF-ODE likelihood on dequantised test
images (`sdegen.bpd`, the exact or the Hutchinson trace) and a grid of model samples."""

from __future__ import annotations

import math

import numpy as np

from .. import plot
from ..bpd import bits_per_dim
from ..data.source import DequantizedSource
from ..errors import ConfigError

EXACT_TRACE_MAX_DIM = 64
"""With eval.trace=auto, images with at most this many entries (8×8 digits) get the exact
divergence; larger ones the Hutchinson estimator (an unbiased estimate of the log-density, one
Rademacher probe per image)."""
GRID_N = 64


def _trace(run) -> str:
    trace, dim = run.cfg.eval.trace, math.prod(run.data.shape)
    if trace == "auto":
        return "exact" if dim <= EXACT_TRACE_MAX_DIM else "hutchinson"
    return trace


def log_prob(run, test):
    """log p of dequantised test images (`run`: a `runs.core.Run`) with the `eval.trace`
    divergence (one Hutchinson probe per image from the run's eval key)."""
    cfg = run.cfg
    if not isinstance(run.data, DequantizedSource):
        raise ConfigError(f"bits/dim needs dequantised images; the run has data.binarize=true "
                          f"({cfg.data.name}), whose likelihood is not a density on [0, 1)^D")
    trace = _trace(run)
    print(f"test bits/dim of {test.shape[0]} {cfg.data.name} images ({trace} trace) ...")
    return run.log_prob(test, trace=trace, key=run.keys["eval"], progress=True)


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
    metrics = {
        "test_bpd": mean,
        "test_bpd_stderr": se,
        "levels": data.levels,
        "dims": dim,
        "trace": trace,
        "bpd_convention": "x = (k + u) / levels; bpd = (-log p(x) + D log levels) / (D log 2)",
        "sample_method": cfg.sample.method,
        "sample_nfe": stats.nfe,
    }
    line = (f"test {mean:.4f} ± {se:.4f} bits/dim ({data.levels} levels, {trace} trace, "
            f"{nll['likelihood_wall_s']:.1f} s)")
    return metrics, line, png
