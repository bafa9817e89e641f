"""Shell completion of `sdegen`: commands and options, config paths (the shipped config names
and YAML files), dotted config keys from the schema (`train.steps=`, and the choices of a key
after `=`) and, for `--step`, the checkpoint steps of the run named on the line.

Optional: it needs argcomplete (`pip install 'sdegen[completion]'`), which the rest of sdegen
never imports. `sdegen completion bash|zsh|fish` prints the shell code (argcomplete's
`shellcode`); the shell then calls `sdegen` itself on each TAB with argcomplete's environment,
and `cli.main` hands over to `autocomplete` before parsing. The completers below are plain
functions of the prefix, usable (and tested) without argcomplete.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

from .errors import ConfigError

SHELLS = ("bash", "zsh", "fish")
"""The shells `sdegen completion` writes code for (argcomplete's)."""
INSTALL = "pip install 'sdegen[completion]'"


def config_keys() -> dict[str, tuple[str, ...] | None]:
    """Every dotted config key of the schema (`sdegen.config.Config`) -> its choices (the
    table names of a `kind`, true/false for a flag), or None for free values."""
    from .config import Config

    out: dict[str, tuple[str, ...] | None] = {}

    def walk(cls, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
            elif tp is bool:
                out[f"{prefix}{f.name}"] = ("true", "false")
            else:
                choices = f.metadata.get("choices")
                out[f"{prefix}{f.name}"] = tuple(c for c in choices if c) if choices else None

    walk(Config, "")
    return out


def complete_overrides(prefix: str, **_) -> list[str]:
    """`key=` for the dotted keys starting with `prefix`; after `key=`, `key=choice` for the
    key's choices."""
    keys = config_keys()
    if "=" in prefix:
        key, value = prefix.split("=", 1)
        return [f"{key}={c}" for c in keys.get(key) or () if c.startswith(value)]
    return [f"{k}=" for k in keys if k.startswith(prefix)]


def _paths(prefix: str, suffixes: tuple[str, ...]) -> list[str]:
    """Folders (with a trailing /) and files ending in `suffixes` whose path starts with
    `prefix`, as the shell would list them."""
    head, _, tail = prefix.rpartition("/")
    folder = Path(head + "/" if head or prefix.startswith("/") else ".")
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(tail) or (entry.name.startswith(".") and not tail):
            continue
        shown = f"{head}/{entry.name}" if head or prefix.startswith("/") else entry.name
        if entry.is_dir():
            out.append(shown + "/")
        elif entry.name.endswith(suffixes):
            out.append(shown)
    return out


def complete_config(prefix: str, **_) -> list[str]:
    """`sdegen train CONFIG`: shipped config names (`toy2d/demo`), YAML files and folders
    (a run directory resumes)."""
    from .config import shipped_configs

    return [n for n in shipped_configs() if n.startswith(prefix)] + \
        _paths(prefix, (".yaml", ".yml"))


def complete_run_dir(prefix: str, **_) -> list[str]:
    """`sdegen sample|evaluate RUN`: folders."""
    return [p for p in _paths(prefix, ()) if p.endswith("/")]


def complete_steps(prefix: str, parsed_args=None, **_) -> list[str]:
    """`--step K`: the checkpoint steps in the run directory named on the line."""
    run = getattr(parsed_args, "run_dir", None)
    if not run:
        return []
    ckpts = Path(run) / "checkpoints"
    steps = sorted(int(p.name) for p in ckpts.glob("*") if p.name.isdigit()) \
        if ckpts.is_dir() else []
    return [str(s) for s in steps if str(s).startswith(prefix)]


COMPLETERS = {"config": complete_config, "overrides": complete_overrides,
              "run_dir": complete_run_dir, "step": complete_steps}
"""Argument dest -> its completer, for every subcommand that has such an argument."""


def attach(parser) -> None:
    """Set argcomplete's `completer` on the arguments of `parser` and its subcommands named in
    `COMPLETERS`."""
    import argparse

    for action in parser._actions:
        if action.dest in COMPLETERS:
            action.completer = COMPLETERS[action.dest]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                attach(sub)


def autocomplete(parser) -> None:
    """Answer the shell's completion request and exit, when there is one (argcomplete sets
    `_ARGCOMPLETE`); otherwise, or without argcomplete installed, do nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    attach(parser)
    argcomplete.autocomplete(parser)


def shell_code(shell: str) -> str:
    """The code that registers completion of `sdegen` in `shell` (argcomplete's `shellcode`);
    a one-line error without argcomplete."""
    if shell not in SHELLS:
        raise ConfigError(f"no completion for shell {shell!r}; choose one of {', '.join(SHELLS)}")
    try:
        import argcomplete
    except ImportError:
        raise ConfigError(f"shell completion needs argcomplete: {INSTALL}") from None
    return argcomplete.shellcode(["sdegen"], shell=shell)
