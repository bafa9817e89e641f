"""Reading configs: YAML load, dotted `key=value` overrides, type and range checks against the
schema, and writing the resolved config back. Every mistake is one `ConfigError` line naming the
key and the fix: unknown keys suggest the closest valid one, wrong types name the expected type,
out-of-range values the allowed range."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..checkpoints import write_atomic
from ..errors import ConfigError
from .rules import check_consistency
from .schema import Config


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(path: str, value: Any, tp: Any, meta: Mapping) -> Any:
    """Check (and where lossless, convert) one value against its declared type and metadata."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"config key '{path}' must be a finite number, got {value}") from None
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"config key '{path}' expects {tp.__name__}, got {type(value).__name__} {value!r}"
        )
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"config key '{path}' must be a finite number, got {value!r}")
    if meta.get("nonempty") and not value.strip():
        raise ConfigError(f"config key '{path}' must not be empty")
    if "choices" in meta and value not in meta["choices"]:
        close = difflib.get_close_matches(str(value), meta["choices"], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"config key '{path}' must be one of {', '.join(meta['choices'])}, "
            f"got {value!r}{hint}"
        )
    for item in value if "item_choices" in meta else ():
        if item not in meta["item_choices"]:
            close = difflib.get_close_matches(str(item), meta["item_choices"], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"config key '{path}' takes names from "
                              f"{', '.join(meta['item_choices'])}, got {item!r}{hint}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        bound = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(f"config key '{path}' must be {bound} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key '{path}' must be <= {hi}, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the config file"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            valid = [f"{prefix}{k}" for k in fields]
            close = difflib.get_close_matches(path, valid, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
            raise ConfigError(f"unknown config key '{path}'; {hint}")
        tp = hints[key]
        if isinstance(tp, types.UnionType):
            tp = typing.get_args(tp)[0]
        if _is_section(tp):
            kwargs[key] = _build(tp, value, f"{path}.")
        else:
            kwargs[key] = _coerce(path, value, tp, fields[key].metadata)
    return cls(**kwargs)


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for i, k in enumerate(keys[:-1]):
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[: i + 1])
            raise ConfigError(f"override '{dotted}': config key '{where}' is a value, not a "
                              f"section; write {where}=VALUE")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` → ("a.b", YAML-parsed value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. train.steps=2000")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def from_dict(data: dict, overrides: Sequence[str] = ()) -> Config:
    """Build a validated `Config` from a nested mapping plus dotted `key=value` overrides."""
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"the config file must be a mapping of keys to values, got "
                          f"{type(data).__name__}")
    merged = dict(data or {})
    merged = yaml.safe_load(yaml.safe_dump(merged))  # deep copy of plain data
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(merged, key, value)
    return check_consistency(_build(Config, merged, ""))



SHIPPED = Path(__file__).resolve().parents[1] / "configs"
"""The configs that install with the package (`sdegen/configs/`; `configs/` in a checkout)."""


def shipped_configs() -> list[str]:
    """Names of the shipped configs, e.g. `toy2d/demo`."""
    return sorted(p.relative_to(SHIPPED).with_suffix("").as_posix()
                  for p in SHIPPED.rglob("*.yaml"))


def find_config(name: str | Path) -> Path:
    """A config file by path, or else by the name of a shipped config, with or without
    `.yaml` (`toy2d/demo`, `configs/toy2d/demo.yaml`): a local path wins."""
    path = Path(name)
    if path.is_file():
        return path
    rel = path.as_posix().removeprefix("configs/")
    for candidate in (SHIPPED / rel, SHIPPED / f"{rel}.yaml"):
        if candidate.is_file() and SHIPPED in candidate.resolve().parents:
            return candidate
    close = difflib.get_close_matches(rel.removesuffix(".yaml"), shipped_configs(), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "; `sdegen list` shows the shipped ones"
    raise ConfigError(f"config file '{name}' not found (neither a file nor a shipped config)"
                      f"{hint}")


def load(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config file — a path, or the name of a shipped config (`find_config`) — and
    apply overrides."""
    path = find_config(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text; is it a YAML config?") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file '{path}' ({err.strerror})") from None
    except RecursionError:
        raise ConfigError(f"config file '{path}' is nested too deeply; fix its syntax") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(
            f"config file '{path}' is not valid YAML{where}; fix its syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must be a mapping of keys to values, got a "
                          f"{type(data).__name__}; see `sdegen list` for examples")
    return from_dict(data, overrides)




def dump(cfg: Config, path: str | Path) -> None:
    write_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))

