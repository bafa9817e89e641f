"""Training curves from `metrics.jsonl`: a run's `loss.png` (written by `sdegen.fit` with each
checkpoint) and `sdegen plot`'s overlay of several runs.

Smoothing is the exponential moving average TensorBoard draws, debiased like Adam's moments
(Kingma & Ba 2015, sec. 3): s_k = a s_{k-1} + (1 - a) x_k, s_0 = 0, shown as s_k / (1 - a^k).
Matplotlib (Agg, through its object API: no pyplot state) is imported only when a figure is
drawn, so `fit` pays nothing for it between checkpoints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ConfigError

KEYS = ("loss", "grad_norm", "lr", "steps_per_s")
"""The per-row numbers of `metrics.jsonl` that `sdegen plot --key` can draw."""
LOG_SCALE = ("loss", "grad_norm")
"""Drawn on a log scale (where positive); the learning rate and steps/s on a linear one."""
SPAN = 20
"""The default smoothing averages over about 1/SPAN of a curve's rows: a = 1 - SPAN/rows
(`auto_smooth`), so 50 rows get a = 0.6 (TensorBoard's default) and 5000 rows a = 0.996."""


def read_records(path: str | Path) -> list[dict]:
    """The rows of a `metrics.jsonl`; a line that does not parse (a kill while writing) is
    skipped."""
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            out.append(record)
    return out


def series(records: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the rows that hold a number under `key`."""
    rows = [(r["step"], float(r[key])) for r in records
            if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)]
    steps = np.array([s for s, _ in rows], dtype=np.int64)
    return steps, np.array([v for _, v in rows], dtype=np.float64)


def ema(values: np.ndarray, a: float) -> np.ndarray:
    """Debiased exponential moving average with coefficient `a` in [0, 1) (0: no smoothing)."""
    if not 0.0 <= a < 1.0:
        raise ConfigError(f"smoothing must lie in [0, 1), got {a}; e.g. --smooth 0.9")
    out = np.empty(len(values))
    s = 0.0
    for k, x in enumerate(values, start=1):
        s = a * s + (1.0 - a) * x
        out[k - 1] = s / (1.0 - a ** k)
    return out


def auto_smooth(rows: int) -> float:
    """The default EMA coefficient for a curve of `rows` points (0 up to SPAN rows)."""
    return round(max(0.0, 1.0 - SPAN / max(rows, 1)), 3)


def _figure(panels: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 2.6 * panels), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(panels, 1, i + 1) for i in range(panels)]


def _scale(ax, values: np.ndarray, key: str) -> None:
    """Log y for `LOG_SCALE` keys where every value is positive; linear otherwise (an NLL or a
    GAN loss can be negative)."""
    if key in LOG_SCALE and len(values) and np.all(values > 0):
        from matplotlib.ticker import FuncFormatter

        def minor(v, _):  # label 2, 5 (2, 3, 4, 6 within a decade; all under half of one)
            lo, hi = ax.get_ylim()
            decades = np.log10(hi / lo)
            mantissa = v / 10 ** np.floor(np.log10(v) + 1e-9)
            keep = (range(2, 10) if decades < 0.6 else (2, 3, 4, 6) if decades < 1
                    else (2, 5) if decades < 2.5 else ())
            return f"{v:g}" if any(abs(mantissa - m) < 1e-6 for m in keep) else ""

        ax.set_yscale("log")  # plain numbers on the ticks (0.4, 2), not 4 x 10^-1
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.set_ylabel(key)
    ax.grid(True, which="major", alpha=0.3)


def _save_atomic(fig, path: str | Path) -> Path:
    """Write the PNG to a temporary file beside `path`, then rename it over `path`: a reader
    (or a kill) never sees half a figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _draw(ax, steps, values, color, label, smooth: float, raw_label=None) -> None:
    if smooth > 0:
        ax.plot(steps, values, color=color, alpha=0.3, lw=0.8, label=raw_label)
        ax.plot(steps, ema(values, smooth), color=color, lw=1.6, label=label)
    else:
        ax.plot(steps, values, color=color, lw=1.2, label=label)


def loss_figure(run_dir: str | Path, path: str | Path | None = None, *,
                smooth: float | None = None) -> Path | None:
    """`run_dir/loss.png` (or `path`): the loss, raw and EMA-smoothed (coefficient `smooth`,
    default `auto_smooth`), on a log scale over the step, skipped non-finite updates marked red
    on the step axis; the gradient norm (before clipping) beneath when the run logged it.
    Returns the path, or None before the first row."""
    run_dir = Path(run_dir)
    records = read_records(run_dir / "metrics.jsonl")
    steps, loss = series(records, "loss")
    if not len(steps):
        return None
    g_steps, gnorm = series(records, "grad_norm")
    skipped = [r["step"] for r in records if "skipped" in r and "loss" not in r]
    smooth = auto_smooth(len(steps)) if smooth is None else smooth
    fig, axes = _figure(2 if len(g_steps) else 1)
    _draw(axes[0], steps, loss, "C0", f"EMA {smooth}" if smooth else "loss", smooth, "raw")
    _scale(axes[0], loss, "loss")
    if skipped:
        axes[0].vlines(skipped, 0, 0.05, transform=axes[0].get_xaxis_transform(), colors="red",
                       lw=1, label=f"skipped ({len(skipped)})")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(f"{run_dir.name}: step {int(steps[-1])}, loss {loss[-1]:.4g}", fontsize=10)
    if len(g_steps):
        _draw(axes[1], g_steps, gnorm, "C1", "grad norm", smooth)
        _scale(axes[1], gnorm, "grad_norm")
    axes[-1].set_xlabel("step")
    return _save_atomic(fig, path or run_dir / "loss.png")


def _labels(runs: Sequence[Path]) -> list[str]:
    """Each run's directory name, or its path as given where two names clash."""
    names = [r.name or str(r) for r in runs]
    return [n if names.count(n) == 1 else str(r) for n, r in zip(names, runs, strict=True)]


def overlay(runs: Sequence[str | Path], path: str | Path, *, key: str = "loss",
            smooth: float | None = None) -> Path:
    """One figure with `key` of every run in `runs` over the step, labelled by run name; each
    raw (faint) and EMA-smoothed with `smooth` (default: `auto_smooth` of the longest run)."""
    if key not in KEYS:
        raise ConfigError(f"unknown key {key!r}; choose from {', '.join(KEYS)}")
    if smooth is not None:
        ema(np.zeros(0), smooth)  # checks the coefficient before any file is read
    runs = [Path(r) for r in runs]
    curves = []
    for run in runs:
        if not run.is_dir():
            raise ConfigError(f"run dir '{run}' not found; pass a directory `sdegen train` "
                              "wrote (e.g. runs/demo)")
        metrics = run / "metrics.jsonl"
        if not metrics.is_file():
            raise ConfigError(f"'{run}' has no metrics.jsonl; is it a run directory? (train "
                              "it with `sdegen train`)")
        steps, values = series(read_records(metrics), key)
        if not len(steps):
            raise ConfigError(f"run '{run}' logged no '{key}' rows (runs trained before it was "
                              "logged have only loss); try --key loss")
        curves.append((steps, values))
    if smooth is None:  # a schedule is drawn as it is
        smooth = 0.0 if key == "lr" else auto_smooth(max(len(s) for s, _ in curves))
    fig, (ax,) = _figure(1)
    for i, ((steps, values), label) in enumerate(zip(curves, _labels(runs), strict=True)):
        _draw(ax, steps, values, f"C{i % 10}", label, smooth)
    _scale(ax, np.concatenate([v for _, v in curves]), key)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    if smooth:
        ax.set_title(f"{key} (faint: raw; solid: EMA {smooth})", fontsize=10)
    return _save_atomic(fig, path)


__all__ = ["KEYS", "SPAN", "auto_smooth", "read_records", "series", "ema", "loss_figure",
           "overlay"]
