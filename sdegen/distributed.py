"""Several processes: start JAX's distributed runtime so that `jax.devices()` spans every
process, and say which process writes the run's files.

`initialize` reads JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID and passes them
explicitly (`jax.distributed.initialize()` with no arguments does not read the last two in jax
0.10); without them JAX's own cluster detection (SLURM, Open MPI, Cloud TPU pods) fills them in.
On CPU, cross-process collectives need gloo, which must be chosen before any backend exists —
so nothing here (and nothing before it) may touch a backend, not even `jax.default_backend()`.

A process that dies is noticed by the coordination service's heartbeat: the others are
terminated after `heartbeat_timeout` seconds (SDEGEN_HEARTBEAT_TIMEOUT, default 100) instead of
waiting forever in a collective.
"""

from __future__ import annotations

import os

import jax

from .errors import ConfigError

ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer; set it to a process "
                          "count/index") from None


def initialize(*, heartbeat_timeout: int | None = None, init_timeout: int = 300) -> None:
    """`jax.distributed.initialize` with the README's environment variables passed explicitly,
    gloo collectives for CPU processes, and a bounded wait for a dead peer. Call it first, before
    anything creates a JAX array; a wrong setting is one `ConfigError` line."""
    address = os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    count, index = _env_int("JAX_NUM_PROCESSES"), _env_int("JAX_PROCESS_ID")
    if heartbeat_timeout is None:
        heartbeat_timeout = _env_int("SDEGEN_HEARTBEAT_TIMEOUT") or 100
    # gloo: only cross-process CPU collectives use it; harmless on GPU/TPU processes
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(address, count, index, initialization_timeout=init_timeout,
                                   heartbeat_timeout_seconds=heartbeat_timeout)
    except (RuntimeError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--distributed: jax.distributed.initialize() failed ({first}); set "
                          f"{', '.join(ENV)} (see the README), or run under SLURM/MPI/a TPU "
                          "pod") from None


def is_primary() -> bool:
    """True on the process that writes run files (config.yaml, metrics.jsonl, run info):
    process 0, or the only process."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches `name` (a no-op for one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


__all__ = ["initialize", "is_primary", "barrier"]
