"""Atomic, verifiable checkpoints: what orbax 0.12.8 guarantees by itself (a killed write is a
tmp dir, never listed), what sdegen adds (commit marker, digest, structure check), and that a
run directory with a half-written newest step restores — and resumes from — the previous
complete one."""

import shutil

import numpy as np
import pytest

from sdegen import TrainingError
from sdegen import checkpoints as ckpt
from sdegen import config as C
from sdegen.train import init_state, restore_verified

from .conftest import COUNTS, tiny_cfg


def _copy(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def _restore(run, cfg=None):
    cfg = cfg or C.load(run / "config.yaml")
    return restore_verified(run, init_state(cfg)[0])


def _truncate_meta(step_dir):
    meta = step_dir / "meta" / "metadata"
    meta.write_bytes(meta.read_bytes()[: meta.stat().st_size // 2])


def _half_written(run):
    """Step 6 = a copy of step 4 with one of its files truncated, marker kept."""
    src, dst = run / "checkpoints" / "4", run / "checkpoints" / "6"
    shutil.copytree(src, dst)
    _truncate_meta(dst)
    return dst


def test_orbax_tmp_dir_is_never_latest(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path)
    shutil.copytree(run / "checkpoints" / "4", run / "checkpoints" / "6.orbax-checkpoint-tmp-1")
    state, got = _restore(run)
    assert got.step == 4 and got.skipped == []


@pytest.mark.parametrize("damage", ["no_marker", "truncated_meta", "flipped_byte", "no_state"])
def test_damaged_newest_step_falls_back_to_previous(tiny_run, tmp_path, damage):
    run = _copy(tiny_run, tmp_path)
    step4 = run / "checkpoints" / "4"
    if damage == "no_marker":  # orbax alone would list this step as complete
        (step4 / ckpt.COMMIT_MARKER).unlink()
    elif damage == "truncated_meta":
        _truncate_meta(step4)
    elif damage == "flipped_byte":  # orbax alone restores these bytes silently
        data = max((p for p in (step4 / "state").rglob("*") if p.is_file()),
                   key=lambda p: p.stat().st_size)
        raw = bytearray(data.read_bytes())
        raw[-5] ^= 0xFF
        data.write_bytes(bytes(raw))
    else:
        shutil.rmtree(step4 / "state")
    _, got = _restore(run)
    assert got.step == 2
    assert [s for s, _ in got.skipped] == [int(step4.name)]
    COUNTS["damaged checkpoints detected"] += 1


def test_flipped_byte_is_not_restored_silently_by_orbax_alone(tiny_run, tmp_path):
    """The reason for the digest: orbax restores a checkpoint whose array bytes changed."""
    run = _copy(tiny_run, tmp_path)
    clean = _restore(run)[1].state
    step4 = run / "checkpoints" / "4"
    data = max((p for p in (step4 / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[-5] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert ckpt.digest(clean) != ckpt.digest(_restore(run)[1].state)


@pytest.mark.slow
def test_resume_with_half_written_step_continues_from_previous(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path)
    _half_written(run)
    assert ckpt.manager(run / "checkpoints").latest_step() == 6  # orbax would pick it
    from sdegen.train import train

    train(tiny_cfg(run, train={"steps": 6}), progress=False)
    _, got = _restore(run)
    assert got.step == 6 and got.skipped == []
    assert (run / "checkpoints_corrupt" / "6").is_dir()
    steps = [int(line.split(",")[0].split(":")[1])
             for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_no_intact_checkpoint_lists_why(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path)
    for s in ("2", "4"):
        (run / "checkpoints" / s / ckpt.COMMIT_MARKER).unlink()
    with pytest.raises(TrainingError, match=r"no intact checkpoint .*step 4: no commit_success"):
        _restore(run)


def test_restore_names_leaves_that_differ_from_config(tiny_run, tmp_path):
    cfg = tiny_cfg(tmp_path / "x", model={"width": 6})
    with pytest.raises(TrainingError) as err:
        restore_verified(tiny_run, init_state(cfg)[0])
    msg = str(err.value)
    assert "does not fit the config's model" in msg and "\n" not in msg
    assert "has shape" in msg and ", 8)" in msg and ", 6)" in msg, msg


def test_table_diff_reports_missing_and_extra():
    want = {"a": [[2], "float32"], "b": [[3], "float32"]}
    have = {"a": [[2], "float64"], "c": [[3], "float32"]}
    diff = ckpt.table_diff(have, want)
    assert diff == ["a has dtype float64 in the checkpoint, float32 in the config's model",
                    "b is missing from the checkpoint",
                    "c is in the checkpoint but not in the config's model"]


def test_digest_sees_every_bit():
    x = {"w": np.arange(4.0)}
    y = {"w": np.arange(4.0)}
    y["w"][2] = np.nextafter(2.0, 3.0)
    assert ckpt.digest(x) != ckpt.digest(y) and ckpt.digest(x) == ckpt.digest({"w": np.arange(4.0)})
