"""Configs and CLI: every mistake is one line naming the key and the fix."""

import os
import subprocess
import sys
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
     "must be one of vp, subvp, ve, flow_linear, flow_vp, cnf, sphere_bm, sphere_geodesic, "
     "none, got 'vpp'; did you mean 'vp'?"),
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


def test_compile_cache_directory_follows_the_environment(tmp_path):
    """In a fresh interpreter (this one already has a cache): off, XDG default, explicit path,
    and a compiled program lands in the directory."""
    script = f"""
import jax
from sdegen.cli import enable_compile_cache
assert enable_compile_cache({{"SDEGEN_COMPILE_CACHE": "off"}}) is None
assert not jax.config.jax_compilation_cache_dir
got = enable_compile_cache({{"XDG_CACHE_HOME": {str(tmp_path / "xdg")!r}}})
assert got == {str(tmp_path / "xdg" / "sdegen" / "jax")!r}, got
jax.config.update("jax_compilation_cache_dir", None)
got = enable_compile_cache({{"SDEGEN_COMPILE_CACHE": {str(tmp_path / "c")!r}}})
assert got == {str(tmp_path / "c")!r} and enable_compile_cache({{}}) == got, got
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.jit(lambda x: x * 3 + 1)(2.0).block_until_ready()
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDEGEN_", "JAX_COMP"))}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any((tmp_path / "c").iterdir())  # the program was written to the chosen directory


def test_shipped_configs_are_addressable_by_name(tmp_path, monkeypatch, capsys):
    """`sdegen train toy2d/demo` finds the config installed with the package (with or without
    .yaml, or as configs/...); a local file of the same name wins; `sdegen list` names them."""
    shipped = C.SHIPPED / "toy2d" / "demo.yaml"
    monkeypatch.chdir(tmp_path)
    for name in ("toy2d/demo", "toy2d/demo.yaml", "configs/toy2d/demo.yaml"):
        assert C.find_config(name) == shipped
    local = tmp_path / "toy2d" / "demo.yaml"
    local.parent.mkdir()
    local.write_text("name: mine\n")
    assert C.find_config("toy2d/demo.yaml") == Path("toy2d/demo.yaml")
    assert C.load("toy2d/demo.yaml").name == "mine"
    assert C.load("toy2d/demo").name == "demo"  # no local file by that exact name
    with pytest.raises(C.ConfigError, match="did you mean 'toy2d/demo'"):
        C.find_config("toy2d/dem")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "  toy2d/demo " in out and "  sphere/rfm_volcano " in out
