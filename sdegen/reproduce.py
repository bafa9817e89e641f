"""`sdegen reproduce`: find the experiments of the source tree, check their convention, run one
(or all, each in a fresh process) and record how, when and where it ran.

The experiments are the files `experiments/*.py` next to the `sdegen` package (a clone or an
editable install); files whose name starts with `_` are helpers, not experiments. Each is
imported by its path and must follow the convention described in `sdegen.experiment`.
A run writes `OUT/NAME/run_info.json` beside the experiment's `metrics.json`: mode, date,
wall time, hardware, git commit and the command — what the experiments index reports.
"""

from __future__ import annotations

import datetime
import difflib
import importlib.util
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from .errors import EXIT_DATA_MISSING, ConfigError

META_KEYS = ("paper", "reproduces", "published", "full_cost")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def experiments_dir(override: str | Path | None = None) -> Path:
    """The `experiments/` folder: `override` if given, else the one next to the installed
    `sdegen` package (present in a clone or an editable install, absent from a wheel)."""
    root = Path(override) if override is not None else PACKAGE_ROOT / "experiments"
    if not root.is_dir():
        raise ConfigError(
            f"no experiments folder at {root}: `sdegen reproduce` needs a source checkout "
            "(git clone, then `pip install -e .`), or pass --experiments-dir DIR")
    return root


def discover(root: Path) -> dict[str, Path]:
    """Experiment name (file stem) → path, sorted by name."""
    return {p.stem: p for p in sorted(root.glob("*.py")) if not p.name.startswith("_")}


def resolve(name: str, found: dict[str, Path]) -> Path:
    """The path of experiment `name`, or a one-line error naming the closest matches."""
    if name in found:
        return found[name]
    close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.4)
    hint = (f"did you mean {', '.join(close)}?" if close
            else "see `sdegen reproduce --list`")
    raise ConfigError(f"no experiment named {name!r}: {hint}")


def load(path: Path) -> ModuleType:
    """Import `path` as a module and check the experiment convention; a failed import or a
    missing piece is one line naming the file."""
    spec = importlib.util.spec_from_file_location(f"sdegen_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # any failure of a user's script, reported as one line
        msg = str(err).strip().splitlines()
        raise ConfigError(f"{path}: import failed: {type(err).__name__}: "
                          f"{msg[0] if msg else ''}") from err
    validate(module, path)
    return module


def validate(module: ModuleType, path: Path) -> None:
    """Raise a one-line ConfigError naming `path` and the first missing or malformed part of
    the convention (docstring, NAME, META and its keys, main(small, out))."""
    def bad(what: str):
        return ConfigError(f"{path}: {what} (see the convention in sdegen/experiment.py)")

    if not (module.__doc__ or "").strip():
        raise bad("no module docstring (its first sentence is the title)")
    name = getattr(module, "NAME", None)
    if name is None:
        raise bad("missing attribute NAME")
    if name != path.stem:
        raise bad(f"NAME = {name!r} differs from the file name {path.stem!r}")
    meta = getattr(module, "META", None)
    if not isinstance(meta, dict):
        raise bad("missing attribute META (a dict)")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise bad(f"META lacks the key(s) {', '.join(missing)}")
    main = getattr(module, "main", None)
    if not callable(main):
        raise bad("missing function main(small=False, out='results')")
    params = inspect.signature(main).parameters
    for arg in ("small", "out"):
        if arg not in params:
            raise bad(f"main() has no parameter {arg!r}")
    headline = getattr(module, "headline", None)
    if headline is not None and not callable(headline):
        raise bad("headline is not a function of the metrics")


def title(module: ModuleType, width: int = 100) -> str:
    """The experiment's title: the start of its docstring up to the first sentence end, dash
    or colon (a first line wrapped mid-sentence is joined with the next), at most `width`
    characters."""
    para = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    cuts = [i for i in (para.find(". "), para.find(" — "), para.find(": ")) if i > 0]
    text = para[:min(cuts)] if cuts else para.rstrip(".")
    return text if len(text) <= width else text[:width - 1].rsplit(" ", 1)[0] + "…"


def hardware() -> dict:
    """Where this process runs: platform, CPU model and usable cores, JAX devices."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    from .environment import versions

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cpu_count": cores, "jax": jax.__version__,
            "jax_devices": [str(d) for d in jax.devices()], "versions": versions()}


def git_commit(root: Path) -> str | None:
    """HEAD of the repository holding `root`, with `+dirty` when it has uncommitted changes;
    None outside git."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def write_run_info(out_dir: Path, *, mode: str, started: datetime.datetime, wall: float,
                   command: str, root: str | Path, returned_metrics: bool = True) -> dict:
    """Write `out_dir/run_info.json` (mode, date, wall time, hardware, git commit and the exact
    command) and return it. `run_one` calls this; so does an experiment script run directly
    with non-default flags, so that its table row states what was actually run."""
    info = {"experiment": Path(out_dir).name, "mode": mode,
            "date": started.isoformat(timespec="seconds"), "wall_s": round(wall, 1),
            "hardware": hardware(), "git_commit": git_commit(Path(root)), "command": command,
            "returned_metrics": returned_metrics}
    (Path(out_dir) / "run_info.json").write_text(json.dumps(info, indent=2))
    return info


def run_one(name: str, *, small: bool, out: str | Path,
            root: str | Path | None = None) -> dict:
    """Run experiment `name` in this process; write `OUT/NAME/run_info.json`; print where
    the figures and metrics went. Returns the run info."""
    root = experiments_dir(root)
    path = resolve(name, discover(root))
    module = load(path)
    mode = "small" if small else "full"
    cost = "minutes" if small else module.META["full_cost"]
    print(f"reproduce {name} ({mode}, expected {cost}): {title(module)}", flush=True)
    print(f"  paper: {module.META['paper']}; reproduces {module.META['reproduces']}",
          flush=True)
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.perf_counter()
    metrics = module.main(small=small, out=out)
    wall = time.perf_counter() - t0
    out_dir = Path(out) / name
    if not (out_dir / "metrics.json").is_file():
        raise ConfigError(f"{path}: main() wrote no {out_dir / 'metrics.json'}; an experiment "
                          "writes OUT/NAME/metrics.json (sdegen.experiment.write_metrics)")
    info = write_run_info(out_dir, mode=mode, started=started, wall=wall,
                          command=f"sdegen reproduce {name}{' --small' if small else ''}",
                          root=root, returned_metrics=isinstance(metrics, dict))
    figures = sorted(out_dir.glob("*.png"))
    print(f"{name}: done in {wall:.0f} s", flush=True)
    for fig in figures:
        print(f"  figure  -> {fig}")
    print(f"  metrics -> {out_dir / 'metrics.json'} (run info: run_info.json)", flush=True)
    return info


def run_all(*, small: bool, out: str | Path, root: str | Path | None = None) -> int:
    """Run every experiment, each in a fresh `python -m sdegen.cli reproduce` process, their
    output streamed through; print a summary table. Returns the number of failures."""
    root = experiments_dir(root)
    names = list(discover(root))
    rows = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", flush=True)
        cmd = [sys.executable, "-m", "sdegen.cli", "reproduce", name, "--out", str(out),
               "--experiments-dir", str(root), *(["--small"] if small else [])]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        last = ""
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip():
                last = line.strip()
        rc = proc.wait()
        rows.append((name, rc, time.perf_counter() - t0, "" if rc == 0 else last))
    failed = sum(rc not in (0, EXIT_DATA_MISSING) for _, rc, _, _ in rows)
    skipped = sum(rc == EXIT_DATA_MISSING for _, rc, _, _ in rows)
    print(f"\nreproduce --all{' --small' if small else ''}: "
          f"{len(rows) - failed - skipped}/{len(rows)} passed, {skipped} skipped (their data "
          f"files are absent), outputs under {out}/")
    print("| experiment | status | wall s | error |")
    print("|---|---|---|---|")
    for name, rc, wall, last in rows:
        status = ("ok" if rc == 0 else "skipped: data absent" if rc == EXIT_DATA_MISSING
                  else f"FAILED (exit {rc})")
        print(f"| {name} | {status} | {wall:.0f} | {last[:160]} |")
    return failed


def list_experiments(root: str | Path | None = None) -> int:
    """Print every experiment (title, paper, what it reproduces, full cost); those that fail
    to import or break the convention are listed with their error. Returns how many broke."""
    root = experiments_dir(root)
    broken = 0
    print(f"experiments in {root}/:")
    for name, path in discover(root).items():
        try:
            module = load(path)
        except ConfigError as err:
            broken += 1
            print(f"  {name:24s} BROKEN: {err}")
            continue
        meta = module.META
        print(f"  {name:22s} {title(module)}\n  {'':22s} {meta['reproduces']}; "
              f"full run {meta['full_cost']}\n  {'':22s} {meta['paper']}")
    print("run one: sdegen reproduce NAME [--small] [--out results]")
    return broken
