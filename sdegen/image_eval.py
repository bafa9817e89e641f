"""Evaluation of an image run: test bits/dim of the PF-ODE likelihood on dequantised test
images (`sdegen.bpd`) and a grid of model samples. Called by `runs.evaluate_run` for
`data.name` in `config.IMAGE_NAMES`."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from . import config as C
from . import plot
from .bpd import bits_per_dim
from .data.source import DequantizedSource
from .errors import ConfigError, SolverError
from .likelihood import log_prob

EXACT_TRACE_MAX_DIM = 64
"""With eval.trace=auto, images with at most this many entries (8×8 digits) get the exact
divergence; larger ones the Hutchinson estimator (an unbiased estimate of the log-density, one
Rademacher probe per image)."""
GRID_N = 64


def evaluate_images(cfg: C.Config, field, run_dir: str | Path, *, test_key: PRNGKeyArray,
                    eval_key: PRNGKeyArray, draw: Callable) -> dict:
    """Test bits/dim (uniform dequantisation, `bpd.bits_per_dim`) of `cfg.eval.n_test` test
    images and a grid of `draw(cfg, field, n, key)` samples; writes eval.json and
    samples_grid.png into `run_dir` and returns the metrics."""
    run_dir = Path(run_dir)
    data = C.build_data(cfg)
    if not isinstance(data, DequantizedSource):
        raise ConfigError(f"bits/dim needs dequantised images; the run has data.binarize=true "
                          f"({cfg.data.name}), whose likelihood is not a density on [0, 1)^D")
    e = cfg.eval
    test = data.test_set(test_key, e.n_test)
    n, dim = test.shape[0], math.prod(data.shape)
    trace = e.trace
    if trace == "auto":
        trace = "exact" if dim <= EXACT_TRACE_MAX_DIM else "hutchinson"
    print(f"test bits/dim of {n} {cfg.data.name} images ({trace} trace) ...")
    t0 = time.perf_counter()
    try:
        lp = log_prob(C.build_process(cfg.process), field, test, trace=trace, key=eval_key,
                      rtol=e.rtol, atol=e.atol, t_eps=e.t_eps, max_steps=e.max_steps,
                      progress=True)
    except SolverError as err:
        raise SolverError(f"{err}; in the run's config: eval.max_steps, eval.rtol, eval.atol, "
                          "eval.t_eps (e.g. `sdegen evaluate RUN eval.rtol=1e-4`)") from None
    t_lik = time.perf_counter() - t0
    bpd = np.asarray(bits_per_dim(lp, dim, data.levels))
    x, stats = draw(cfg, field, GRID_N, eval_key)
    png = plot.image_grid(np.asarray(x), run_dir / "samples_grid.png",
                          title=f"{cfg.name}: {GRID_N} samples ({cfg.sample.method}, NFE "
                                f"{stats.nfe}); test {float(bpd.mean()):.3f} bits/dim")
    result = {
        "name": cfg.name,
        "dataset": cfg.data.name,
        "process": cfg.process.kind,
        "test_bpd": float(bpd.mean()),
        "test_bpd_stderr": float(bpd.std() / math.sqrt(n)),
        "test_nll_nats": float(-jnp.mean(lp)),
        "levels": data.levels,
        "dims": dim,
        "trace": trace,
        "n_test": n,
        "bpd_convention": "x = (k + u) / levels; bpd = (-log p(x) + D log levels) / (D log 2)",
        "sample_method": cfg.sample.method,
        "sample_nfe": stats.nfe,
        "likelihood_wall_s": round(t_lik, 3),
    }
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    print(f"test {result['test_bpd']:.4f} ± {result['test_bpd_stderr']:.4f} bits/dim "
          f"({data.levels} levels, {trace} trace, {t_lik:.1f} s)")
    print(f"metrics -> {run_dir / 'eval.json'}, figure -> {png}")
    return result
