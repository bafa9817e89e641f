"""What `sdegen evaluate RUN` / `sdegen sample RUN` do for a run on the sphere S^2: test NLL in
nats with the exact Riemannian divergence beside the uniform density (log 4π = 2.531) and, for
the synthetic mixture, its true density; Mollweide maps of the data, the model's log density
and samples. `sdegen.runs` dispatches here when the data's manifold is the sphere."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import config as C
from . import plot
from .data.sphere import lonlat_grid, unit_to_latlon, weather_mixture
from .train import keys

UNIFORM_NLL = math.log(4 * math.pi)
"""NLL of the uniform density on S^2, nats."""


def samples_map(x: Float[Array, "n 3"], path: str | Path, *, title: str = "") -> Path:
    """Mollweide map of points on S^2."""
    return plot.sphere_maps([(title, unit_to_latlon(np.asarray(x)), [])], None, None, path,
                            points_label="samples")


def evaluate_sphere_run(run_dir: Path, cfg: C.Config, field, model_log_prob: Callable,
                        grid: int = 48) -> dict:
    """Test NLL (exact trace, `model_log_prob(cfg, field, x, tol=None)` of `sdegen.runs`) of a
    sphere run and a map of its log density on a (grid+1) × (2 grid+1) lat/lon grid; writes
    eval.json and density.png into `run_dir`."""
    data = C.build_data(cfg)
    test = data.test_set(keys(cfg)["test"], cfg.eval.n_test)
    n = test.shape[0]
    t0 = time.perf_counter()
    lp = model_log_prob(cfg, field, test)
    nll, nll_se = float(-jnp.mean(lp)), float(jnp.std(lp) / math.sqrt(n))
    t_lik = time.perf_counter() - t0
    ideal = (float(-jnp.mean(jax.vmap(weather_mixture().log_prob)(test)))
             if cfg.data.name == "vmf_mixture" else None)
    lon, lat, pts = lonlat_grid(grid)
    # the picture needs no 1e-5 accuracy: 1e-4 roughly halves the cost of the grid
    logp = np.asarray(model_log_prob(cfg, field, jnp.asarray(pts.reshape(-1, 3), test.dtype),
                                     tol=1e-4)).reshape(pts.shape[:2])
    png = plot.sphere_maps([(cfg.data.name, unit_to_latlon(np.asarray(test)),
                             [(cfg.process.kind, logp)])], lon, lat, run_dir / "density.png")
    result = {
        "name": cfg.name,
        "dataset": cfg.data.name,
        "protocol": cfg.data.protocol,
        "process": cfg.process.kind,
        "test_nll_nats": nll,
        "test_nll_stderr": nll_se,
        "uniform_nll_nats": UNIFORM_NLL,
        "ideal_nll_nats": ideal,
        "n_test": n,
        "likelihood_wall_s": round(t_lik, 3),
    }
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    truth = f", true density {ideal:.3f}" if ideal is not None else ""
    print(f"test NLL {nll:.3f} ± {nll_se:.3f} nats (uniform {UNIFORM_NLL:.3f}{truth}), "
          f"{n} test points")
    print(f"metrics -> {run_dir / 'eval.json'}, figure -> {png}")
    return result
