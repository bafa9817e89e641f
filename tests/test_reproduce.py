"""`sdegen reproduce` and the experiments index, on fake experiments and fake results in a tmp
dir (no training), plus the convention check on the repository's real experiments."""

import json
import textwrap
from pathlib import Path

import pytest

from sdegen import cli
from sdegen import reproduce as R
from sdegen.errors import ConfigError
from sdegen.experiment import cli as cli_script
from sdegen.reproduce_index import collect_runs, render

REPO = Path(__file__).resolve().parents[1]

GOOD = '''
"""A fake experiment: writes one number.

Longer description."""
import json
from pathlib import Path

NAME = "good"
META = {"paper": "Doe 2020, A paper", "reproduces": "Table 9",
        "published": {"score": 0.75}, "full_cost": "~1 min on 2 CPU cores"}


def main(small=False, out="results"):
    d = Path(out) / NAME
    d.mkdir(parents=True, exist_ok=True)
    metrics = {"score": 0.5 if small else 0.7, "setting": {"n": 3}}
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "figure.png").write_bytes(b"")
    print("working")
    return metrics


def headline(metrics):
    return {"score": metrics["score"]}
'''
NO_META = ('"""No META."""\nNAME = "no_meta"\n\n'
           'def main(small=False, out="results"):\n    return {}\n')
BROKEN = '"""Fails to import."""\nimport not_a_module_anywhere  # noqa\n'


@pytest.fixture
def fake(tmp_path):
    root = tmp_path / "experiments"
    root.mkdir()
    (root / "good.py").write_text(textwrap.dedent(GOOD))
    (root / "no_meta.py").write_text(NO_META)
    (root / "broken.py").write_text(BROKEN)
    (root / "_helper.py").write_text("X = 1\n")
    return root


def test_discover_resolve_and_validate(fake):
    found = R.discover(fake)
    assert list(found) == ["broken", "good", "no_meta"]  # `_helper` is not an experiment
    with pytest.raises(ConfigError, match="did you mean good"):
        R.resolve("godo", found)
    with pytest.raises(ConfigError, match=r"no_meta\.py: missing attribute META"):
        R.load(found["no_meta"])
    with pytest.raises(ConfigError, match=r"broken\.py: import failed: ModuleNotFoundError"):
        R.load(found["broken"])
    with pytest.raises(ConfigError, match="--experiments-dir"):
        R.experiments_dir(fake / "missing")


def test_run_one_records_run_info(fake, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["reproduce", "good", "--small", "--out", str(out),
                     "--experiments-dir", str(fake)]) == 0
    info = json.loads((out / "good" / "run_info.json").read_text())
    assert info["mode"] == "small" and info["experiment"] == "good"
    assert info["hardware"]["cpu_count"] >= 1 and info["hardware"]["jax_devices"]
    printed = capsys.readouterr().out
    assert str(out / "good" / "figure.png") in printed
    assert str(out / "good" / "metrics.json") in printed
    # run as a script (`python experiments/good.py ...`), it records its exact command too
    module = R.load(fake / "good.py")
    assert cli_script(module.main, module.__doc__, argv=["--out", str(tmp_path / "s")]) \
        == {"score": 0.7, "setting": {"n": 3}}
    info = json.loads((tmp_path / "s" / "good" / "run_info.json").read_text())
    assert info["mode"] == "full" and info["experiment"] == "good"
    assert info["command"] == f"python experiments/good.py --out {tmp_path / 's'}"
    text = render(fake, tmp_path / "s")
    assert f"The full run was made with `python experiments/good.py --out {tmp_path / 's'}`." \
        in text
    assert "The small run was made" not in text


def test_list_reports_broken_and_exits_1(fake, capsys):
    assert cli.main(["reproduce", "--list", "--experiments-dir", str(fake)]) == 1
    printed = capsys.readouterr().out
    assert "good" in printed and "Doe 2020" in printed
    assert "broken" in printed and "BROKEN" in printed and "no_meta" in printed


@pytest.mark.slow  # two fresh processes importing jax; `make reproduce-small` runs this path
def test_run_all_continues_past_a_failure(fake, tmp_path, capsys):
    (fake / "no_meta.py").unlink()  # one good, one broken: two fresh processes
    failed = R.run_all(small=True, out=tmp_path / "res", root=fake)
    assert failed == 1
    printed = capsys.readouterr().out
    assert "| good | ok |" in printed
    assert "| broken | FAILED (exit 2) |" in printed and "import failed" in printed
    assert (tmp_path / "res" / "good" / "run_info.json").is_file()


def _fake_run(results, name, mode, date, score, **extra):
    d = results / f"{mode}-{date}" / name
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"score": score, **extra}))
    (d / "run_info.json").write_text(json.dumps({
        "experiment": name, "mode": mode, "date": date, "wall_s": 12.3, "git_commit": "abc",
        "hardware": {"cpu": "FakeCPU 9000", "cpu_count": 2, "jax_devices": ["TFRT_CPU_0"]}}))


def test_index_from_fake_results(fake, tmp_path):
    results = tmp_path / "results"
    _fake_run(results, "good", "small", "2026-01-01T00:00:00+00:00", 0.125)
    _fake_run(results, "good", "small", "2026-02-01T00:00:00+00:00", 0.25)  # the latest
    runs = collect_runs(results)
    assert runs[("good", "small")][1]["score"] == 0.25
    text = render(fake, results)
    assert "| score | 0.75 | 0.25 |" in text  # published beside the latest small run
    assert "0.125" not in text
    assert "2026-02-01" in text and "FakeCPU 9000, 2 cores" in text
    assert "No full run recorded yet." in text
    assert "| broken | does not load |" in text
    _fake_run(results, "good", "full", "2026-03-01T00:00:00+00:00", 0.625)
    text = render(fake, results)
    assert "| score | 0.75 | 0.25 | 0.625 |" in text
    assert "No full run recorded yet." not in text.split("## good")[1].split("## ")[0]
    assert "| full | 2026-03-01T00:00:00+00:00 | FakeCPU 9000, 2 cores, jax TFRT_CPU_0 | 12 s |" \
        in text
    # a full run that resumed earlier calls' training states what the training cost
    _fake_run(results, "good", "full", "2026-04-01T00:00:00+00:00", 0.5, resumed=True,
              training_wall_s_all_calls=9000.0)
    text = render(fake, results)
    assert "| 12 s (resumed; training over all calls 2.5 h) |" in text
    assert "was made with" not in text  # the fake runs record no command
    assert "| score | 0.75 | 0.25 | 0.5 |" in text  # the flag and the total are not quantities


def test_repository_experiments_follow_the_convention():
    found = R.discover(R.experiments_dir())
    assert found, "no experiments found"
    for path in found.values():
        module = R.load(path)  # raises a ConfigError naming the file and what is missing
        assert module.META["full_cost"]


def test_index_keeps_sections_of_experiments_without_runs(fake, tmp_path):
    # results are git-ignored: an experiment with no run under RESULTS keeps its old section
    results = tmp_path / "results"
    _fake_run(results, "good", "full", "2026-03-01T00:00:00+00:00", 0.625)
    old = render(fake, results)
    assert "| score | 0.75 | 0.625 |" in old
    _fake_run(tmp_path / "other", "no_meta", "small", "2026-03-02T00:00:00+00:00", 1.0)
    new = render(fake, tmp_path / "other", previous=old)
    assert "| score | 0.75 | 0.625 |" in new  # kept: `good` has no run under `other`
    assert "kept from the previous index, with no run there: good" in new
    assert new.count("## good") == 1 and new.count("| good |") == 1
    assert "| score | 0.75 | 0.625 |" not in render(fake, tmp_path / "other")
