"""Data-file fuzzing through one table of loaders (`TARGETS`). What exists on this branch:
checkpoint directories (restored by `sdegen.train.restore_verified`, which may recover by
falling back to an intact step — never by restoring bytes that were not saved) and run
directories given to `sdegen sample` / `sdegen evaluate` (config.yaml corrupted, checkpoints
removed). The earth-CSV loader (`sdegen.data.sphere.read_latlon_csv`) is fuzzed with row-level
corruptions (wrong column count, non-numeric, NaN, out-of-range latitude/longitude, empty,
binary, missing); image loaders plug in with one `FileTarget` when they land."""

import random
import shutil
from functools import partial
from pathlib import Path

import pytest
import yaml

from sdegen import checkpoints as ckpt
from sdegen import config as C
from sdegen.data.sphere import read_latlon_csv
from sdegen.train import init_state, restore_verified

from . import fuzz
from .conftest import COUNTS

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _copy_run(tiny_run: Path, workdir: Path) -> Path:
    run = workdir / "run"
    shutil.copytree(tiny_run, run)
    return run


def _restore(run: Path):
    cfg = C.load(run / "config.yaml")
    return restore_verified(run, init_state(cfg)[0])[1]


def _saved_digests(tiny_run: Path) -> dict[int, str]:
    out = {}
    for s in (2, 4):
        meta = (tiny_run / "checkpoints" / str(s) / "meta" / "metadata").read_text()
        out[s] = __import__("json").loads(meta)["digest"]
    return out


def _checkpoint_target(tiny_run: Path) -> fuzz.FileTarget:
    """Corrupt one random file (or the whole state dir) of the newest step, 4."""
    saved = _saved_digests(tiny_run)

    def on_random_file(corrupt):
        def apply(run: Path, rng: random.Random) -> str:
            files = sorted(p for p in (run / "checkpoints" / "4").rglob("*") if p.is_file())
            return corrupt(rng.choice(files), rng)
        return apply

    corruptions = {name: on_random_file(fn) for name, fn in fuzz.BYTE_CORRUPTIONS.items()}
    corruptions["drop_state"] = lambda run, rng: shutil.rmtree(run / "checkpoints/4/state") \
        or "deleted state/"

    def accept(run: Path, got) -> bool:
        # a recovery must return exactly the bytes of an intact step, and the newest one
        # unless step 4 was reported as skipped
        if ckpt.digest(got.state) != saved.get(got.step):
            return False
        return got.step == 4 or [s for s, _ in got.skipped] == [4]

    return fuzz.FileTarget("checkpoint dir", partial(_copy_run, tiny_run), _restore,
                           corruptions, accept)


def _bad_yaml(run: Path, rng: random.Random) -> str:
    """Insert a syntax breaker at a random place (retried until PyYAML refuses the text)."""
    p = run / "config.yaml"
    text = p.read_text()
    while True:
        cut = rng.randrange(len(text))
        bad = text[:cut] + rng.choice(["\t", ": [", "{", "\n\t- x: ]", "\n  - "]) + text[cut:]
        try:
            yaml.safe_load(bad)
        except yaml.YAMLError:
            p.write_text(bad)
            return f"broke config.yaml's syntax at {cut}"


def _unknown_key(run: Path, rng: random.Random) -> str:
    p = run / "config.yaml"
    p.write_text(p.read_text() + f"zzz_{rng.randrange(1000)}: 1\n")
    return "added an unknown key to config.yaml"


def _wrong_model(run: Path, rng: random.Random) -> str:
    p = run / "config.yaml"
    p.write_text(p.read_text().replace("width: 8", f"width: {rng.randrange(9, 40)}"))
    return "changed model.width in config.yaml"


def _no_checkpoints(run: Path, rng: random.Random) -> str:
    shutil.rmtree(run / "checkpoints")
    return "deleted checkpoints/"


def _cli_target(tiny_run: Path, command: str) -> fuzz.FileTarget:
    def load(run: Path):
        raise fuzz.SdegenError(fuzz.cli_one_line([command, str(run)], stub_train=False))

    corruptions = {"bad_yaml": _bad_yaml, "unknown_key": _unknown_key,
                   "wrong_model": _wrong_model, "no_checkpoints": _no_checkpoints,
                   "no_config": lambda run, rng: fuzz.delete(run / "config.yaml", rng),
                   "binary_config": lambda run, rng: (run / "config.yaml").write_bytes(
                       b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(32))) or "binary"}
    return fuzz.FileTarget(f"run dir via `sdegen {command}`", partial(_copy_run, tiny_run),
                           load, corruptions)


EARTH_FIXTURE = Path(__file__).parents[1] / "data" / "quakes_tiny.csv"


def _on_data_row(edit):
    """Corrupt one random data row (not the comments or the header) of an earth CSV."""
    def apply(path: Path, rng: random.Random) -> str:
        lines = path.read_text().splitlines()
        rows = [i for i, ln in enumerate(lines) if ln and ln[0] in "-0123456789"]
        i = rng.choice(rows)
        lat, lon = lines[i].split(",")
        lines[i], what = edit(lat, lon, rng)
        path.write_text("\n".join(lines) + "\n")
        return f"{what} on line {i + 1}"
    return apply


EARTH_CORRUPTIONS = {
    "extra_column": _on_data_row(lambda a, b, r: (f"{a},{b},{r.randrange(9)}", "3 columns")),
    "one_column": _on_data_row(lambda a, b, r: (a, "1 column")),
    "non_numeric": _on_data_row(lambda a, b, r: (f"{a},{r.choice(['abc', '1.2.3', '--'])}",
                                                 "non-numeric")),
    "nan": _on_data_row(lambda a, b, r: (f"{r.choice(['nan', 'inf', '-inf'])},{b}", "NaN/inf")),
    "latitude_range": _on_data_row(lambda a, b, r: (f"{r.uniform(90.01, 400):.3f},{b}",
                                                    "latitude > 90")),
    "longitude_range": _on_data_row(lambda a, b, r: (f"{a},{-r.uniform(180.01, 720):.3f}",
                                                     "longitude < -180")),
    "empty": fuzz.empty,
    "binary": lambda path, rng: path.write_bytes(
        b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(32))) or "binary bytes",
    "delete": fuzz.delete,
}


def _earth_target() -> fuzz.FileTarget:
    def make(work: Path) -> Path:
        path = work / "quakes.csv"
        shutil.copy(EARTH_FIXTURE, path)
        return path

    return fuzz.FileTarget("earth CSV", make, read_latlon_csv, EARTH_CORRUPTIONS)


@pytest.fixture(scope="module")
def targets(tiny_run):
    return [_checkpoint_target(tiny_run), _cli_target(tiny_run, "sample"),
            _cli_target(tiny_run, "evaluate"), _earth_target()]


@pytest.mark.parametrize("cases_per_corruption", [
    1, pytest.param(6, marks=pytest.mark.slow)])
def test_corrupted_data_files_are_refused_or_recovered_exactly(targets, tmp_path,
                                                               cases_per_corruption):
    rng = random.Random(9 + cases_per_corruption)
    outcomes = {}
    for target in targets:
        for corruption in target.corruptions:
            for i in range(cases_per_corruption):
                work = tmp_path / f"{target.name[:3]}-{corruption}-{i}"
                work.mkdir()
                outcome = fuzz.run_file_case(target, work, corruption, rng)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                COUNTS[f"fuzzed data files ({target.name}) {outcome}"] += 1
                shutil.rmtree(work)
    assert outcomes.get("refused", 0) + outcomes.get("recovered", 0) == sum(outcomes.values())
