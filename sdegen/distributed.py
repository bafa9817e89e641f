"""Several processes: start JAX's distributed runtime so that `jax.devices()` spans every
process, and say which process writes the run's files.

`initialize` reads JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID and passes them
explicitly (`jax.distributed.initialize()` with no arguments does not read the last two in jax
0.10); without them JAX's own cluster detection (SLURM, Open MPI, Cloud TPU pods) fills them in.
On CPU, cross-process collectives need gloo, which must be chosen before any backend exists —
so nothing here (and nothing before it) may touch a backend, not even `jax.default_backend()`.

A process that dies (killed, pre-empted, hung) is noticed by a watchdog thread on every
process (`_watchdog`): the others exit with one line after `heartbeat_timeout / 2` seconds
(SDEGEN_HEARTBEAT_TIMEOUT, default 100), instead of waiting forever in a collective; JAX's own
heartbeat timeout stays as the backstop.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

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
    _start_watchdog(heartbeat_timeout)


EXIT_PEER_FAILED = 2
"""Exit status of a process whose peer died (the CLI's status for an sdegen error)."""


def _peer_failed(why: str) -> None:
    sys.stderr.write(f"sdegen: error: process {jax.process_index()} of {jax.process_count()}: "
                     f"{why}; re-run every process with the same command to resume from the "
                     "last checkpoint\n")
    sys.stderr.flush()
    os._exit(EXIT_PEER_FAILED)


_STOP = threading.Event()


def _watchdog(client, index: int, count: int, stale_s: float, beat_s: float) -> None:
    """Each process bumps its own counter in the coordination service's key-value store every
    `beat_s` seconds and watches the others'. A peer whose counter has not moved for `stale_s`
    seconds (killed, pre-empted, hung), or a coordinator that no longer answers, ends this
    process with one line — before JAX's own heartbeat timeout, which would abort with a C++
    stack trace; without either, the survivors would wait forever in their next collective."""
    seen: dict[int, tuple[str, float]] = {}
    beat = 0
    while not _STOP.is_set():
        beat += 1
        try:
            client.key_value_set(f"sdegen/alive/{index}", str(beat), allow_overwrite=True)
            now = time.monotonic()
            for peer in range(count):
                if peer == index:
                    continue
                try:
                    value = client.key_value_try_get(f"sdegen/alive/{peer}")
                except Exception:  # NOT_FOUND: that peer has not beaten yet
                    value = ""
                if peer not in seen or seen[peer][0] != value:
                    seen[peer] = (value, now)
                elif now - seen[peer][1] > stale_s:
                    _peer_failed(f"process {peer} stopped responding ({stale_s:.0f} s without "
                                 "a heartbeat)")
        except Exception as err:  # the coordinator (process 0) is gone
            if _STOP.is_set():  # ... because this process is shutting down
                return
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            _peer_failed(f"lost the coordinator ({first})")
        time.sleep(beat_s)


def _start_watchdog(heartbeat_timeout: int) -> None:
    try:
        from jax._src.distributed import global_state

        client = global_state.client
    except (ImportError, AttributeError):  # another jax layout: JAX's own timeout remains
        return
    if client is None or jax.process_count() == 1:
        return
    stale = max(heartbeat_timeout / 2, 2.0)
    atexit.register(_STOP.set)  # runs before JAX's own shutdown (registered earlier)
    threading.Thread(target=_watchdog, name="sdegen-watchdog", daemon=True,
                     args=(client, jax.process_index(), jax.process_count(), stale,
                           min(1.0, stale / 4))).start()


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
