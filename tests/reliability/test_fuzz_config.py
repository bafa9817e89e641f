"""Property-based fuzzing of configs through `sdegen train` (in-process `cli.main`): unknown
keys, wrong types, out-of-range and non-finite values, inconsistent values, malformed YAML,
non-UTF-8 files, missing files and malformed overrides, each delivered in a YAML file or as a
`key=value` override. Every case must give exactly one line naming the problem and exit code
2 — no traceback, no silent acceptance (the training stub fails the test if a config gets
through). Bad values are bad by construction from the schema's declared types and bounds."""

import dataclasses
import json
import math
import tempfile
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdegen import config as C

from .conftest import COUNTS, TINY
from .fuzz import cli_one_line

SETTINGS = settings(max_examples=45, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FEW = settings(SETTINGS, max_examples=20)


def _leaves(cls=C.Config, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _leaves(tp, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", tp, dict(f.metadata)


LEAVES = list(_leaves())
SECTIONS = [f.name for f in dataclasses.fields(C.Config)
            if dataclasses.is_dataclass(typing.get_type_hints(C.Config)[f.name])]
KNOWN = {p.split(".")[-1] for p, _, _ in LEAVES} | set(SECTIONS)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
LINE = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF,
                             blacklist_characters="\x7f"), max_size=12)


def _not_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return True
    return False


def wrong_value(tp):
    """Values of the wrong type for a field of type `tp` (no lossless conversion exists)."""
    junk = st.one_of(st.none(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(LINE, st.integers(), min_size=1, max_size=2))
    if tp is bool:
        return st.one_of(junk, st.integers(), st.floats(allow_nan=False), TEXT)
    if tp is int:
        return st.one_of(junk, st.booleans(), st.floats(allow_nan=False), TEXT)
    if tp is float:
        return st.one_of(junk, st.booleans(), TEXT.filter(_not_float))
    return st.one_of(junk, st.booleans(), st.integers(), st.floats(allow_nan=False))


def out_of_range(tp, meta):
    """Values of the right type outside the field's declared choices or bounds."""
    options = []
    if "choices" in meta:
        options.append(TEXT.filter(lambda s: s not in meta["choices"]))
    if meta.get("nonempty"):
        options.append(st.sampled_from(["", " ", "\t"]))
    lo, hi = meta.get("min"), meta.get("max")
    if tp is float:
        options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
        if lo is not None:
            upper = lo if meta.get("min_exclusive") else math.nextafter(lo, -math.inf)
            options.append(st.floats(max_value=upper, allow_nan=False, allow_infinity=False))
        if hi is not None:
            options.append(st.floats(min_value=math.nextafter(hi, math.inf), allow_nan=False,
                                     allow_infinity=False))
    if tp is int:
        if lo is not None:
            options.append(st.integers(max_value=int(lo) - (0 if meta.get("min_exclusive")
                                                            else 1)))
        if hi is not None:
            options.append(st.integers(min_value=int(hi) + 1))
    return st.one_of(options) if options else st.nothing()


RANGED = [(p, tp, m) for p, tp, m in LEAVES
          if {"choices", "min", "max", "nonempty"} & set(m) or tp is float]


@st.composite
def bad_value_case(draw):
    """(dotted key, bad value, what is wrong)."""
    kind = draw(st.sampled_from(["wrong_type", "out_of_range"]))
    if kind == "wrong_type":
        path, tp, _ = draw(st.sampled_from(LEAVES))
        return path, draw(wrong_value(tp)), kind
    path, tp, meta = draw(st.sampled_from(RANGED))
    return path, draw(out_of_range(tp, meta)), kind


@st.composite
def unknown_key_case(draw):
    section = draw(st.sampled_from(["", *SECTIONS]))
    key = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
               .filter(lambda k: k not in KNOWN))
    return (f"{section}.{key}" if section else key), draw(st.integers() | LINE), "unknown_key"


def _yaml_flow(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20)
    return text.removesuffix("\n...\n").strip()


def _set(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for k in parents:
        tree = tree.setdefault(k, {})
    tree[last] = value


def _run(tmp: Path, case, via_override: bool, needle: str | None = None) -> str:
    path, value, kind = case
    data = json.loads(json.dumps(TINY))
    data["out_dir"] = str(tmp / "run")
    overrides = []
    if via_override:
        overrides.append(f"{path}={_yaml_flow(value)}")
    else:
        _set(data, path, value)
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True))
    line = cli_one_line(["train", str(cfg), *overrides, "--no-progress"])
    assert (needle or path.split(".")[0]) in line, (case, line)
    COUNTS["fuzzed bad configs"] += 1
    COUNTS[f"fuzzed bad configs: {kind}"] += 1
    return line


@SETTINGS
@given(case=bad_value_case(), via_override=st.booleans())
def test_bad_values_are_one_line_naming_the_key(case, via_override):
    with tempfile.TemporaryDirectory() as tmp:
        line = _run(Path(tmp), case, via_override)
        assert f"'{case[0]}'" in line, line


@SETTINGS
@given(case=unknown_key_case(), via_override=st.booleans())
def test_unknown_keys_are_one_line_with_a_suggestion(case, via_override):
    with tempfile.TemporaryDirectory() as tmp:
        line = _run(Path(tmp), case, via_override)
        assert "unknown config key" in line and ("did you mean" in line or "valid keys" in line)


@FEW
@given(lo=st.floats(0.011, 100.0), ratio=st.floats(0.01, 1.0))
def test_inconsistent_values_are_one_line(lo, ratio):
    """VE-SDE with sigma_max <= sigma_min: each value is in range, the pair is not."""
    with tempfile.TemporaryDirectory() as tmp:
        data = {**TINY, "out_dir": str(Path(tmp) / "run")}
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(yaml.safe_dump(data))
        line = cli_one_line(["train", str(cfg), "process.kind=ve", f"process.sigma_min={lo}",
                             f"process.sigma_max={lo * ratio}"])
        assert "sigma_max" in line and "sigma_min" in line, line
        COUNTS["fuzzed bad configs"] += 1
        COUNTS["fuzzed bad configs: inconsistent"] += 1


def _malformed(text: str) -> bool:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return True
    return data is not None and not isinstance(data, dict)


MALFORMED = st.one_of(
    TEXT.filter(_malformed),
    st.builds(lambda a, b: f"{a}: [{b}", LINE, LINE),                 # unclosed flow list
    st.builds(lambda a: f"train:\n  steps: 2\n\tlr: {a}\n", LINE),   # tab indentation
    st.builds(lambda a: f"- {a}\n- 2\n", LINE),                        # a list, not a mapping
    st.builds(lambda k: f"{k}: 1\n{k}: *nope\n", st.sampled_from(["a", "seed"])),  # bad alias
    st.just("[" * 400),                                               # pathologically nested
).filter(_malformed)


@SETTINGS
@given(text=MALFORMED)
def test_malformed_yaml_files_are_one_line(text):
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bad.yaml"
        cfg.write_text(text, encoding="utf-8")
        line = cli_one_line(["train", str(cfg)])
        assert "bad.yaml" in line or "config file" in line, line
        COUNTS["fuzzed bad configs"] += 1
        COUNTS["fuzzed bad configs: malformed_yaml"] += 1


@SETTINGS
@given(raw=st.binary(min_size=1, max_size=64).filter(lambda b: _not_utf8(b)))
def test_binary_config_files_are_one_line(raw):
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bin.yaml"
        cfg.write_bytes(raw)
        assert "not UTF-8" in cli_one_line(["train", str(cfg)])
        COUNTS["fuzzed bad configs"] += 1
        COUNTS["fuzzed bad configs: binary_file"] += 1


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@FEW
@given(name=st.text("abcxyz_/.", min_size=1, max_size=16))
def test_missing_config_files_are_one_line(name):
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "missing" / name
        assert "not found" in cli_one_line(["train", str(target)])
        COUNTS["fuzzed bad configs"] += 1
        COUNTS["fuzzed bad configs: missing_file"] += 1


BAD_OVERRIDES = st.one_of(
    LINE.filter(lambda s: "=" not in s and s.strip() and not s.startswith("-")),  # no '='
    st.builds(lambda v: f"={v}", LINE),                                          # no key
    st.builds(lambda p, v: f"{p}.sub={v}",                                       # value as section
              st.sampled_from([p for p, _, _ in LEAVES]), st.integers()),
)


@SETTINGS
@given(override=BAD_OVERRIDES)
def test_malformed_overrides_are_one_line(override):
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(yaml.safe_dump({**TINY, "out_dir": str(Path(tmp) / "run")}))
        line = cli_one_line(["train", str(cfg), override])
        assert "override" in line or "unrecognized arguments" in line \
            or "config key" in line, line
        COUNTS["fuzzed bad configs"] += 1
        COUNTS["fuzzed bad configs: bad_override"] += 1


@pytest.mark.parametrize("override,needle", [
    ("train.lr=.nan", "'train.lr' must be a finite number"),        # passed every bound check
    ("train.lr=1e400", "'train.lr' must be a finite number"),       # parsed to inf
    (f"train.lr={10**400}", "'train.lr' must be a finite number"),  # OverflowError in float()
    ("train.steps.x=1", "'train.steps' is a value, not a section"),  # TypeError in the merge
    ("seed=-1", "'seed' must be >= 0"),                              # was accepted
    (f"seed={2**64}", "'seed' must be <= 4294967295"),               # OverflowError in jax
    ("name=' '", "'name' must not be empty"),                         # would train into runs/
])
def test_faults_found_by_fuzzing_stay_fixed(override, needle, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "out_dir": str(tmp_path / "run")}))
    assert needle in cli_one_line(["train", str(cfg), override])


@pytest.mark.parametrize("content,needle", [
    (b"- 1\n- 2\n", "must be a mapping of keys to values, got a list"),  # dict(list) TypeError
    (b"just text", "must be a mapping of keys to values, got a str"),
    (b"\xff\xfe\x00", "is not UTF-8 text"),                              # UnicodeDecodeError
    (b"[" * 2000 + b"]" * 2000, "nested too deeply"),                    # RecursionError
])
def test_config_files_found_by_fuzzing_stay_fixed(content, needle, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    assert needle in cli_one_line(["train", str(cfg)])
