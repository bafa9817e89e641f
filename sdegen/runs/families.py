"""`sdegen sample RUN` and `sdegen evaluate RUN` for the classic families (model.kind=vae,
helmholtz, gan): ancestral generation instead of an SDE/ODE solve, and their own likelihood
estimates — the IWAE bound for the VAE, importance sampling through the recognition model for the
Helmholtz machine, none for the GAN, which is judged by sliced Wasserstein alone."""

from __future__ import annotations

import math
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .. import config as C
from .. import plot
from ..data import IDEAL_NLL
from ..data.digits import DIGITS_LEVELS
from ..families import HelmholtzMachine, helmholtz_log_prob, iwae_bound
from .chunks import map_chunks, progress_bar

_CHUNK = 32  # examples per step of the likelihood estimate (each carries k latent draws)
PROGRESS_CHUNK = 256
"""Examples per update of the likelihood estimate's progress bar (`sdegen evaluate`)."""


@eqx.filter_jit
def _generate(model, keys):
    return jax.vmap(model.generate)(keys)


def generate(model, n: int, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "n *d"]:
    """`n` ancestral draws x ~ p(x) of a VAE / Helmholtz machine / GAN, each reshaped to
    `shape` (the data's example shape; the models act on flattened examples)."""
    return _generate(model, jax.random.split(key, n)).reshape(n, *shape)


@eqx.filter_jit
def _log_prob(model, x, keys, k):
    estimate = helmholtz_log_prob if isinstance(model, HelmholtzMachine) else iwae_bound
    return jax.lax.map(lambda a: estimate(model, a[0], a[1], k), (x, keys), batch_size=_CHUNK)


def test_log_prob(cfg: C.Config, model, x: Float[Array, "n *d"], key: PRNGKeyArray
                  ) -> Float[Array, " n"] | None:
    """Per-example log p(x) estimate with `cfg.eval.k` importance samples: the IWAE bound
    (Burda et al. 2016, eq. 8) for the VAE, the recognition-model importance sampler for the
    Helmholtz machine (both lower bounds in expectation); None for the GAN (no likelihood)."""
    if cfg.model.kind == "gan":
        return None
    return _log_prob(model, x.reshape(x.shape[0], -1), jax.random.split(key, x.shape[0]),
                     cfg.eval.k)


def nll_units(cfg: C.Config, nll: float, shape: tuple[int, ...] | None = None) -> dict:
    """Bits per dimension of a per-example NLL (nats) on images, with its convention; empty for
    vector data. Dequantised digits x = (k + u)/17 ∈ [0, 1)^D: the continuous NLL plus D log 17
    bounds the discrete 17-level NLL (Theis et al. 2016). Binarised digits: a discrete NLL on
    {0, 1}^D, not comparable with the dequantised one. `shape`: one example's (default: the
    config's data)."""
    if cfg.data.name not in C.IMAGE_NAMES:
        return {}
    d = math.prod(C.build_data(cfg).shape if shape is None else shape)
    if cfg.data.binarize:
        return {"bits_per_dim": nll / (d * math.log(2)),
                "nll_convention": f"binary digits {{0,1}}^{d}: discrete NLL per image"}
    return {"bits_per_dim": (nll + d * math.log(DIGITS_LEVELS)) / (d * math.log(2)),
            "nll_convention": f"dequantised x=(k+u)/{DIGITS_LEVELS} in [0,1)^{d}: continuous NLL "
                              f"per image; bits/dim = (NLL + {d} ln {DIGITS_LEVELS})/({d} ln 2)"}


def samples_figure(x, path: str | Path, *, title: str = "") -> Path:
    """A scatter (vector data) or an image grid of the first 100 samples."""
    x = np.asarray(x)
    if x.ndim == 2:
        return plot.samples_scatter(x, path, title=title)
    return plot.image_grid(x[:100], path, title=title)


def draw(run, n: int, key: PRNGKeyArray, method: str | None = None, *,
         batch_size: int | None = None, bar=None) -> tuple:
    """`(x, "ancestral", None)`: ancestral samples of a family run (`run`: a `runs.core.Run`);
    `method` is not theirs to choose. With `batch_size`, in chunks of the same per-sample keys
    (`runs.chunks.map_chunks`), so the samples equal those of one batch."""
    if batch_size is None or batch_size >= n:
        x = np.asarray(generate(run.field, n, key, run.data.shape))
        if bar is not None:
            bar.update(n)
        return x, "ancestral", None
    shape = run.data.shape
    x, _ = map_chunks(lambda i, k: (_generate(run.field, k).reshape(k.shape[0], *shape), None),
                      jax.random.split(key, n), n, batch_size, bar)
    return x, "ancestral", None


def log_prob(run, test):
    """The family's own log p estimate of the test set (None for the GAN); with
    `run.progress`, in chunks of `PROGRESS_CHUNK` examples under a progress bar (the same
    per-example keys, so the same estimates)."""
    cfg = run.cfg
    if not run.progress or cfg.model.kind == "gan" or test.shape[0] <= PROGRESS_CHUNK:
        return test_log_prob(cfg, run.field, test, run.keys["eval"])
    n = test.shape[0]
    keys = jax.random.split(run.keys["eval"], n)
    with progress_bar(n, f"test log p ({cfg.model.kind}, k={cfg.eval.k})", True) as bar:
        lp, _ = map_chunks(lambda i, a: (_log_prob(run.field, a[0].reshape(a[0].shape[0], -1),
                                                   a[1], cfg.eval.k), None),
                           (test, keys), n, PROGRESS_CHUNK, bar)
    return lp


def describe(run) -> dict:
    """The head of a family run's eval.json: the model kind in place of a process."""
    cfg = run.cfg
    return {"name": cfg.name,
            "dataset": cfg.data.name + (" (binarised)" if cfg.data.binarize else ""),
            "model": cfg.model.kind}


def report(run, test, lp, nll: dict, grid: int):
    """`(metrics, line, figure)` of a family run: the NLL estimator (bits/dim on images), sliced
    W of ancestral samples to the test set beside the data-vs-data floor; eval.png."""
    cfg, n = run.cfg, test.shape[0]
    t0 = time.perf_counter()
    x = np.asarray(generate(run.field, n, run.keys["sample"], run.data.shape))
    t_sample = time.perf_counter() - t0
    sw = run.sliced_w(x, test)
    estimator = {"vae": f"IWAE bound, k={cfg.eval.k}",
                 "helmholtz": f"importance sampling via the recognition model, k={cfg.eval.k}",
                 "gan": None}[cfg.model.kind]
    mean = nll["test_nll_nats"]
    metrics = {
        "nll_estimator": estimator,
        **(nll_units(cfg, mean, run.data.shape) if mean is not None else {}),
        "ideal_nll_nats": IDEAL_NLL.get(cfg.data.name),
        **sw,
        "sample_wall_s": round(t_sample, 3),
    }
    floor, model_sw = sw["sliced_w_data_vs_test"], sw["sliced_w_model_vs_test"]
    png = samples_figure(x, run.dir / "eval.png",
                         title=f"{cfg.name}: samples, sliced-W {model_sw:.3f} (data {floor:.3f})")
    shown = "no likelihood (GAN)" if mean is None else \
        f"test NLL {mean:.3f} ± {nll['test_nll_stderr']:.3f} nats ({estimator})"
    return metrics, f"{shown}; sliced-W {model_sw:.4f} (data-vs-data {floor:.4f})", png
