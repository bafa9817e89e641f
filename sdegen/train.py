"""The training loop: optax Adam with warm-up and clipping, EMA of parameters, orbax
checkpoints (atomic, every `ckpt_every` steps and at the end), resume from a run directory,
`metrics.jsonl`, tqdm progress, and a guard that stops on a non-finite loss.

Randomness is a pure function of (seed, step): the batch and the loss noise of step k use
`fold_in(key, k)`, so a resumed run replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from . import config as C
from .data import TOY_DATASETS
from .errors import ConfigError, TrainingError
from .objectives import BATCH_OBJECTIVES, OBJECTIVES, batch_loss

RESUME_IGNORED = {"train.steps", "train.log_every", "train.ckpt_every", "train.keep",
                  "sample", "eval", "out_dir"}
"""Config keys that may change when a run is resumed (they do not change the trajectory)."""


@dataclass
class TrainState:
    model: Any
    opt_state: Any
    ema: Any
    step: int


def make_optimizer(cfg: C.TrainConfig) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015) after global-norm clipping, with linear warm-up to `lr`."""
    schedule = optax.linear_schedule(0.0, cfg.lr, max(cfg.warmup, 1))
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(schedule))


def data_sampler(cfg: C.Config):
    return TOY_DATASETS[cfg.data.name]


def keys(cfg: C.Config) -> dict[str, jax.Array]:
    root = jax.random.key(cfg.seed)
    names = ("init", "data", "loss", "test", "sample", "eval")
    return dict(zip(names, jax.random.split(root, len(names)), strict=True))


def init_state(cfg: C.Config, dim: int = 2) -> tuple[TrainState, optax.GradientTransformation]:
    model = C.build_field(cfg, dim, keys(cfg)["init"])
    opt = make_optimizer(cfg.train)
    params = eqx.filter(model, eqx.is_inexact_array)
    return TrainState(model, opt.init(params), params, 0), opt


def make_loss(cfg: C.ObjectiveConfig, process):
    """`loss(field, x0_batch, key) -> scalar` for the config's objective."""
    o = cfg
    if o.kind in ("dsm", "ssm"):
        kwargs = dict(t_eps=o.t_eps, weighting=o.weighting)
    elif o.kind == "maxlik":
        kwargs = dict(t_eps=o.t_eps, trace=o.trace, kinetic=o.kinetic, frobenius=o.frobenius,
                      rtol=o.train_tol, atol=o.train_tol)
    else:
        kwargs = dict(t_eps=o.t_eps)
    if o.kind in BATCH_OBJECTIVES:
        objective = BATCH_OBJECTIVES[o.kind]
        return lambda field, x0, key: objective(process, field, x0, key, **kwargs)
    objective = OBJECTIVES[o.kind]
    return lambda field, x0, key: batch_loss(objective, process, field, x0, key, **kwargs)


def _checkpointer(run_dir: Path, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
    return ocp.CheckpointManager((run_dir / "checkpoints").absolute(), options=options)


def _payload(state: TrainState) -> dict:
    return {
        "params": eqx.filter(state.model, eqx.is_inexact_array),
        "opt_state": state.opt_state,
        "ema": state.ema,
    }


def restore(run_dir: Path, state: TrainState, step: int | None = None) -> TrainState:
    """Restore the latest complete checkpoint (or `step`) of `run_dir` into `state`'s structure.
    A half-written checkpoint (orbax tmp dir) is never picked. Shapes are checked."""
    mngr = _checkpointer(run_dir, keep=1_000_000)
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise TrainingError(f"no complete checkpoint in '{run_dir}/checkpoints'; train first")
    template = _payload(state)
    try:
        got = mngr.restore(step, args=ocp.args.StandardRestore(template))
    except (ValueError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0][:200]
        raise TrainingError(
            f"checkpoint {step} in '{run_dir}' does not match the config's model ({first}); "
            "restore with the config the run was trained with"
        ) from None
    want = jax.tree_util.tree_leaves(template)
    have = jax.tree_util.tree_leaves(got)
    for a, b in zip(want, have, strict=True):
        if a.shape != b.shape:
            raise TrainingError(
                f"checkpoint {step} in '{run_dir}' holds an array of shape {b.shape} where the "
                f"config's model has {a.shape}; use the run's own config.yaml"
            )
    _, static = eqx.partition(state.model, eqx.is_inexact_array)
    return TrainState(eqx.combine(got["params"], static), got["opt_state"], got["ema"], step)


def ema_model(state: TrainState):
    _, static = eqx.partition(state.model, eqx.is_inexact_array)
    return eqx.combine(state.ema, static)


def _config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        path = f"{prefix}{k}"
        if path in RESUME_IGNORED:
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_diff(a, b, f"{path}.")
        elif a != b:
            out.append(f"{path}: {a!r} -> {b!r}")
    return out


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


def train(cfg: C.Config, *, progress: bool = True) -> Path:
    """Train the config's model (score, flow-matching velocity or CNF); returns the run
    directory. Resumes when the run directory already holds checkpoints of the same config
    (only `RESUME_IGNORED` keys may differ, e.g. a larger `train.steps`)."""
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    state, opt = init_state(cfg)
    mngr = _checkpointer(run_dir, cfg.train.keep)
    metrics_path = run_dir / "metrics.jsonl"
    if mngr.latest_step() is not None:
        old = C.load(run_dir / "config.yaml")
        diff = _config_diff(C.to_dict(old), C.to_dict(cfg))
        if diff:
            raise ConfigError(
                f"run dir '{run_dir}' holds a run with another config ({'; '.join(diff[:3])}); "
                "set out_dir to a new directory or resume with the same config"
            )
        state = restore(run_dir, state)
        _truncate_metrics(metrics_path, state.step)
        print(f"resuming {run_dir} from step {state.step}")
    C.dump(cfg, run_dir / "config.yaml")

    process = C.build_process(cfg.process)
    loss_of = make_loss(cfg.objective, process)
    sampler = data_sampler(cfg)
    k = keys(cfg)
    batch_size, decay = cfg.train.batch_size, cfg.train.ema_decay
    params, static = eqx.partition(state.model, eqx.is_inexact_array)

    @eqx.filter_jit
    def step_fn(params, opt_state, ema, step):
        x0 = sampler(jax.random.fold_in(k["data"], step), batch_size)

        def loss_fn(p):
            model = eqx.combine(p, static)
            return loss_of(model, x0, jax.random.fold_in(k["loss"], step))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        # a finite loss with non-finite gradients or parameters is a failure too
        finite = jnp.isfinite(optax.tree.norm(grads)) & jnp.isfinite(optax.tree.norm(params))
        loss = jnp.where(finite, loss, jnp.nan)
        # EMA with the usual warm-up (min(decay, (1+k)/(10+k))) so early averages do not carry
        # the random initialisation: with a fixed 0.999 it still weighs 22% after 1500 steps.
        d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
        ema = jax.tree_util.tree_map(lambda e, p: d * e + (1 - d) * p, ema, params)
        return params, opt_state, ema, loss

    opt_state, ema = state.opt_state, state.ema
    start, steps = state.step, cfg.train.steps
    bar = tqdm(total=steps, initial=start, desc=f"train {cfg.name}", disable=not progress,
               dynamic_ncols=True)
    window, t0 = [], time.perf_counter()
    with metrics_path.open("a") as log:
        for step in range(start + 1, steps + 1):
            params, opt_state, ema, loss = step_fn(params, opt_state, ema, jnp.asarray(step))
            loss = float(loss)
            if not math.isfinite(loss):  # non-finite loss or gradients: this state is not saved
                last = mngr.latest_step()
                where = (f"last good checkpoint: {run_dir}/checkpoints/{last}" if last is not None
                         else "no checkpoint was written yet")
                bar.close()
                raise TrainingError(
                    f"loss or gradient is {loss} at step {step} ({where}); lower train.lr or "
                    "train.grad_clip, or check the data for NaN"
                )
            window.append(loss)
            if step % cfg.train.log_every == 0 or step == steps:
                record = {"step": step, "loss": sum(window) / len(window),
                          "wall_s": round(time.perf_counter() - t0, 3)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                window = []
            if step % cfg.train.ckpt_every == 0 or step == steps:
                state = TrainState(eqx.combine(params, static), opt_state, ema, step)
                mngr.save(step, args=ocp.args.StandardSave(_payload(state)))
                mngr.wait_until_finished()
            bar.update(1)
    bar.close()
    mngr.close()
    print(f"trained {cfg.name}: {steps} steps; checkpoints in {run_dir / 'checkpoints'}, "
          f"losses in {metrics_path}")
    return run_dir


def load_run(run_dir: str | Path, *, use_ema: bool | None = None):
    """(config, trained score field) of a run directory, from its latest checkpoint; the EMA
    parameters unless `use_ema` (default: the run's `eval.use_ema`) says otherwise."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"'{run_dir}' is not a run directory (no config.yaml); train first")
    cfg = C.load(run_dir / "config.yaml")
    state, _ = init_state(cfg)
    state = restore(run_dir, state)
    use_ema = cfg.eval.use_ema if use_ema is None else use_ema
    return cfg, (ema_model(state) if use_ema else state.model)


__all__ = ["train", "load_run", "restore", "init_state", "TrainState"]
