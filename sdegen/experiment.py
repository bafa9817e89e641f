"""What every script in `experiments/` shares: its command line, writing its metrics, and
training a model from a shipped config.

The experiment convention (read by `sdegen reproduce`, see `sdegen.reproduce`): a module
`experiments/NAME.py` with

- a module docstring whose first sentence (or first line) is the title;
- `NAME = "NAME"` (the file's stem);
- `META = {"paper": "Authors YEAR, Title", "reproduces": "Table/Fig ...",
  "published": {...} or None, "full_cost": "~N min on 2 CPU cores"}`;
- `main(small: bool = False, out="results") -> dict`, which writes `OUT/NAME/metrics.json`
  (with `write_metrics`) and PNG figures next to it, and returns the metrics;
- optionally `headline(metrics) -> dict`, the few numbers the experiments index shows;
- `if __name__ == "__main__": cli(main, __doc__)`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import config as C
from .reproduce import write_run_info
from .train import load_run, train

REPO = Path(__file__).resolve().parents[1]


def write_metrics(out_dir: str | Path, metrics: dict, *, indent: int = 2) -> Path:
    """Write `metrics` as `out_dir/metrics.json` and return its path. Values JSON lacks
    (numpy scalars, paths) are written as floats or strings."""
    path = Path(out_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=indent, default=_plain))
    return path


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def cli(main: Callable[..., dict], doc: str | None,
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        argv: list[str] | None = None) -> dict:
    """The command line of an experiment script: `--small`, `--out DIR`, plus whatever
    `add_arguments(parser)` adds; every option is passed to `main` by its name. Like
    `sdegen reproduce`, it writes `OUT/NAME/run_info.json`, with the exact command, so that
    a run with non-default options says so in the experiments index."""
    title = " ".join((doc or "").strip().split("\n\n")[0].split()) or None  # 1st paragraph
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--small", action="store_true",
                        help="the CI setting: minutes on 2 CPU cores")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    if add_arguments is not None:
        add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    options = vars(parser.parse_args(argv))
    started, t0 = datetime.datetime.now(datetime.UTC), time.perf_counter()
    metrics = main(**options)
    script = Path(main.__code__.co_filename)  # experiments/NAME.py
    out_dir = Path(options["out"]) / script.stem
    if (out_dir / "metrics.json").is_file():
        write_run_info(out_dir, mode="small" if options["small"] else "full", started=started,
                       wall=time.perf_counter() - t0, root=script.parent,
                       command=shlex.join(["python", f"experiments/{script.name}", *argv]),
                       returned_metrics=isinstance(metrics, dict))
    return metrics


def train_from_config(config: str | Path, run_dir: str | Path, steps: int,
                      overrides: tuple[str, ...] = ()):
    """Train the shipped config `config` (a path relative to the repository) for `steps` steps
    into `run_dir`, with dotted `overrides`, checkpointing only at the end; return
    `(cfg, process, field)` of the trained run."""
    cfg = C.load(REPO / config, [f"out_dir={run_dir}", f"train.steps={steps}",
                                 f"train.ckpt_every={steps}", *overrides])
    train(cfg, progress=False)
    _, field = load_run(cfg.run_dir)
    return cfg, C.build_process(cfg.process), field
