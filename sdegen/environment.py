"""What a result was computed with: the versions of sdegen and its JAX stack, and the backend and
devices JAX sees. Recorded in `run_info.json` (training, experiments) and `eval.json`, so a
number can be traced to the software and hardware that produced it."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("sdegen", "jax", "jaxlib", "diffrax", "equinox", "optax", "orbax-checkpoint")


def versions() -> dict[str, str | None]:
    """Installed version of each of `PACKAGES` (None where it is not installed)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment() -> dict:
    """Versions, Python, the JAX backend, its devices and the process count (this initialises
    JAX's backend: call it after `jax.distributed.initialize`)."""
    import jax

    devices = jax.devices()
    return {"versions": versions(), "python": platform.python_version(),
            "backend": jax.default_backend(), "device_count": len(devices),
            "devices": sorted({d.device_kind for d in devices}),
            "process_count": jax.process_count()}
