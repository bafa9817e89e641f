"""`sdegen sample RUN` and `sdegen evaluate RUN` for the classic families (model.kind=vae,
helmholtz, gan): ancestral generation instead of an SDE/ODE solve, and their own likelihood
estimates — the IWAE bound for the VAE, importance sampling through the recognition model for the
Helmholtz machine, none for the GAN, which is judged by sliced Wasserstein alone."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import config as C
from . import plot
from .data import IDEAL_NLL
from .data.digits import DIGITS_LEVELS
from .families import HelmholtzMachine, helmholtz_log_prob, iwae_bound
from .metrics import sliced_wasserstein
from .train import keys

_CHUNK = 32  # examples per step of the likelihood estimate (each carries k latent draws)


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


def nll_units(cfg: C.Config, nll: float) -> dict:
    """Bits per dimension of a per-example NLL (nats) on images, with its convention; empty for
    vector data. Dequantised digits x = (k + u)/17 ∈ [0, 1)^D: the continuous NLL plus D log 17
    bounds the discrete 17-level NLL (Theis et al. 2016). Binarised digits: a discrete NLL on
    {0, 1}^D, not comparable with the dequantised one."""
    if cfg.data.name not in C.IMAGE_NAMES:
        return {}
    d = math.prod(C.build_data(cfg).shape)
    if cfg.data.binarize:
        return {"bits_per_dim": nll / (d * math.log(2)),
                "nll_convention": f"binary digits {{0,1}}^{d}: discrete NLL per image"}
    return {"bits_per_dim": (nll + d * math.log(DIGITS_LEVELS)) / (d * math.log(2)),
            "nll_convention": f"dequantised x=(k+u)/{DIGITS_LEVELS} in [0,1)^{d}: continuous NLL "
                              f"per image; bits/dim = (NLL + {d} ln {DIGITS_LEVELS})/({d} ln 2)"}


def samples_figure(cfg: C.Config, x, path: Path, title: str) -> Path:
    """A scatter (vector data) or an image grid of the first 100 samples."""
    x = np.asarray(x)
    if x.ndim == 2:
        return plot.samples_scatter(x, path, title=title)
    return plot.image_grid(x[:100], path, title=title)


def sample_run(run_dir: Path, cfg: C.Config, model, n: int | None = None, seed: int = 0
               ) -> Path:
    """Ancestral samples of a trained family run → samples.npz and samples.png."""
    n = n or cfg.sample.n
    t0 = time.perf_counter()
    key = jax.random.fold_in(keys(cfg)["sample"], seed)
    x = np.asarray(generate(model, n, key, C.build_data(cfg).shape))
    wall = time.perf_counter() - t0
    out = run_dir / "samples.npz"
    np.savez(out, x=x, method="ancestral")
    png = samples_figure(cfg, x, run_dir / "samples.png",
                         f"{cfg.name}: {n} ancestral samples ({cfg.model.kind})")
    print(f"{n} samples (ancestral, {wall:.1f} s) -> {out} and {png}")
    return out


def evaluate_run(run_dir: Path, cfg: C.Config, model) -> dict:
    """Test NLL estimate (nats per example; bits/dim on images), sliced Wasserstein of model
    samples to the test set beside the data-vs-data floor; eval.json and eval.png."""
    k = keys(cfg)
    data = C.build_data(cfg)
    test = data.test_set(k["test"], cfg.eval.n_test)
    n = test.shape[0]
    t0 = time.perf_counter()
    lp = test_log_prob(cfg, model, test, k["eval"])
    nll = None if lp is None else float(-jnp.mean(lp))
    nll_se = None if lp is None else float(jnp.std(lp) / math.sqrt(n))
    t_lik = time.perf_counter() - t0
    t0 = time.perf_counter()
    x = generate(model, n, k["sample"], data.shape)
    t_sample = time.perf_counter() - t0
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    sw = float(sliced_wasserstein(jax.random.key(0), flat(x), flat(test)))
    floor = float(sliced_wasserstein(jax.random.key(0), flat(data.train_batch(k["eval"], n)),
                                     flat(test)))
    estimator = {"vae": f"IWAE bound, k={cfg.eval.k}",
                 "helmholtz": f"importance sampling via the recognition model, k={cfg.eval.k}",
                 "gan": None}[cfg.model.kind]
    result = {
        "name": cfg.name,
        "dataset": cfg.data.name + (" (binarised)" if cfg.data.binarize else ""),
        "model": cfg.model.kind,
        "test_nll_nats": nll,
        "test_nll_stderr": nll_se,
        "nll_estimator": estimator,
        **(nll_units(cfg, nll) if nll is not None else {}),
        "ideal_nll_nats": IDEAL_NLL.get(cfg.data.name),
        "sliced_w_model_vs_test": sw,
        "sliced_w_data_vs_test": floor,
        "n_test": n,
        "likelihood_wall_s": round(t_lik, 3),
        "sample_wall_s": round(t_sample, 3),
    }
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    png = samples_figure(cfg, x, run_dir / "eval.png",
                         f"{cfg.name}: samples, sliced-W {sw:.3f} (data {floor:.3f})")
    shown = "no likelihood (GAN)" if nll is None else \
        f"test NLL {nll:.3f} ± {nll_se:.3f} nats ({estimator})"
    print(f"{shown}; sliced-W {sw:.4f} (data-vs-data {floor:.4f})")
    print(f"metrics -> {run_dir / 'eval.json'}, figure -> {png}")
    return result
