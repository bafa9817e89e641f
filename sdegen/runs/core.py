"""The one evaluation core of a trained run directory (`sdegen sample RUN`, `sdegen evaluate RUN`).

A call loads the run once (`sdegen.train.load_run`), builds its data source and process once,
draws samples or computes the test log-likelihood, and writes `samples.npz` / `eval.json` next to
the checkpoints. What differs between data worlds (Euclidean toy data, the sphere, images, the
classic families) is a small adapter in this package, chosen by `data_world` through the table
`WORLDS`; an adapter adds only its own metrics, summary line and figures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .. import config as C
from ..environment import environment
from ..errors import SolverError
from ..likelihood import log_prob
from ..metrics import sliced_wasserstein
from ..sample import sample
from ..train import keys, load_run
from . import families, images, sphere, toy
from .nll import nll_summary


def _config_hint(err: SolverError, section: str, keys_: str) -> SolverError:
    """The library's solver error, plus the config keys that set the options it names."""
    names = [f"{section}.{k}" for k in keys_.split()]
    command = "sample" if section == "sample" else "evaluate"
    return SolverError(f"{err}; in the run's config: {', '.join(names)} "
                       f"(e.g. `sdegen {command} RUN {names[0]}=...`)")


def draw(cfg: C.Config, field, n: int, key: PRNGKeyArray, method: str | None = None, *,
         shape: tuple[int, ...] | None = None, process=None):
    """`(x, stats)`: `n` samples of the run's generative dynamics with its `sample.*` settings
    (`sdegen.sample`); a solver failure names the config keys to change. `shape` (one example)
    and `process` default to the ones the config builds."""
    s = cfg.sample
    method = method or s.method
    process = C.build_process(cfg.process) if process is None else process
    shape = C.build_data(cfg).shape if shape is None else shape
    try:
        return sample(process, field, key=key, shape=(n, *shape), method=method, rtol=s.rtol,
                      atol=s.atol, num_steps=s.num_steps, snr=s.snr, n_corrector=s.n_corrector,
                      t_eps=s.t_eps, max_steps=s.max_steps if method == "ode" else None,
                      grid=s.grid or None, rho=s.rho, churn=s.churn, order=s.order or None,
                      eta=s.eta, return_stats=True)
    except SolverError as err:
        keys_ = "max_steps rtol atol t_eps" if method == "ode" else "num_steps t_eps snr grid"
        raise _config_hint(err, "sample", keys_) from None


def model_log_prob(cfg: C.Config, field, x: Float[Array, "n *d"], tol: float | None = None, *,
                   process=None, trace: str = "auto", key: PRNGKeyArray | None = None,
                   progress: bool = False) -> Float[Array, " n"]:
    """log p(x) in nats of the run's PF-ODE model (`sdegen.log_prob`, instantaneous change of
    variables, Chen et al. 2018 eq. 4) with its `eval.*` settings; `tol` loosens rtol/atol to at
    least `tol` (figures). A solver failure names the config keys to change."""
    e = cfg.eval
    rtol, atol = (max(tol, e.rtol), max(tol, e.atol)) if tol else (e.rtol, e.atol)
    process = C.build_process(cfg.process) if process is None else process
    try:
        return log_prob(process, field, x, trace=trace, key=key, rtol=rtol, atol=atol,
                        t_eps=e.t_eps, max_steps=e.max_steps, progress=progress)
    except SolverError as err:
        raise _config_hint(err, "eval", "max_steps rtol atol t_eps") from None


@dataclass(frozen=True)
class Run:
    """A trained run directory, loaded once: its config, trained field or model (EMA unless
    `eval.use_ema=false`), data source, process (None for the classic families) and the named
    keys of `sdegen.train.keys`. The adapters receive one of these."""

    dir: Path
    cfg: C.Config
    field: Any
    data: Any
    process: Any
    keys: dict

    def draw(self, n: int, key: PRNGKeyArray, method: str | None = None):
        """`draw` with this run's data shape and process."""
        return draw(self.cfg, self.field, n, key, method, shape=self.data.shape,
                    process=self.process)

    def log_prob(self, x, tol: float | None = None, **options):
        """`model_log_prob` with this run's process."""
        return model_log_prob(self.cfg, self.field, x, tol, process=self.process, **options)

    def sliced_w(self, x, test) -> dict:
        """Sliced Wasserstein of model samples to the test set beside the data-vs-data floor
        (training draws of the same size), on flattened examples."""
        n = test.shape[0]
        flat = lambda a: jnp.asarray(a).reshape(a.shape[0], -1)
        floor = self.data.train_batch(self.keys["eval"], n)
        return {"sliced_w_model_vs_test":
                float(sliced_wasserstein(jax.random.key(0), flat(x), flat(test))),
                "sliced_w_data_vs_test":
                float(sliced_wasserstein(jax.random.key(0), flat(floor), flat(test)))}


def open_run(run_dir: str | Path, overrides: Sequence[str] = ()) -> Run:
    """Load `run_dir` (its newest intact checkpoint) and build its data source and process once;
    `overrides` (`eval.rtol=...`) change the run's config for this call only."""
    run_dir = Path(run_dir)
    cfg, field = load_run(run_dir, overrides=overrides)
    return Run(run_dir, cfg, field, C.build_data(cfg), C.build_process(cfg.process), keys(cfg))


def nll_record(lp: Float[Array, " n"] | None, n: int, wall_s: float) -> dict:
    """The test-NLL block of eval.json (`runs.nll.nll_summary`): mean and standard error of
    −log p (nats per example; None without a likelihood), the median, the number of examples
    beyond the robust outlier threshold median + 3.5 · 1.4826 · MAD (`test_nll_outliers`,
    `test_nll_outlier_threshold`, `outlier_rule`), the mean without them, the number of test
    examples and the likelihood's wall time."""
    return {**nll_summary(lp), "n_test": n, "likelihood_wall_s": round(wall_s, 3)}


def solve(run: Run, n: int, key: PRNGKeyArray, method: str | None) -> tuple:
    """`(x, method, nfe)`: samples by a solve of the generative dynamics."""
    method = method or run.cfg.sample.method
    x, stats = run.draw(n, key, method)
    return x, method, stats.nfe


def exact_log_prob(run: Run, test: Array) -> Array:
    """The PF-ODE log-likelihood with the run's `eval.*` settings."""
    return run.log_prob(test)


def describe(run: Run) -> dict:
    """The head of eval.json: which run, on which data, with which process."""
    return {"name": run.cfg.name, "dataset": run.cfg.data.name, "process": run.cfg.process.kind}


@dataclass(frozen=True)
class World:
    """What one data world adds to the core. `report(run, test, lp, nll, grid)` returns
    `(metrics, line, figure)`: what `sdegen evaluate` adds to eval.json beside the core's
    `nll_record`, the summary line it prints and the figure it drew. The other fields are set
    only where the world differs from the defaults: how samples are drawn (`draw(run, n, key,
    method) -> (x, method, nfe or None)`) and shown (`figure(x, path, title=) -> Path`), how the
    test log-likelihood is computed (`log_prob(run, test)`, None for none) and the head of
    eval.json (`identity(run)`)."""

    report: Callable[..., tuple[dict, str, Path]]
    draw: Callable[..., tuple] = solve
    figure: Callable[..., Path] = families.samples_figure
    log_prob: Callable[..., Any] = exact_log_prob
    identity: Callable[[Run], dict] = describe


WORLDS: dict[str, World] = {
    "toy2d": World(report=toy.report),
    "sphere": World(report=sphere.report, figure=sphere.samples_map,
                    identity=sphere.describe),
    "images": World(report=images.report, log_prob=images.log_prob),
    "families": World(report=families.report, draw=families.draw, log_prob=families.log_prob,
                      identity=families.describe),
}
"""Data world -> adapter, the one list of the worlds `sample_run` / `evaluate_run` know."""


def data_world(cfg: C.Config, data=None) -> str:
    """The data world of a run (a key of `WORLDS`), as `sdegen.config.data_world` decides it
    from the config's tables: the classic families (model.kind=vae, helmholtz, gan) generate
    ancestrally, images are scored in bits/dim, data on S^2 get sphere maps, toy 2-D data a
    density grid."""
    return C.data_world(cfg)


def sample_run(run_dir: str | Path, n: int | None = None, method: str | None = None,
               seed: int = 0, overrides: Sequence[str] = ()) -> Path:
    """Draw `n` samples from a trained run; writes samples.npz and samples.png there.
    `overrides` (`sample.max_steps=...`) change the run's config for this call only."""
    run = open_run(run_dir, overrides)
    cfg, world = run.cfg, WORLDS[data_world(run.cfg, run.data)]
    n = n or cfg.sample.n
    t0 = time.perf_counter()
    x, method, nfe = world.draw(run, n, jax.random.fold_in(run.keys["sample"], seed), method)
    x = np.asarray(x)
    wall = time.perf_counter() - t0
    out = run.dir / "samples.npz"
    if nfe is None:  # ancestral draws: no solve
        np.savez(out, x=x, method=method)
        title, how = f"{cfg.name}: {n} {method} samples ({cfg.model.kind})", method
    else:
        np.savez(out, x=x, method=method, nfe=nfe)
        title, how = f"{cfg.name}: {n} samples, method={method}, NFE={nfe}", \
            f"{method}, NFE {nfe}"
    png = world.figure(x, run.dir / "samples.png", title=title)
    print(f"{n} samples ({how}, {wall:.1f} s) -> {out} and {png}")
    return out


def evaluate_run(run_dir: str | Path, grid: int = 48, overrides: Sequence[str] = ()) -> dict:
    """Test NLL of `eval.n_test` held-out examples (nats per example; the exact PF-ODE
    likelihood, or the families' own estimates) and the data world's metrics and figure (see
    the adapters); writes eval.json and the figure into the run directory, returns the metrics.
    `grid` is the resolution of density maps."""
    run = open_run(run_dir, overrides)
    world = WORLDS[data_world(run.cfg, run.data)]
    test = run.data.test_set(run.keys["test"], run.cfg.eval.n_test)
    t0 = time.perf_counter()
    lp = jax.block_until_ready(world.log_prob(run, test))
    nll = nll_record(lp, test.shape[0], time.perf_counter() - t0)
    metrics, line, figure = world.report(run, test, lp, nll, grid)
    result = {**world.identity(run), **nll, **metrics, "environment": environment()}
    path = run.dir / "eval.json"
    C.write_atomic(path, json.dumps(result, indent=2))
    print(line)
    print(f"metrics -> {path}, figure -> {figure}")
    return result
