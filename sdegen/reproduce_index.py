"""The experiments index, `experiments/README.md`, generated from the results JSON: per
experiment its paper, the figure or table it reproduces, the published numbers beside
sdegen's (small and full runs, each with date and hardware) and the command.

The runs are found as `RESULTS/**/NAME/run_info.json` (written by `sdegen reproduce`) with the
experiment's `metrics.json` beside it; the latest run of each mode is shown. An experiment's
numbers are its `headline(metrics)` when it defines one, else the first numeric leaves of
its metrics. Results are git-ignored and no one machine holds all of them, so `write_index`
keeps, from the index it replaces, the section of every experiment that has no run under
`RESULTS` at all (the intro line names them); an experiment with any run there is rebuilt from
its runs alone. Likelihood experiments report test NLL as mean ± s.e. with the median and the
number of outliers (`sdegen.runs.nll`), as strings their `headline` formats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError
from .reproduce import discover, experiments_dir, load, title

MAX_LEAVES = 8  # numbers shown for an experiment without a headline()
SKIP = ("setting", "settings", "wall", "nfe", "figures", "run_dir", "table", "small")


def collect_runs(results: Path) -> dict[tuple[str, str], tuple[dict, dict]]:
    """(experiment, mode) → (run_info, metrics) of the latest run under `results`."""
    runs: dict[tuple[str, str], tuple[dict, dict]] = {}
    for info_path in sorted(Path(results).rglob("run_info.json")):
        metrics_path = info_path.parent / "metrics.json"
        try:
            info = json.loads(info_path.read_text())
            metrics = json.loads(metrics_path.read_text())
        except (OSError, ValueError):
            continue  # an interrupted or foreign run: not part of the index
        key = (info.get("experiment", info_path.parent.name), info.get("mode", "?"))
        if key not in runs or info.get("date", "") > runs[key][0].get("date", ""):
            runs[key] = (info, metrics)
    return runs


def numeric_leaves(metrics, prefix: str = "") -> dict[str, float]:
    """Dotted path → number for the numeric leaves of nested dicts, skipping settings, wall
    times and NFE (how a run was made, not what it found)."""
    found: dict[str, float] = {}
    if isinstance(metrics, dict):
        for k, v in metrics.items():
            if any(s in str(k).lower() for s in SKIP):
                continue
            found.update(numeric_leaves(v, f"{prefix}{k}."))
    elif isinstance(metrics, int | float) and not isinstance(metrics, bool):
        found[prefix.rstrip(".")] = metrics
    return found


def wall_cell(info: dict, metrics: dict) -> str:
    """The run's wall time; for a run that resumed earlier calls' work (metrics `resumed`),
    also the training time of all calls (`training_wall_s_all_calls`), which is the cost."""
    cell = f"{info.get('wall_s', 0):.0f} s"
    total = metrics.get("training_wall_s_all_calls")
    if metrics.get("resumed") and isinstance(total, int | float):
        cell += f" (resumed; training over all calls {total / 3600:.1f} h)"
    return cell


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return " / ".join(fmt(v) for v in value)
    return str(value).replace("|", "\\|")


def hardware_line(info: dict) -> str:
    hw = info.get("hardware", {})
    devices = ", ".join(hw.get("jax_devices", [])) or "?"
    return f"{hw.get('cpu', '?')}, {hw.get('cpu_count', '?')} cores, jax {devices}"


def section(name: str, doc_title: str, meta: dict, headline: Callable[[dict], dict] | None,
            runs: dict) -> str:
    lines = [f"## {name}: {doc_title}", "",
             f"- **Paper:** {meta['paper']}",
             f"- **Reproduces:** {meta['reproduces']}",
             f"- **Command:** `sdegen reproduce {name}` (full, {meta['full_cost']}); "
             f"`sdegen reproduce {name} --small` (CI setting)", ""]
    numbers = {}
    for mode in ("small", "full"):
        if (name, mode) in runs:
            metrics = runs[(name, mode)][1]
            numbers[mode] = (headline(metrics) if headline
                             else dict(list(numeric_leaves(metrics).items())[:MAX_LEAVES]))
    published = meta["published"] or {}
    quantities = list(published) + [q for m in numbers.values() for q in m
                                    if q not in published]
    quantities = list(dict.fromkeys(quantities))
    if not published:
        lines.append("Published numbers: none comparable at this scale (qualitative figures, or "
                     "numbers on other data; see the experiment's docstring).")
        lines.append("")
    modes = [m for m in ("small", "full") if m in numbers]
    if quantities:
        head = "| quantity | published |" + "".join(f" sdegen {m} |" for m in modes)
        lines += [head, "|---" * (2 + len(modes)) + "|"]
        for q in quantities:
            cells = [fmt(published[q]) if q in published else "—"]
            cells += [fmt(numbers[m][q]) if q in numbers[m] else "—" for m in modes]
            lines.append(f"| {fmt(q)} | " + " | ".join(cells) + " |")
        lines.append("")
    if modes:
        lines += ["| run | date (UTC) | hardware | wall | commit |", "|---|---|---|---|---|"]
        made_with = []  # runs made with other options than the standard command say so
        for m in modes:
            info, metrics = runs[(name, m)]
            lines.append(f"| {m} | {info.get('date', '?')} | {hardware_line(info)} | "
                         f"{wall_cell(info, metrics)} | {info.get('git_commit') or '?'} |")
            command = info.get("command")
            if command and command != f"sdegen reproduce {name}{' --small' * (m == 'small')}":
                made_with += [f"The {m} run was made with `{command}`.", ""]
        lines += ["", *made_with]
    if "full" not in numbers:
        lines.append("No full run recorded yet.")
        lines.append("")
    return "\n".join(lines)


def previous_sections(text: str) -> dict[str, tuple[str, str]]:
    """experiment → (its row of the summary table, its section) in an index `render` wrote."""
    rows: dict[str, str] = {}
    for line in text.split("\n## ", 1)[0].splitlines():  # the summary table comes first
        if line.startswith("| "):
            rows.setdefault(line.split(" | ", 1)[0][2:].strip(), line)
    out = {}
    for part in text.split("\n## ")[1:]:
        name = part.split(":", 1)[0].split("\n", 1)[0].strip()
        if name in rows and "| does not load |" not in rows[name]:
            out[name] = (rows[name], "## " + part.rstrip("\n") + "\n")
    return out


def render(root: Path, results: Path, previous: str | None = None) -> str:
    """The whole index as Markdown; an experiment that fails to load gets a line saying so.
    `previous`: the index this one replaces; the sections of experiments with no run under
    `results` are kept from it."""
    runs = collect_runs(results)
    found = discover(root)
    old = previous_sections(previous) if previous else {}
    kept = [name for name in found if name in old
            and not any((name, m) in runs for m in ("small", "full"))]
    parts = ["# Experiments", "",
             "<!-- generated by `sdegen reproduce --index` from the results JSON; "
             "do not edit by hand -->", "",
             "One command per paper figure or table: `sdegen reproduce NAME` (full setting) or "
             "`sdegen reproduce NAME --small` (minutes on 2 CPU cores; CI runs every experiment "
             "this way with `make reproduce-small`). `sdegen reproduce --list` lists them. "
             f"Numbers below are from the runs under `{results}/`"
             + (f" (kept from the previous index, with no run there: {', '.join(kept)})"
                if kept else "")
             + "; the small setting is a smoke test, and its numbers say little about the "
               "method.", "",
             "| experiment | reproduces | small run | full run |", "|---|---|---|---|"]
    bodies = []
    for name, path in found.items():
        if name in kept:
            parts.append(old[name][0])
            bodies.append(old[name][1])
            continue
        try:
            module = load(path)
        except ConfigError as err:
            parts.append(f"| {name} | does not load | — | — |")
            bodies.append(f"## {name}\n\nDoes not load: {fmt(str(err))}\n")
            continue
        dates = [runs[(name, m)][0].get("date", "?")[:10] if (name, m) in runs else "—"
                 for m in ("small", "full")]
        parts.append(f"| {name} | {module.META['reproduces']} | "
                     f"{dates[0]} | {dates[1]} |")
        bodies.append(section(name, title(module), module.META,
                              getattr(module, "headline", None), runs))
    return "\n".join(parts) + "\n\n" + "\n".join(bodies)


def write_index(root: str | Path | None = None, results: str | Path = "results") -> Path:
    """Regenerate `experiments/README.md` from the runs under `results`; returns its path."""
    root = experiments_dir(root)
    path = root / "README.md"
    previous = path.read_text() if path.is_file() else None
    path.write_text(render(root, Path(results), previous))
    print(f"index -> {path}")
    return path
