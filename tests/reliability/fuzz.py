"""Harness for fuzzing sdegen's entry points with bad input (used by `test_fuzz_*.py`).

A case passes when the entry point answers with exactly one line naming the problem (exit
code 2 from the CLI, or one `SdegenError` from a library loader), never a traceback, and never
accepts the input silently. Data-file loaders plug in as one `FileTarget` each: how to write a
valid file, how to load it, and corruptions that must make it invalid (see
`test_fuzz_files.py`, `TARGETS`)."""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

from sdegen import SdegenError
from sdegen import config as C
from sdegen.cli import main


class Accepted(Exception):
    """Raised by the training stub: the CLI accepted a config it should have refused."""


def _train_stub(cfg, *, progress=True):
    C.build_process(cfg.process)  # the checks `train` runs before its first step
    raise Accepted(f"accepted: {C.to_dict(cfg)}")


def cli_one_line(argv: list[str], *, stub_train: bool = True) -> str:
    """Run `sdegen ARGV` in-process; return its one error line, or fail the test."""
    err = io.StringIO()
    with contextlib.ExitStack() as stack:
        if stub_train:
            stack.enter_context(mock.patch("sdegen.train.train", _train_stub))
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        try:
            rc = main(argv)
        except Accepted as acc:
            raise AssertionError(f"silent acceptance of {argv}: {acc}") from None
    text = err.getvalue()
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert rc == 2, (argv, rc, text)
    assert len(lines) == 1 and lines[0].startswith("sdegen: error: "), (argv, text)
    return lines[0]


def one_line_error(fn: Callable[[], Any]) -> str:
    """Call a library loader that must refuse its input; return the error's one line."""
    try:
        result = fn()
    except SdegenError as err:
        msg = str(err)
        assert msg and "\n" not in msg, msg
        return msg
    raise AssertionError(f"silent acceptance: {result!r:.200}")


Corruption = Callable[[Path, random.Random], str]
"""Damages the file (or directory) at a path in place; returns a short description."""


class FileTarget(NamedTuple):
    """One data-file loader under fuzz.

    - `make(dir)`: write a valid input under `dir`, return the path the loader takes.
    - `load(path)`: the loader (library call or CLI wrapper); must raise `SdegenError` on bad
      input.
    - `corruptions`: name -> function that makes the input invalid.
    - `accept(path, result)`: for loaders allowed to recover (checkpoints fall back to an
      intact step), whether `result` is a correct recovery; `None`: any acceptance fails."""

    name: str
    make: Callable[[Path], Path]
    load: Callable[[Path], Any]
    corruptions: dict[str, Corruption]
    accept: Callable[[Path, Any], bool] | None = None


def run_file_case(target: FileTarget, workdir: Path, corruption: str,
                  rng: random.Random) -> str:
    """Make, corrupt and load one input; return 'refused' or 'recovered' (or fail)."""
    path = target.make(workdir)
    what = target.corruptions[corruption](path, rng)
    try:
        result = target.load(path)
    except SdegenError as err:
        msg = str(err)
        assert msg and "\n" not in msg, (target.name, what, msg)
        return "refused"
    if target.accept is not None and target.accept(path, result):
        return "recovered"
    raise AssertionError(f"{target.name}: silent acceptance after {what}")


# ---- generic byte-level corruptions, for any file -------------------------------------------


def empty(path: Path, rng: random.Random) -> str:
    path.write_bytes(b"")
    return f"emptied {path.name}"


def truncate(path: Path, rng: random.Random) -> str:
    raw = path.read_bytes()
    cut = rng.randrange(0, max(len(raw), 1))
    path.write_bytes(raw[:cut])
    return f"truncated {path.name} at byte {cut}/{len(raw)}"


def garbage(path: Path, rng: random.Random) -> str:
    path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
    return f"replaced {path.name} with random bytes"


def flip_byte(path: Path, rng: random.Random) -> str:
    raw = bytearray(path.read_bytes())
    if not raw:
        raw = bytearray(b"\x00")
    i = rng.randrange(len(raw))
    raw[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(raw))
    return f"flipped a bit of byte {i} of {path.name}"


def delete(path: Path, rng: random.Random) -> str:
    path.unlink()
    return f"deleted {path.name}"


BYTE_CORRUPTIONS: dict[str, Corruption] = {
    "empty": empty, "truncate": truncate, "garbage": garbage, "flip_byte": flip_byte,
    "delete": delete,
}
