"""`sdegen train CONFIG`: build the process, model, loss, data and optimizer from a config, then
call `sdegen.fit` — the one training loop — with the config's settings. What this module adds
over `fit`: the config's key streams (a pure function of `seed`), `config.yaml` in the run
directory, and refusing to resume a run directory that holds another config.

Randomness: the batch and the loss noise of step k use `fold_in(keys(cfg)["data"], k)` and
`fold_in(keys(cfg)["loss"], k)`, so a resumed run replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import jax
import optax

from . import config as C
from .environment import environment
from .errors import ConfigError
from .fit import (
    TrainState,
    adam_schedule,
    device_mesh,
    ema_model,
    fit,
    has_checkpoint,
    initial_state,
    prepare_run_dir,
    restore,
    restore_verified,
)

RESUME_IGNORED = {"train.steps", "train.log_every", "train.ckpt_every", "train.keep",
                  "train.on_nonfinite", "train.max_skips", "train.devices", "train.async_ckpt",
                  "train.loggers", "sample", "eval", "out_dir"}
"""Config keys that may change when a run is resumed (they do not change the trajectory)."""


def make_optimizer(cfg: C.TrainConfig) -> optax.GradientTransformation:
    """`sdegen.fit.adam` with the config's lr, warm-up, clipping and schedule."""
    return C.build_optimizer(cfg)


def data_sampler(cfg: C.Config, data=None):
    """`(key, n) -> batch` of training data (jit-able): `data.train_batch` of the source built
    by `config.build_data` (passed in as `data` when the caller built it already)."""
    return (C.build_data(cfg) if data is None else data).train_batch


def data_mesh(cfg: C.TrainConfig) -> jax.sharding.Mesh | None:
    """The data-parallel mesh of `train.devices` (`sdegen.fit.device_mesh`)."""
    return device_mesh(cfg.devices, cfg.batch_size)


def keys(cfg: C.Config) -> dict[str, jax.Array]:
    root = jax.random.key(cfg.seed)
    names = ("init", "data", "loss", "test", "sample", "eval")
    return dict(zip(names, jax.random.split(root, len(names)), strict=True))


def init_state(cfg: C.Config) -> tuple[TrainState, optax.GradientTransformation]:
    data = C.build_data(cfg)
    model = C.build_field(cfg, data.shape, keys(cfg)["init"], data=data)
    opt = make_optimizer(cfg.train)
    return initial_state(model, opt), opt


def make_loss(cfg: C.Config, process, num_classes: int | None = None):
    """The config's loss for `sdegen.fit` (`config.build_loss`)."""
    return C.build_loss(cfg, process, num_classes)


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


def _write_run_info(run_dir: Path) -> None:
    """`run_info.json`: when and with what this training call ran (command, versions of the
    JAX stack, backend and devices); each call (a resume too) appends its record to `calls`."""
    path = run_dir / "run_info.json"
    try:
        calls = json.loads(path.read_text())["calls"] if path.exists() else []
    except (ValueError, KeyError, TypeError):
        calls = []
    calls.append({"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                  "command": " ".join(sys.argv), **environment()})
    C.write_atomic(path, json.dumps({"calls": calls}, indent=2))


def train(cfg: C.Config, *, progress: bool = True) -> Path:
    """Train the config's model (score, flow-matching velocity, CNF or classic family) with
    `sdegen.fit`; returns the run directory. Resumes when the run directory already holds
    checkpoints of the same config (only `RESUME_IGNORED` keys may differ, e.g. a larger
    `train.steps`), from the newest intact checkpoint.

    A non-finite loss, gradient or parameter stops the run naming the step and the last good
    checkpoint (`train.on_nonfinite=stop`), or skips that update (`skip`; the batch of the next
    step differs, so the run goes on) up to `train.max_skips` times in a row."""
    run_dir = cfg.run_dir
    prepare_run_dir(run_dir)
    if has_checkpoint(run_dir):
        diff = _config_diff(C.to_dict(C.load(run_dir / "config.yaml")), C.to_dict(cfg))
        if diff:
            raise ConfigError(
                f"run dir '{run_dir}' holds a run with another config ({'; '.join(diff[:3])}); "
                "set out_dir to a new directory or resume with the same config"
            )
    if jax.process_index() == 0:  # several processes: one writer of the run's files
        C.dump(cfg, run_dir / "config.yaml")
        _write_run_info(run_dir)
    data = C.build_data(cfg)
    k = keys(cfg)
    model = C.build_field(cfg, data.shape, k["init"], data=data)
    loss = make_loss(cfg, C.build_process(cfg.process), getattr(data, "num_classes", None))
    t = cfg.train
    fit(loss, model, data_sampler(cfg, data), key=jax.numpy.stack([k["data"], k["loss"]]),
        steps=t.steps, batch_size=t.batch_size, optimizer=make_optimizer(t),
        ema_decay=t.ema_decay, run_dir=run_dir, ckpt_every=t.ckpt_every, keep=t.keep,
        log_every=t.log_every, devices=t.devices, on_nonfinite=t.on_nonfinite,
        max_skips=t.max_skips, progress=progress, name=f"train {cfg.name}",
        metadata={"seed": cfg.seed}, async_checkpoints=t.async_ckpt,
        lr_schedule=adam_schedule(t.lr, warmup=t.warmup, schedule=t.lr_schedule, steps=t.steps),
        loggers=t.loggers)
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


__all__ = ["train", "load_run", "restore", "restore_verified", "init_state", "TrainState", "keys",
           "ema_model"]
