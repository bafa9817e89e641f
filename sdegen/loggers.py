"""Tracker writers for `sdegen.fit`: the rows of `metrics.jsonl`, sent on to TensorBoard or
Weights & Biases as they are written. `metrics.jsonl` stays the record; a tracker is a view.

A logger is any object with `log(step, metrics)` (`metrics`: the row's numbers, e.g. `loss`,
`grad_norm`, `lr`, `steps_per_s`) and `close()`; pass your own to `sdegen.fit(loggers=[...])`.
The shipped ones are named in `LOGGERS` (config: `train.loggers`), each behind an extra so the
core never needs them: `pip install sdegen[tensorboard]` (tensorboardX) or `sdegen[wandb]`.
Both are imported only when a run asks for them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import ConfigError


@runtime_checkable
class Logger(Protocol):
    """What `fit` calls on process 0: `log` once per logged row, `close` when the call ends."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def _missing(name: str, module: str) -> ConfigError:
    return ConfigError(f"logger '{name}' needs {module}, which is not installed; "
                       f"pip install sdegen[{name}] (or drop '{name}' from train.loggers)")


class TensorBoardLogger:
    """Scalars `train/<key>` into an event file under `logdir` (tensorboardX's `SummaryWriter`,
    which needs no TensorFlow or PyTorch): `tensorboard --logdir runs/` shows every run."""

    def __init__(self, logdir: str | Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise _missing("tensorboard", "tensorboardX") from None
        self.logdir = Path(logdir)
        self._writer = SummaryWriter(logdir=str(self.logdir))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(f"train/{key}", value, global_step=step)

    def close(self) -> None:
        self._writer.close()


class WandbLogger:
    """One W&B run per run directory (its id kept in `wandb_id`, so a resumed run continues
    the same W&B run); project `$WANDB_PROJECT` or `sdegen`; its config: the run's
    `config.yaml` (what `sdegen train` wrote) updated with `config`. `WANDB_MODE=offline`
    writes under `<run_dir>/wandb/` for a later `wandb sync`."""

    def __init__(self, run_dir: str | Path | None, name: str, config: Mapping | None = None):
        try:
            import wandb
        except ImportError:
            raise _missing("wandb", "wandb") from None
        run_id, record = None, {}
        if run_dir is not None:
            saved = Path(run_dir) / "config.yaml"
            if saved.is_file():
                import yaml

                record = yaml.safe_load(saved.read_text()) or {}
            id_file = Path(run_dir) / "wandb_id"
            if id_file.is_file():
                run_id = id_file.read_text().strip() or None
            if run_id is None:
                run_id = secrets.token_hex(4)  # W&B run ids: [a-z0-9]+
                id_file.write_text(run_id + "\n")
        self._run = wandb.init(project=os.environ.get("WANDB_PROJECT", "sdegen"), name=name,
                               id=run_id, resume="allow", config={**record, **(config or {})},
                               dir=str(run_dir) if run_dir is not None else None)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self._run.log({f"train/{k}": v for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self._run.finish()


@dataclass(frozen=True)
class LoggerEntry:
    """How a named logger is built from a run: `build(run_dir, name, config)`, and the extra
    that installs what it needs."""

    build: Callable[[Path | None, str, Mapping], Logger]
    extra: str


def _tensorboard(run_dir: Path | None, name: str, config: Mapping) -> Logger:
    if run_dir is None:
        raise ConfigError("logger 'tensorboard' writes under the run directory; pass run_dir= "
                          "to fit, or a TensorBoardLogger(logdir) object")
    return TensorBoardLogger(Path(run_dir) / "tensorboard")


LOGGERS: dict[str, LoggerEntry] = {
    "tensorboard": LoggerEntry(_tensorboard, "tensorboard"),
    "wandb": LoggerEntry(lambda run_dir, name, config: WandbLogger(run_dir, name, config),
                         "wandb"),
}
"""The tracker writers `train.loggers` can name: the only list of their names."""


def make_logger(spec: str | Logger, run_dir: str | Path | None, *, name: str = "fit",
                config: Mapping | None = None) -> Logger:
    """A logger object from a name in `LOGGERS` (built for `run_dir`, shown as `name`, with
    `config` recorded where the tracker keeps one), or `spec` itself when it already is one."""
    if isinstance(spec, str):
        if spec not in LOGGERS:
            raise ConfigError(f"unknown logger {spec!r}; choose from {', '.join(LOGGERS)}")
        return LOGGERS[spec].build(None if run_dir is None else Path(run_dir), name,
                                   dict(config or {}))
    if not (callable(getattr(spec, "log", None)) and callable(getattr(spec, "close", None))):
        raise TypeError(f"a logger needs log(step, metrics) and close() methods; got "
                        f"{type(spec).__name__}")
    return spec


__all__ = ["Logger", "LOGGERS", "LoggerEntry", "TensorBoardLogger", "WandbLogger", "make_logger"]
