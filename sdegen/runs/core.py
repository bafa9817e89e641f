"""The one evaluation core of a trained run directory (`sdegen sample RUN`, `sdegen evaluate RUN`).

A call loads the run once (`sdegen.train.load_run`), builds its data source and process once,
draws samples or computes the test log-likelihood, and writes `samples.npz` / `eval.json` next to
the checkpoints. What differs between data worlds (Euclidean toy data, the sphere, images, the
classic families) is a small adapter in this package, chosen by `data_world` through the table
`WORLDS`; an adapter adds only its own metrics, summary line and figures."""

from __future__ import annotations

import dataclasses
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
from ..errors import ConfigError, SolverError
from ..likelihood import log_prob
from ..metrics import sliced_wasserstein
from ..sample import sample
from ..train import ema_model, init_state, keys, restore
from . import export, families, images, sphere, toy
from .chunks import check_batch_size, map_chunks, progress_bar
from .nll import nll_summary


def _config_hint(err: SolverError, section: str, keys_: str) -> SolverError:
    """The library's solver error, plus the config keys that set the options it names."""
    names = [f"{section}.{k}" for k in keys_.split()]
    command = "sample" if section == "sample" else "evaluate"
    return SolverError(f"{err}; in the run's config: {', '.join(names)} "
                       f"(e.g. `sdegen {command} RUN {names[0]}=...`)")


def draw(cfg: C.Config, field, n: int, key: PRNGKeyArray, method: str | None = None, *,
         shape: tuple[int, ...] | None = None, process=None,
         x_T: Float[Array, "n *d"] | None = None):
    """`(x, stats)`: `n` samples of the run's generative dynamics with its `sample.*` settings
    (`sdegen.sample`); a solver failure names the config keys to change. `shape` (one example)
    and `process` default to the ones the config builds; `x_T` (n starting points at t = T)
    replaces the prior draw from `key`."""
    s = cfg.sample
    method = method or s.method
    process = C.build_process(cfg.process) if process is None else process
    if x_T is None:
        shape = C.build_data(cfg).shape if shape is None else shape
    try:
        return sample(process, field, key=key, shape=None if x_T is not None else (n, *shape),
                      x_T=x_T, method=method, rtol=s.rtol,
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
    `eval.use_ema=false` or `open_run(ema=False)`), data source, process (None for the classic
    families) and the named keys of `sdegen.train.keys`; the checkpoint `step` it holds,
    whether `ema` weights are in use, and whether solves show a `progress` bar. The adapters
    receive one of these."""

    dir: Path
    cfg: C.Config
    field: Any
    data: Any
    process: Any
    keys: dict
    step: int | None = None
    ema: bool = True
    progress: bool = False

    def draw(self, n: int, key: PRNGKeyArray, method: str | None = None, *,
             x_T: Float[Array, "n *d"] | None = None):
        """`draw` with this run's data shape and process (from `x_T` if given)."""
        return draw(self.cfg, self.field, n, key, method, shape=self.data.shape,
                    process=self.process, x_T=x_T)

    def log_prob(self, x, tol: float | None = None, **options):
        """`model_log_prob` with this run's process (and its progress setting)."""
        options.setdefault("progress", self.progress)
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


def _check_step(step: int | None) -> None:
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ConfigError(f"--step must be a checkpoint step (an integer >= 0), got {step!r}; "
                          "omit it for the newest checkpoint")


def open_run(run_dir: str | Path, overrides: Sequence[str] = (), *, step: int | None = None,
             ema: bool | None = None, progress: bool = False) -> Run:
    """Load `run_dir` and build its data source and process once: the checkpoint at `step`
    (default: the newest intact one; a step that is not there is a one-line error listing the
    steps that are), its EMA parameters unless `ema=False` (default: the run's `eval.use_ema`,
    true; every sdegen checkpoint stores the EMA beside the raw parameters). `overrides`
    (`eval.rtol=...`) change the run's config for this call only."""
    _check_step(step)
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"'{run_dir}' is not a run directory (no config.yaml); train first")
    cfg = C.load(run_dir / "config.yaml", overrides)
    state, _ = init_state(cfg)
    state = restore(run_dir, state, step)
    use_ema = cfg.eval.use_ema if ema is None else bool(ema)
    field = ema_model(state) if use_ema else state.model
    return Run(run_dir, cfg, field, C.build_data(cfg), C.build_process(cfg.process), keys(cfg),
               step=int(state.step), ema=use_ema, progress=progress)


def guided(run: Run, label: int | None, guidance: float | None = None) -> Run:
    """`run` with its field replaced by `runs.guided.guided_field(run, label, guidance)`: the
    classifier-free guided field of class `label` (Ho & Salimans 2022, eq. 6); `label=None`
    leaves the run as it is (a conditional run then samples its unconditional field)."""
    from .guided import guided_field

    field = guided_field(run, label, guidance)
    return run if field is run.field else dataclasses.replace(run, field=field)


def nll_record(lp: Float[Array, " n"] | None, n: int, wall_s: float) -> dict:
    """The test-NLL block of eval.json (`runs.nll.nll_summary`): mean and standard error of
    −log p (nats per example; None without a likelihood), the median, the number of examples
    beyond the robust outlier threshold median + 3.5 · 1.4826 · MAD (`test_nll_outliers`,
    `test_nll_outlier_threshold`, `outlier_rule`), the mean without them, the number of test
    examples and the likelihood's wall time."""
    return {**nll_summary(lp), "n_test": n, "likelihood_wall_s": round(wall_s, 3)}


def solve(run: Run, n: int, key: PRNGKeyArray, method: str | None, *,
          batch_size: int | None = None, bar=None) -> tuple:
    """`(x, method, nfe)`: `n` samples by solves of the generative dynamics, in chunks of
    `batch_size` (`runs.chunks.map_chunks`: one compilation, the last chunk padded; `nfe` is
    then the largest NFE of a chunk). The starting points x_T are drawn once for all `n` from
    `key` exactly as one batch draws them, so deterministic methods give the same samples in
    chunks as in one batch (fixed grids to rounding; the adaptive `ode` to its tolerances, as
    its steps are chosen per chunk); stochastic methods draw chunk i's noise from
    `fold_in(key, i)`, so their chunked samples are other draws of the same distribution."""
    method = method or run.cfg.sample.method
    if batch_size is None or batch_size >= n:  # one batch: the draw of `sdegen sample` as it was
        x, stats = run.draw(n, key, method)
        x = np.asarray(x)
        if bar is not None:
            bar.set_postfix_str(f"NFE {stats.nfe}")
            bar.update(n)
        return x, method, stats.nfe
    key_prior, _ = jax.random.split(key)  # as `sdegen.sample` splits it
    x_T = run.process.prior_sample(key_prior, (n, *run.data.shape))

    def chunk(i, x_c):
        x, stats = run.draw(batch_size, jax.random.fold_in(key, i), method, x_T=x_c)
        return x, stats.nfe

    x, nfes = map_chunks(chunk, x_T, n, batch_size, bar)
    return x, method, max(nfes)


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
    method, *, batch_size=None, bar=None) -> (x, method, nfe or None)`, in chunks of
    `batch_size`, advancing the tqdm `bar` by the samples drawn) and shown (`figure(x, path,
    title=) -> Path`), how the test log-likelihood is computed (`log_prob(run, test)`, None
    for none) and the head of eval.json (`identity(run)`)."""

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


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def sample_run(run_dir: str | Path, n: int | None = None, method: str | None = None,
               seed: int = 0, overrides: Sequence[str] = (), *, batch_size: int | None = None,
               out: str | Path | None = None, step: int | None = None, ema: bool | None = None,
               label: int | None = None, guidance: float | None = None,
               png_dir: str | Path | None = None, progress: bool = False) -> Path:
    """Draw `n` samples (default `sample.n`) from a trained run and write them to a `.npz`
    file (`x`, and `method`, `nfe`, `step`, `seed`, `ema`, `label`, `guidance`) beside a figure
    of the same name (`.png`); returns the `.npz` path.

    - `method`, `overrides` (`sample.max_steps=...`): the run's `sample.*` settings for this
      call; `seed`: samples use `fold_in(keys(cfg)["sample"], seed)`.
    - `batch_size`: draw in chunks of this many samples with one compilation (`solve`: same
      samples as one batch for deterministic methods); `progress`: a bar that counts samples
      and shows the chunk and its NFE.
    - `out`: the `.npz` file (replaced if it exists). Default: `samples.npz` in the run
      directory for a run's first samples, then a new name that says what the file holds,
      `samples-step{K}-{method}-seed{S}-n{N}[-y{Y}-w{W}][-noema].npz` (`-2`, `-3`, ... if taken):
      the default never overwrites earlier samples.
    - `step`: the checkpoint to sample (default: the newest); `ema`: EMA (default, unless the
      run sets `eval.use_ema=false`) or raw weights.
    - `label`, `guidance`: class-conditional runs only — samples of class `label` under
      classifier-free guidance of weight `guidance` (`guided`).
    - `png_dir`: image runs only — also one PNG per sample there (`export.write_pngs`), the flat
      folder clean-fid and torch-fidelity read; the folder must be new or hold no PNGs.
    """
    _check_count("--n", n)
    check_batch_size(batch_size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be an integer >= 0, got {seed!r}")
    out = export.check_out(out) if out is not None else None
    _check_step(step)
    run = guided(open_run(run_dir, overrides, step=step, ema=ema), label, guidance)
    cfg, world = run.cfg, WORLDS[data_world(run.cfg, run.data)]
    if png_dir is not None:
        png_dir = export.check_png_dir(png_dir, run.data.shape, cfg.data.name)
    n = n or cfg.sample.n
    key = jax.random.fold_in(run.keys["sample"], seed)
    t0 = time.perf_counter()
    with progress_bar(n, f"sample {cfg.name}", progress) as bar:
        x, method, nfe = world.draw(run, n, key, method, batch_size=batch_size, bar=bar)
    x = np.asarray(x)
    wall = time.perf_counter() - t0
    if out is None:
        out = export.default_out(run.dir, export.samples_name(
            step=run.step, method=method, seed=seed, n=n, label=label,
            guidance=guidance or 0.0, ema=run.ema))
    out.parent.mkdir(parents=True, exist_ok=True)
    record = dict(x=x, method=method, step=run.step, seed=seed, ema=run.ema,
                  label=-1 if label is None else label, guidance=guidance or 0.0)
    cls = f", class {label}, guidance {guidance or 0.0:g}" if label is not None else ""
    if nfe is None:  # ancestral draws: no solve
        np.savez(out, **record)
        title, how = f"{cfg.name}: {n} {method} samples ({cfg.model.kind})", method
    else:
        np.savez(out, nfe=nfe, **record)
        title, how = f"{cfg.name}: {n} samples, method={method}, NFE={nfe}{cls}", \
            f"{method}, NFE {nfe}"
    png = world.figure(x, out.with_suffix(".png"), title=title)
    weights = "EMA" if run.ema else "raw"
    print(f"{n} samples ({how}{cls}; step {run.step}, {weights} weights, seed {seed}; "
          f"{wall:.1f} s) -> {out} and {png}")
    if png_dir is not None:
        paths = export.write_pngs(x, png_dir, levels=getattr(run.data, "levels", 0))
        print(f"{len(paths)} PNGs of {x.shape[1]}x{x.shape[2]} -> {png_dir}/ "
              f"({paths[0].name} .. {paths[-1].name})")
    return out


def evaluate_run(run_dir: str | Path, grid: int = 48, overrides: Sequence[str] = (), *,
                 n_test: int | None = None, step: int | None = None, progress: bool = False
                 ) -> dict:
    """Test NLL of held-out examples (nats per example; the exact PF-ODE likelihood, or the
    families' own estimates) and the data world's metrics and figure (see the adapters); writes
    eval.json and the figure into the run directory, returns the metrics. `grid` is the
    resolution of density maps; `n_test`: evaluate on the first `n_test` examples of the test
    set (default `eval.n_test`; up to `eval.n_test` they are the very examples the full
    evaluation scores); `step`: the checkpoint (default: the newest); `progress`: progress
    bars of the likelihood solves and the samples."""
    _check_count("--n-test", n_test)
    run = open_run(run_dir, overrides, step=step, progress=progress)
    world = WORLDS[data_world(run.cfg, run.data)]
    size = run.cfg.eval.n_test if n_test is None else max(n_test, run.cfg.eval.n_test)
    test = run.data.test_set(run.keys["test"], size)
    if n_test is not None:
        test = jax.tree_util.tree_map(lambda a: a[:n_test], test)
    if isinstance(test, tuple):  # labelled data (x, y): the likelihood is of x alone
        test = test[0]
    if progress:
        print(f"evaluate {run.cfg.name} (step {run.step}, {'EMA' if run.ema else 'raw'} "
              f"weights): {test.shape[0]} test examples")
    t0 = time.perf_counter()
    lp = jax.block_until_ready(world.log_prob(run, test))
    nll = nll_record(lp, test.shape[0], time.perf_counter() - t0)
    metrics, line, figure = world.report(run, test, lp, nll, grid)
    result = {**world.identity(run), "step": run.step, "ema": run.ema, **nll, **metrics,
              "environment": environment()}
    path = run.dir / "eval.json"
    C.write_atomic(path, json.dumps(result, indent=2))
    print(line)
    print(f"metrics -> {path}, figure -> {figure}")
    return result
