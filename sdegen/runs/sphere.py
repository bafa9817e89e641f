"""`sdegen evaluate RUN` / `sdegen sample RUN` on the sphere S^2: beside the core's exact test NLL
(the Riemannian divergence), the uniform density (log 4π = 2.531) and, for the synthetic vMF
mixture, its true density; Mollweide maps of the data, the model's log density and samples."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .. import plot
from ..data.sphere import lonlat_grid, unit_to_latlon, weather_mixture

UNIFORM_NLL = math.log(4 * math.pi)
"""NLL of the uniform density on S^2, nats."""


def samples_map(x: Float[ArrayLike, "n 3"], path: str | Path, *, title: str = "") -> Path:
    """Mollweide map of points on S^2."""
    return plot.sphere_maps([(title, unit_to_latlon(np.asarray(x)), [])], None, None, path,
                            points_label="samples")


def describe(run) -> dict:
    """The head of a sphere run's eval.json: the core's, plus the data protocol."""
    cfg = run.cfg
    return {"name": cfg.name, "dataset": cfg.data.name, "protocol": cfg.data.protocol,
            "process": cfg.process.kind}


def report(run, test, lp, nll: dict, grid: int):
    """`(metrics, line, figure)` of a sphere run (`run`: a `runs.core.Run`): the uniform and (for
    vmf_mixture) the true NLL; a map of the model's log density on a (grid+1) × (2 grid+1)
    lat/lon grid, density.png."""
    cfg = run.cfg
    ideal = (float(-jnp.mean(jax.vmap(weather_mixture().log_prob)(test)))
             if cfg.data.name == "vmf_mixture" else None)
    lon, lat, pts = lonlat_grid(grid)
    # the picture needs no 1e-5 accuracy: 1e-4 roughly halves the cost of the grid
    logp = np.asarray(run.log_prob(jnp.asarray(pts.reshape(-1, 3), test.dtype),
                                   tol=1e-4)).reshape(pts.shape[:2])
    png = plot.sphere_maps([(cfg.data.name, unit_to_latlon(np.asarray(test)),
                             [(cfg.process.kind, logp)])], lon, lat, run.dir / "density.png")
    truth = f", true density {ideal:.3f}" if ideal is not None else ""
    line = (f"test NLL {nll['test_nll_nats']:.3f} ± {nll['test_nll_stderr']:.3f} nats "
            f"(uniform {UNIFORM_NLL:.3f}{truth}), {nll['n_test']} test points")
    return {"uniform_nll_nats": UNIFORM_NLL, "ideal_nll_nats": ideal}, line, png
