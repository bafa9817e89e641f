"""What the CLI does with a trained run directory: draw samples, evaluate test NLL and sample
quality, and draw the figures. Results land next to the checkpoints."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import config as C
from . import family_runs, plot
from .data import IDEAL_NLL
from .errors import SolverError
from .image_eval import evaluate_images
from .likelihood import log_prob
from .manifolds import Sphere
from .metrics import sliced_wasserstein
from .runs_sphere import evaluate_sphere_run, samples_map
from .sample import sample
from .train import keys, load_run


def _config_hint(err: SolverError, section: str, keys: str) -> SolverError:
    """The library's solver error, plus the config keys that set the options it names."""
    names = [f"{section}.{k}" for k in keys.split()]
    command = "sample" if section == "sample" else "evaluate"
    return SolverError(f"{err}; in the run's config: {', '.join(names)} "
                       f"(e.g. `sdegen {command} RUN {names[0]}=...`)")


def draw(cfg: C.Config, field, n: int, key, method: str | None = None):
    s = cfg.sample
    method = method or s.method
    process = C.build_process(cfg.process)
    shape = (n, *C.build_data(cfg).shape)
    try:
        return sample(process, field, key=key, shape=shape, method=method, rtol=s.rtol,
                      atol=s.atol, num_steps=s.num_steps, snr=s.snr, n_corrector=s.n_corrector,
                      t_eps=s.t_eps, max_steps=s.max_steps if method == "ode" else None,
                      return_stats=True)
    except SolverError as err:
        keys_ = "max_steps rtol atol t_eps" if method == "ode" else "num_steps t_eps snr"
        raise _config_hint(err, "sample", keys_) from None


def model_log_prob(cfg: C.Config, field, x, tol: float | None = None):
    e = cfg.eval
    rtol, atol = (max(tol, e.rtol), max(tol, e.atol)) if tol else (e.rtol, e.atol)
    try:
        return log_prob(C.build_process(cfg.process), field, x, rtol=rtol, atol=atol,
                        t_eps=e.t_eps, max_steps=e.max_steps)
    except SolverError as err:
        raise _config_hint(err, "eval", "max_steps rtol atol t_eps") from None


def sample_run(run_dir: str | Path, n: int | None = None, method: str | None = None,
               seed: int = 0, overrides: Sequence[str] = ()) -> Path:
    """Draw `n` samples from a trained run; writes samples.npz and samples.png there.
    `overrides` (`sample.max_steps=...`) change the run's config for this call only."""
    run_dir = Path(run_dir)
    cfg, field = load_run(run_dir, overrides=overrides)
    if cfg.model.kind in C.FAMILY_OBJECTIVES:  # VAE, Helmholtz machine, GAN: ancestral draws
        return family_runs.sample_run(run_dir, cfg, field, n, seed)
    n = n or cfg.sample.n
    method = method or cfg.sample.method
    t0 = time.perf_counter()
    x, stats = draw(cfg, field, n, jax.random.fold_in(keys(cfg)["sample"], seed), method)
    wall = time.perf_counter() - t0
    out = run_dir / "samples.npz"
    np.savez(out, x=np.asarray(x), method=method, nfe=stats.nfe)
    title = f"{cfg.name}: {n} samples, method={method}, NFE={stats.nfe}"
    if cfg.data.name in C.IMAGE_NAMES:
        png = plot.image_grid(np.asarray(x)[:100], run_dir / "samples.png", title=title)
    elif isinstance(C.build_data(cfg).manifold, Sphere):
        png = samples_map(x, run_dir / "samples.png", title=title)
    else:
        png = plot.samples_scatter(np.asarray(x), run_dir / "samples.png", title=title)
    print(f"{n} samples ({method}, NFE {stats.nfe}, {wall:.1f} s) -> {out} and {png}")
    return out


def evaluate_run(run_dir: str | Path, grid: int = 48, overrides: Sequence[str] = ()) -> dict:
    """Test NLL (nats) with the exact PF-ODE likelihood, sliced Wasserstein of model samples to
    held-out data, beside the ideal NLL and the uniform density on the data's bounding box.
    Writes eval.json and density.png into the run directory."""
    run_dir = Path(run_dir)
    cfg, field = load_run(run_dir, overrides=overrides)
    if cfg.model.kind in C.FAMILY_OBJECTIVES:  # their own likelihood estimates
        return family_runs.evaluate_run(run_dir, cfg, field)
    k = keys(cfg)
    if cfg.data.name in C.IMAGE_NAMES:
        return evaluate_images(cfg, field, run_dir, test_key=k["test"], eval_key=k["eval"],
                               draw=draw)
    data = C.build_data(cfg)
    if isinstance(data.manifold, Sphere):
        return evaluate_sphere_run(run_dir, cfg, field, model_log_prob, grid)
    sampler = data.train_batch
    n = cfg.eval.n_test
    test = data.test_set(k["test"], n)
    t0 = time.perf_counter()
    lp = model_log_prob(cfg, field, test)
    nll = float(-jnp.mean(lp))
    nll_se = float(jnp.std(lp) / math.sqrt(n))
    t_lik = time.perf_counter() - t0
    x, stats = draw(cfg, field, n, k["eval"])
    sw = float(sliced_wasserstein(jax.random.key(0), x, test))
    sw_floor = float(sliced_wasserstein(jax.random.key(0), sampler(k["eval"], n), test))
    lo, hi = np.asarray(test.min(0)), np.asarray(test.max(0))
    nll_box = float(np.log(np.prod(hi - lo)))
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    pts = jnp.asarray(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2), dtype=test.dtype)
    # the picture needs no 1e-5 accuracy: 1e-4 roughly halves the cost of the grid
    logp_grid = np.asarray(model_log_prob(cfg, field, pts, tol=1e-4)).reshape(grid, grid)
    png = plot.density(np.asarray(test), xs, ys, logp_grid, run_dir / "density.png",
                       samples=np.asarray(x), title=f"{cfg.name}: test NLL {nll:.3f} nats")
    result = {
        "name": cfg.name,
        "dataset": cfg.data.name,
        "process": cfg.process.kind,
        "test_nll_nats": nll,
        "test_nll_stderr": nll_se,
        "ideal_nll_nats": IDEAL_NLL.get(cfg.data.name),
        "uniform_box_nll_nats": nll_box,
        "sliced_w_model_vs_test": sw,
        "sliced_w_data_vs_test": sw_floor,
        "sample_method": cfg.sample.method,
        "sample_nfe": stats.nfe,
        "n_test": n,
        "likelihood_wall_s": round(t_lik, 3),
    }
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    ideal = f" (ideal {result['ideal_nll_nats']:.3f})" if result["ideal_nll_nats"] else ""
    print(f"test NLL {nll:.3f} ± {nll_se:.3f} nats{ideal}, uniform on box {nll_box:.3f}; "
          f"sliced-W {sw:.4f} (data-vs-data {sw_floor:.4f})")
    print(f"metrics -> {run_dir / 'eval.json'}, figure -> {png}")
    return result

