"""Figures. Functions take arrays (no models) and write a PNG; they return the path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def density(
    data: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    logp: np.ndarray,
    path: str | Path,
    *,
    samples: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Data histogram | learned density exp(log p) on the grid `xs × ys` (`logp[len(ys),
    len(xs)]`) | model samples, on shared axes."""
    panels = 3 if samples is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 4), squeeze=False)
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    axes[0, 0].hist2d(data[:, 0], data[:, 1], bins=100, range=[extent[:2], extent[2:]],
                      cmap="viridis")
    axes[0, 0].set_title("data")
    axes[0, 1].imshow(np.exp(logp), origin="lower", extent=extent, cmap="viridis", aspect="auto")
    axes[0, 1].set_title("model density exp(log p)")
    if samples is not None:
        axes[0, 2].hist2d(samples[:, 0], samples[:, 1], bins=100, range=[extent[:2], extent[2:]],
                          cmap="viridis")
        axes[0, 2].set_title("model samples")
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def trajectories(
    rows: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    n_lines: int = 24,
    lim: float = 4.0,
) -> Path:
    """One row per dynamics (e.g. forward SDE, reverse SDE, probability-flow ODE), in the style
    of Song et al. 2021, Fig. 1–2: snapshots of the 2D cloud at the saved times, then the first
    coordinate of a few paths against t. `rows[name] = (ts[k], xs[k, n, 2])`."""
    k = max(len(ts) for ts, _ in rows.values())
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(2.2 * (k + 1), 2.4 * len(rows)),
                             squeeze=False, layout="constrained")
    for r, (name, (ts, xs)) in enumerate(rows.items()):
        for c in range(k):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(ts):
                ax.scatter(xs[c, :, 0], xs[c, :, 1], s=0.5, alpha=0.4, color=f"C{r}")
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_title(f"t = {ts[c]:.2f}", fontsize=8)
        ax = axes[r, k]
        ax.plot(ts, xs[:, :n_lines, 0], lw=0.7, color=f"C{r}", alpha=0.8)
        ax.set_xlabel("t")
        ax.set_title("x₁ along paths", fontsize=8)
        axes[r, 0].set_ylabel(name)
    return _save(fig, path)


def paths_heatmap(
    rows: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    n_lines: int = 20,
    lim: float = 4.0,
) -> Path:
    """Song et al. 2021, Fig. 1 style: the marginal density of x₁ over t (a histogram per saved
    time, as a heat map) with a few paths of x₁ drawn over it, one panel per dynamics."""
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.2), sharey=True,
                             squeeze=False, layout="tight")
    axes = axes[0]
    bins = np.linspace(-lim, lim, 81)
    for ax, (name, (ts, xs)) in zip(axes, rows.items(), strict=True):
        order = np.argsort(ts)
        ts, x1 = ts[order], xs[order, :, 0]
        hist = np.stack([np.histogram(row, bins=bins, density=True)[0] for row in x1], axis=1)
        ax.imshow(hist, origin="lower", aspect="auto", cmap="viridis",
                  extent=(ts[0], ts[-1], -lim, lim), vmax=np.quantile(hist, 0.995))
        ax.plot(ts, x1[:, :n_lines], color="white", lw=0.6, alpha=0.8)
        direction = "t: 0 → 1" if name.startswith("forward") else "t: 1 → 0"
        ax.set_title(f"{name} ({direction})", fontsize=10)
        ax.set_xlabel("t")
        ax.set_ylim(-lim, lim)
    axes[0].set_ylabel("x₁")
    return _save(fig, path)


def samples_scatter(x: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(x[:, 0], x[:, 1], s=0.5, alpha=0.5)
    ax.set_aspect("equal")
    ax.set_title(title)
    return _save(fig, path)


def image_grid(images: np.ndarray, path: str | Path, *, title: str = "",
               ncol: int | None = None) -> Path:
    """A grid of (n, H, W, C) images with values in [0, 1] (clipped), C = 1 grey or 3 RGB."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    # white separators: 0 under the reversed grey map of one-channel images, 1 in RGB
    canvas = np.full((nrow * (h + 1) + 1, ncol * (w + 1) + 1, c), 0.0 if c == 1 else 1.0,
                     dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, ncol)
        canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = images[i]
    fig, ax = plt.subplots(figsize=(0.5 + 0.45 * ncol * max(w, 8) / 8,
                                    0.8 + 0.45 * nrow * max(h, 8) / 8))
    ax.imshow(canvas[..., 0] if c == 1 else canvas, cmap="gray_r" if c == 1 else None,
              vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    return _save(fig, path)


def sphere_maps(rows, lon: np.ndarray | None, lat: np.ndarray | None, path: str | Path, *,
                points_label: str = "data") -> Path:
    """Mollweide maps, one row per dataset: its points (lat/lon degrees), then each model's log
    density on the (lat, lon) radian grid. `rows` = [(title, latlon_deg, [(model, logp)])]."""
    ncol = 1 + max(len(r[2]) for r in rows)
    fig = plt.figure(figsize=(3.6 * ncol, 2.0 * len(rows)))
    for i, (title, latlon, dens) in enumerate(rows):
        ax = fig.add_subplot(len(rows), ncol, i * ncol + 1, projection="mollweide")
        ax.scatter(np.deg2rad(latlon[:, 1]), np.deg2rad(latlon[:, 0]), s=0.5, c="k", alpha=0.5)
        ax.set_title(f"{title}: {points_label}", fontsize=8)
        for j, (model, logp) in enumerate(dens):
            ax = fig.add_subplot(len(rows), ncol, i * ncol + 2 + j, projection="mollweide")
            lo = max(np.percentile(logp, 5), np.max(logp) - 12.0)  # 12 nats of dynamic range
            ax.pcolormesh(lon, lat, np.maximum(logp, lo), shading="auto", cmap="viridis")
            ax.set_title(f"{title}: {model} log p", fontsize=8)
        for ax in fig.axes[i * ncol:]:
            ax.set_xticklabels([])
            ax.set_yticklabels([])
    return _save(fig, path)
