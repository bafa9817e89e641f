"""Fault-injection suite: shared tiny run and the counts the suite reports at the end.

`TINY` is the smallest config that still exercises every part of a run (MLP, Adam, EMA,
orbax checkpoints every 2 steps), so each training call compiles and runs in seconds."""

import json
from collections import Counter

import pytest

from sdegen import config as C

TINY = {
    "name": "tiny",
    "model": {"width": 8, "depth": 1, "n_freq": 2},
    "train": {"steps": 4, "batch_size": 16, "ckpt_every": 2, "log_every": 1, "keep": 10,
              "warmup": 2},
    "sample": {"n": 16},
    "eval": {"n_test": 16},
}

COUNTS: Counter = Counter()
"""Cases tried per category, printed after the run (`pytest tests/reliability`)."""


def tiny_cfg(out_dir, **sections) -> C.Config:
    data = json.loads(json.dumps(TINY))
    for section, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    data["out_dir"] = str(out_dir)
    return C.from_dict(data)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A trained 4-step run with checkpoints at steps 2 and 4 (do not modify: copy it)."""
    from sdegen.train import train

    run = tmp_path_factory.mktemp("tiny") / "run"
    train(tiny_cfg(run), progress=False)
    return run


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    w = terminalreporter.write_line
    w("reliability counts (cases tried; every one passed its check unless a test failed):")
    for key, value in sorted(COUNTS.items()):
        w(f"  {key}: {value}")
    files = sum(v for k, v in COUNTS.items() if k.startswith("fuzzed data files"))
    total = COUNTS["fuzzed bad configs"] + files
    if total:
        w(f"  fuzzed bad inputs in total: {total} (configs {COUNTS['fuzzed bad configs']}, "
          f"data files {files})")
