"""`sdegen evaluate RUN` on Euclidean toy data in 2-D (8gaussians, checkerboard, ...): beside the
core's exact test NLL, the ideal NLL of the data's own density, the uniform density on the test
set's bounding box, sliced Wasserstein of model samples to held-out data, and a map of the
learned density (density.png)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import plot
from ..data import IDEAL_NLL


def report(run, test, lp, nll: dict, grid: int):
    """`(metrics, line, figure)` of a toy run (`run`: a `runs.core.Run`): the ideal and
    bounding-box NLL, sliced W and the sampler's NFE; density.png."""
    cfg, n = run.cfg, test.shape[0]
    x, stats = run.draw(n, run.keys["eval"])
    sw = run.sliced_w(x, test)
    lo, hi = np.asarray(test.min(0)), np.asarray(test.max(0))
    nll_box = float(np.log(np.prod(hi - lo)))
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    pts = jnp.asarray(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2), dtype=test.dtype)
    # the picture needs no 1e-5 accuracy: 1e-4 roughly halves the cost of the grid
    logp_grid = np.asarray(run.log_prob(pts, tol=1e-4)).reshape(grid, grid)
    mean, se = nll["test_nll_nats"], nll["test_nll_stderr"]
    png = plot.density(np.asarray(test), xs, ys, logp_grid, run.dir / "density.png",
                       samples=np.asarray(x), title=f"{cfg.name}: test NLL {mean:.3f} nats")
    ideal = IDEAL_NLL.get(cfg.data.name)
    metrics = {
        "ideal_nll_nats": ideal,
        "uniform_box_nll_nats": nll_box,
        **sw,
        "sample_method": cfg.sample.method,
        "sample_nfe": stats.nfe,
    }
    shown = f" (ideal {ideal:.3f})" if ideal else ""
    line = (f"test NLL {mean:.3f} ± {se:.3f} nats{shown}, uniform on box {nll_box:.3f}; "
            f"sliced-W {sw['sliced_w_model_vs_test']:.4f} "
            f"(data-vs-data {sw['sliced_w_data_vs_test']:.4f})")
    return metrics, line, png
