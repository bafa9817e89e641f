"""The training loop: optax Adam with warm-up and clipping, EMA of parameters, verified orbax
checkpoints (`checkpoints.py`; every `ckpt_every` steps and at the end), resume from a run
directory's newest intact checkpoint, `metrics.jsonl`, tqdm progress, and a guard that stops on
(or, with `train.on_nonfinite=skip`, skips) a non-finite loss, gradient or parameter.

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
import numpy as np
import optax
from tqdm.auto import tqdm

from . import checkpoints as ckpt
from . import config as C
from .errors import ConfigError, TrainingError
from .families import FAMILY_LOSSES, family_loss
from .objectives import BATCH_OBJECTIVES, OBJECTIVES, SPHERE_OBJECTIVES, batch_loss

RESUME_IGNORED = {"train.steps", "train.log_every", "train.ckpt_every", "train.keep",
                  "train.on_nonfinite", "train.max_skips", "train.devices", "sample", "eval",
                  "out_dir"}
"""Config keys that may change when a run is resumed (they do not change the trajectory)."""


@dataclass
class TrainState:
    model: Any
    opt_state: Any
    ema: Any
    step: int


def make_optimizer(cfg: C.TrainConfig) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015) after global-norm clipping, with linear warm-up to `lr`, then
    constant or (`lr_schedule=cosine`) cosine decay to lr/100 at `steps` (Loshchilov & Hutter
    2017, SGDR eq. 5 without restarts; resuming with more steps stretches the decay)."""
    warmup = max(cfg.warmup, 1)
    if cfg.lr_schedule == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup,
                                                      max(cfg.steps, warmup + 1), cfg.lr / 100)
    else:
        schedule = optax.linear_schedule(0.0, cfg.lr, warmup)
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(schedule))


def data_sampler(cfg: C.Config):
    """`(key, n) -> batch` of training data (jit-able), from `config.build_data`."""
    return C.build_data(cfg).train_batch


def data_mesh(cfg: C.TrainConfig) -> jax.sharding.Mesh | None:
    """A 1-D device mesh, axis "data", for data-parallel training over `cfg.devices` devices
    (0: all visible ones), or None for one device. With `jax.distributed.initialize()` called
    first, `jax.devices()` spans every host, so the same mesh is multi-host."""
    available = jax.devices()
    n = cfg.devices or len(available)
    if n > len(available):
        raise ConfigError(f"train.devices={n} but only {len(available)} devices are visible "
                          f"({available[0].platform}); set train.devices <= {len(available)}")
    if n == 1:
        return None
    if cfg.batch_size % n:
        raise ConfigError(f"train.batch_size={cfg.batch_size} does not divide over {n} devices; "
                          f"set train.batch_size to a multiple of {n} (or train.devices=1)")
    return jax.sharding.Mesh(np.array(available[:n]), ("data",))


def keys(cfg: C.Config) -> dict[str, jax.Array]:
    root = jax.random.key(cfg.seed)
    names = ("init", "data", "loss", "test", "sample", "eval")
    return dict(zip(names, jax.random.split(root, len(names)), strict=True))


def init_state(cfg: C.Config) -> tuple[TrainState, optax.GradientTransformation]:
    model = C.build_field(cfg, C.build_data(cfg).shape, keys(cfg)["init"])
    opt = make_optimizer(cfg.train)
    params = eqx.filter(model, eqx.is_inexact_array)
    return TrainState(model, opt.init(params), params, 0), opt


def make_loss(cfg: C.ObjectiveConfig, process, num_classes: int | None = None):
    """`loss(field, x0_batch, key) -> scalar` for the config's objective. With `num_classes`
    the batches are (x, label) pairs: `dsm` trains a class-conditional score with label dropout
    (null label = `num_classes`), `classifier` a noise-conditioned classifier. For the classic
    families `process` is None and the field is the whole model."""
    o = cfg
    if o.kind in FAMILY_LOSSES:
        return lambda model, x0, key: family_loss(o.kind, model, x0, key, k=o.k, r1_gamma=o.r1)
    if num_classes is not None:
        from .conditional import batch_conditional_loss, classifier_loss, conditional_dsm_loss

        if o.kind == "classifier":
            return lambda model, batch, key: batch_conditional_loss(
                classifier_loss, process, model, batch, key, t_eps=o.t_eps)
        return lambda model, batch, key: batch_conditional_loss(
            conditional_dsm_loss, process, model, batch, key, null=num_classes,
            p_uncond=o.label_dropout, t_eps=o.t_eps, weighting=o.weighting)
    if o.kind in SPHERE_OBJECTIVES:
        objective = SPHERE_OBJECTIVES[o.kind]
        return lambda field, x0, key: batch_loss(objective, process, field, x0, key,
                                                 t_eps=o.t_eps)
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


def _payload(state: TrainState) -> dict:
    return {
        "params": eqx.filter(state.model, eqx.is_inexact_array),
        "opt_state": state.opt_state,
        "ema": state.ema,
    }


def restore_verified(run_dir: Path, state: TrainState,
                     step: int | None = None) -> tuple[TrainState, ckpt.Restored]:
    """`restore`, also returning what `checkpoints.restore` found (metadata, skipped steps)."""
    got = ckpt.restore(Path(run_dir) / "checkpoints", _payload(state), step)
    _, static = eqx.partition(state.model, eqx.is_inexact_array)
    p = got.state
    return TrainState(eqx.combine(p["params"], static), p["opt_state"], p["ema"], got.step), got


def restore(run_dir: Path, state: TrainState, step: int | None = None) -> TrainState:
    """Restore the newest intact checkpoint (or `step`) of `run_dir` into `state`'s structure.
    Partly written or corrupt steps are skipped (`sdegen.checkpoints`); a checkpoint of another
    model is refused with the leaves that differ."""
    return restore_verified(run_dir, state, step)[0]


def _set_aside(run_dir: Path, skipped: list[tuple[int, str]], resumed: int) -> None:
    """Move corrupt steps newer than the resumed one out of `checkpoints/` (orbax would not
    save a step that already exists) into `checkpoints_corrupt/`, keeping them for inspection."""
    for s, why in skipped:
        if s <= resumed:
            continue
        dest = run_dir / "checkpoints_corrupt" / f"{s}"
        dest.parent.mkdir(exist_ok=True)
        k = 0
        while dest.exists():
            k += 1
            dest = dest.with_name(f"{s}.{k}")
        (run_dir / "checkpoints" / str(s)).rename(dest)
        print(f"checkpoint {s} is not intact ({why}); moved to {dest}")


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
    """Keep the records up to the resumed `step`; drop lines that do not parse (a run killed
    while writing leaves a partial last line)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) \
                and record["step"] <= step:
            keep.append(line)
    C.write_atomic(path, "".join(ln + "\n" for ln in keep))


def _prepare_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"out_dir '{run_dir}' is a file, not a directory; set out_dir to a "
                          "directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create run directory '{run_dir}' ({err.strerror}); set "
                          "out_dir to a writable directory") from None


def train(cfg: C.Config, *, progress: bool = True) -> Path:
    """Train the config's model (score, flow-matching velocity or CNF); returns the run
    directory. Resumes when the run directory already holds checkpoints of the same config
    (only `RESUME_IGNORED` keys may differ, e.g. a larger `train.steps`), from the newest
    intact checkpoint.

    A non-finite loss, gradient or parameter stops the run naming the step and the last good
    checkpoint (`train.on_nonfinite=stop`), or skips that update (`skip`; the batch of the next
    step differs, so the run goes on) up to `train.max_skips` times in a row."""
    run_dir = cfg.run_dir
    _prepare_run_dir(run_dir)
    state, opt = init_state(cfg)
    ckpt_dir = run_dir / "checkpoints"
    metrics_path = run_dir / "metrics.jsonl"
    if ckpt_dir.is_dir() and ckpt.manager(ckpt_dir).latest_step() is not None:
        old = C.load(run_dir / "config.yaml")
        diff = _config_diff(C.to_dict(old), C.to_dict(cfg))
        if diff:
            raise ConfigError(
                f"run dir '{run_dir}' holds a run with another config ({'; '.join(diff[:3])}); "
                "set out_dir to a new directory or resume with the same config"
            )
        state, got = restore_verified(run_dir, state)
        _set_aside(run_dir, got.skipped, state.step)
        _truncate_metrics(metrics_path, state.step)
        print(f"resuming {run_dir} from step {state.step}")
    elif metrics_path.exists():  # killed before its first checkpoint: start afresh
        metrics_path.unlink()
    C.dump(cfg, run_dir / "config.yaml")
    mngr = ckpt.manager(ckpt_dir, cfg.train.keep)

    process = C.build_process(cfg.process)
    loss_of = make_loss(cfg.objective, process,
                        getattr(C.build_data(cfg), "num_classes", None))
    sampler = data_sampler(cfg)
    k = keys(cfg)
    batch_size, decay = cfg.train.batch_size, cfg.train.ema_decay
    params, static = eqx.partition(state.model, eqx.is_inexact_array)
    opt_state, ema = state.opt_state, state.ema
    mesh = data_mesh(cfg.train)
    if mesh is not None:  # data parallel: replicate the state, shard each batch over "data"
        P = jax.sharding.PartitionSpec
        replicated = jax.sharding.NamedSharding(mesh, P())
        params, opt_state, ema = jax.device_put((params, opt_state, ema), replicated)
        batch_sharding = jax.sharding.NamedSharding(mesh, P("data"))
        print(f"data parallel over {mesh.size} {mesh.devices.flat[0].platform} devices: "
              f"{batch_size // mesh.size} examples per device")

    @eqx.filter_jit
    def step_fn(params, opt_state, ema, step):
        x0 = sampler(jax.random.fold_in(k["data"], step), batch_size)
        if mesh is not None:
            x0 = jax.lax.with_sharding_constraint(x0, batch_sharding)

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

    start, steps = state.step, cfg.train.steps
    skip, max_skips = cfg.train.on_nonfinite == "skip", cfg.train.max_skips
    bar = tqdm(total=steps, initial=start, desc=f"train {cfg.name}", disable=not progress,
               dynamic_ncols=True)
    window, t0, skips_in_row, skipped = [], time.perf_counter(), 0, 0
    try:
        with metrics_path.open("a") as log:
            for step in range(start + 1, steps + 1):
                new = step_fn(params, opt_state, ema, jnp.asarray(step))
                loss = float(new[3])
                if math.isfinite(loss):
                    params, opt_state, ema = new[:3]
                    skips_in_row = 0
                    window.append(loss)
                else:  # non-finite loss, gradients or parameters: this update is not kept
                    skips_in_row += 1
                    skipped += 1
                    if not skip or skips_in_row > max_skips:
                        last = mngr.latest_step()
                        where = (f"last good checkpoint: {ckpt_dir}/{last}" if last is not None
                                 else "no checkpoint was written yet")
                        why = (f"{skips_in_row} steps in a row, train.max_skips={max_skips}"
                               if skip else "train.on_nonfinite=stop")
                        raise TrainingError(
                            f"loss or gradient is {loss} at step {step} ({where}; {why}); "
                            "lower train.lr or train.grad_clip, check the data for NaN, or set "
                            "train.on_nonfinite=skip"
                        )
                    log.write(json.dumps({"step": step, "skipped": "non-finite"}) + "\n")
                if window and (step % cfg.train.log_every == 0 or step == steps):
                    record = {"step": step, "loss": sum(window) / len(window),
                              "wall_s": round(time.perf_counter() - t0, 3)}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{record['loss']:.4f}")
                    window = []
                if step % cfg.train.ckpt_every == 0 or step == steps:
                    log.flush()
                    state = TrainState(eqx.combine(params, static), opt_state, ema, step)
                    ckpt.save(mngr, step, _payload(state), {"seed": cfg.seed})
                bar.update(1)
    finally:
        bar.close()
        mngr.close()
    note = f" ({skipped} non-finite updates skipped)" if skipped else ""
    print(f"trained {cfg.name}: {steps} steps{note}; checkpoints in {ckpt_dir}, "
          f"losses in {metrics_path}")
    return run_dir


def load_run(run_dir: str | Path, *, use_ema: bool | None = None, overrides=()):
    """(config, trained score field) of a run directory, from its newest intact checkpoint; the
    EMA parameters unless `use_ema` (default: the run's `eval.use_ema`) says otherwise.
    `overrides` (dotted `key=value`) apply to the loaded config, e.g. `sample.max_steps=...`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"'{run_dir}' is not a run directory (no config.yaml); train first")
    cfg = C.load(run_dir / "config.yaml", overrides)
    state, _ = init_state(cfg)
    state = restore(run_dir, state)
    use_ema = cfg.eval.use_ema if use_ema is None else use_ema
    return cfg, (ema_model(state) if use_ema else state.model)


__all__ = ["train", "load_run", "restore", "restore_verified", "init_state", "TrainState"]
