"""Verifiable checkpoints on top of orbax: what a complete checkpoint is, and how to find the
newest one that is intact.

What orbax-checkpoint 0.12.8 already guarantees on a local file system (checked in
`tests/reliability/test_checkpoints.py`): a step is written into
`<step>.orbax-checkpoint-tmp-<timestamp>/`, gets a `commit_success.txt` and is then renamed to
`<step>/` in one `rename`, so a run killed mid-write leaves only a tmp dir, which
`latest_step()` never lists. What it does not guarantee: a step directory that lost its commit
marker (a partial copy from another machine) is still listed, and a truncated or altered data
file is restored silently or fails with a raw tensorstore/JSON error.

So every sdegen checkpoint holds two items: `state` (the arrays) and `meta` (JSON: step, seed,
the path/shape/dtype of every leaf, and a SHA-256 of all leaf bytes). `restore` walks the
finalized steps from the newest, skips any without a commit marker, with unreadable metadata
or arrays, or whose bytes do not match the digest, and returns the newest intact one together
with the steps it skipped and why. A checkpoint whose leaves do not match the template (a
model built from another config) is not skipped but refused with the list of differences.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from .errors import TrainingError

FORMAT = 1
COMMIT_MARKER = "commit_success.txt"


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a resumed run after a kill) sees either the
    old file or the new one, never a truncated one: write a sibling tmp file, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def manager(directory: str | Path, keep: int = 1_000_000, *,
            async_save: bool = False) -> ocp.CheckpointManager:
    """An orbax manager for `directory`, keeping the newest `keep` steps; stale tmp dirs of
    killed writes are removed when it opens. With `async_save`, `save` returns once the arrays
    are copied to the host and the files are written in the background (orbax's async
    checkpointing): a step still becomes visible only when committed, so a run that fails or is
    killed meanwhile keeps its previous checkpoint.

    With several processes (`jax.distributed`), every process opens the manager and calls
    `save` and `restore` with the same steps: orbax writes each replicated array once (from
    process 0's replica) and synchronises the processes around each commit."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=async_save, cleanup_tmp_directories=True
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def leaf_table(tree: Any) -> dict[str, list]:
    """`{"params.layers[0].weight": [shape, dtype], ...}` for every array leaf of `tree`."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_name(path): [list(np.shape(x)), str(_dtype(x))] for path, x in flat}


def _dtype(x) -> np.dtype:
    """A leaf's dtype without copying it to the host."""
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def digest(tree: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes, in tree order."""
    h = hashlib.sha256()
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.ascontiguousarray(np.asarray(x))
        h.update(f"{_name(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _name(path) -> str:
    return jax.tree_util.keystr(path, simple=True, separator=".")


def save(mngr: ocp.CheckpointManager, step: int, state: Any, extra: dict | None = None, *,
         wait: bool = True) -> None:
    """Write `state` (a pytree of arrays) as checkpoint `step` with its verification metadata,
    and (if `wait`) wait until it is committed. Every process calls it (several processes: the
    arrays are replicated, each process hashes its own copy, process 0's metadata is written)."""
    meta = {"format": FORMAT, "step": int(step), "leaves": leaf_table(state),
            "digest": digest(state), **(extra or {})}
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            meta=ocp.args.JsonSave(meta)))
    if wait:
        mngr.wait_until_finished()


class Restored(NamedTuple):
    state: Any
    step: int
    meta: dict
    skipped: list[tuple[int, str]]
    """(step, why) of newer checkpoints that were incomplete or corrupt."""


def table_diff(have: dict, want: dict, limit: int = 3, dtypes: bool = True) -> list[str]:
    """Differences between a checkpoint's leaf table and the one the config's model needs
    (names, shapes and, if `dtypes`, dtypes)."""
    out = []
    for name in sorted(set(have) | set(want)):
        if name not in want:
            out.append(f"{name} is in the checkpoint but not in the config's model")
        elif name not in have:
            out.append(f"{name} is missing from the checkpoint")
        elif tuple(have[name][0]) != tuple(want[name][0]):
            out.append(f"{name} has shape {tuple(have[name][0])} in the checkpoint, "
                       f"{tuple(want[name][0])} in the config's model")
        elif dtypes and have[name][1] != want[name][1]:
            out.append(f"{name} has dtype {have[name][1]} in the checkpoint, "
                       f"{want[name][1]} in the config's model")
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160]}" if text else type(err).__name__


def _meta(mngr: ocp.CheckpointManager, step: int) -> dict:
    got = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    meta = got["meta"]
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "leaves" not in meta:
        raise ValueError("not an sdegen checkpoint (no verification metadata)")
    return meta


def _as_saved(template: Any, leaves: dict) -> Any:
    """`template` with each leaf in the dtype the checkpoint holds (a float32 run restored under
    `jax_enable_x64`, or the reverse)."""
    def cast(path, x):
        return jnp.zeros(np.shape(x), dtype=leaves[_name(path)][1])

    return jax.tree_util.tree_map_with_path(cast, template)


def restore(directory: str | Path, template: Any, step: int | None = None) -> Restored:
    """The newest intact checkpoint in `directory` (or exactly `step`), restored into the
    structure of `template`.

    Raises `TrainingError` when no step is intact (listing why each was skipped) or when the
    checkpoint's arrays do not match `template` (naming the leaves that differ)."""
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise TrainingError(f"no checkpoints in '{directory}' (the directory does not exist); "
                            "train first")
    mngr = manager(directory)
    try:
        steps = sorted(mngr.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise TrainingError(f"checkpoint {step} is not in '{directory}' "
                                    f"(complete steps: {sorted(steps)}); pick one of those")
            steps = [step]
        want = leaf_table(template)
        skipped: list[tuple[int, str]] = []
        for s in steps:
            if not (directory / str(s) / COMMIT_MARKER).is_file():
                skipped.append((s, f"no {COMMIT_MARKER} (partly written or copied)"))
                continue
            try:
                meta = _meta(mngr, s)
            except Exception as err:  # orbax raises JSON, tensorstore and OS errors alike
                skipped.append((s, f"unreadable metadata ({_first_line(err)})"))
                continue
            diff = table_diff(meta["leaves"], want, dtypes=False)
            if diff:
                raise TrainingError(
                    f"checkpoint {s} in '{directory}' does not fit the config's model: "
                    f"{'; '.join(diff)}; restore with the config the run was trained with"
                )
            try:  # restore in the dtypes it was saved in, verify, then cast to the template's
                got = mngr.restore(s, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(_as_saved(template, meta["leaves"]))))["state"]
            except Exception as err:
                skipped.append((s, f"unreadable arrays ({_first_line(err)})"))
                continue
            if digest(got) != meta["digest"]:
                skipped.append((s, "array bytes do not match the saved digest"))
                continue
            got = jax.tree_util.tree_map(lambda x, t: jnp.asarray(x, dtype=t.dtype), got, template)
            return Restored(got, s, meta, skipped)
    finally:
        mngr.close()
    why = "; ".join(f"step {s}: {r}" for s, r in skipped) or "none was written"
    raise TrainingError(f"no intact checkpoint in '{directory}' ({why}); train again or copy "
                        "the run's checkpoints completely")


__all__ = ["manager", "save", "restore", "Restored", "digest", "leaf_table", "table_diff"]
