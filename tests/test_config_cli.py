"""Configs and CLI: every mistake is one line naming the key and the fix."""

from pathlib import Path

import pytest

from sdegen import ConfigError
from sdegen import config as C
from sdegen.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_shipped_configs_load():
    paths = sorted((REPO / "configs").rglob("*.yaml"))
    assert paths
    for path in paths:
        C.load(path)


@pytest.mark.parametrize("override,message", [
    ("train.lrr=0.1", "unknown config key 'train.lrr'; did you mean 'train.lr'?"),
    ("trian.steps=10", "unknown config key 'trian'; did you mean 'train'?"),
    ("train.steps=abc", "config key 'train.steps' expects int, got str 'abc'"),
    ("train.steps=1.5", "config key 'train.steps' expects int, got float 1.5"),
    ("train.lr=-1", "config key 'train.lr' must be > 0.0, got -1.0"),
    ("process.kind=vpp",
     "must be one of vp, subvp, ve, flow_linear, flow_vp, cnf, sphere_bm, sphere_geodesic, none, "
     "got 'vpp'; did you mean 'vp'?"),
    ("train.steps", "must look like key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        C.from_dict({}, [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_apply_and_coerce():
    cfg = C.from_dict({"train": {"steps": 10}}, ["train.lr=1e-3", "process.kind=ve", "seed=3"])
    assert cfg.train.lr == 1e-3 and cfg.process.kind == "ve" and cfg.seed == 3
    assert cfg.train.steps == 10


@pytest.mark.parametrize("argv,needle", [
    (["train", "configs/toy2d/demo.yaml", "train.stesp=3"], "did you mean 'train.steps'"),
    (["train", "no/such.yaml"], "config file 'no/such.yaml' not found"),
    (["sample", "no/such/run"], "is not a run directory"),
])
def test_cli_errors_are_one_line(argv, needle, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_cli_list(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "configs/toy2d/demo.yaml" in out and "8gaussians" in out
