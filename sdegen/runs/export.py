"""Where `sdegen sample RUN` puts its outputs: the `.npz` file (a new name for every call unless
`--out` says otherwise, so no earlier samples are overwritten) and, for image runs, one PNG per
image in a flat folder — the layout that clean-fid (`fid.compute_fid(dir_a, dir_b)`) and
torch-fidelity (`fidelity --input1 dir_a --input2 dir_b`) read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike, Float

from ..errors import ConfigError

FIRST = "samples.npz"
"""The name of a run's first samples (what `make demo` and the README show)."""
PNG_DIGITS = 6
"""PNG names are 0-padded to at least this many digits (000000.png, ...), so that a folder
sorts in sample order."""


def samples_name(*, step: int, method: str, seed: int, n: int, label: int | None = None,
                 guidance: float = 0.0, ema: bool = True) -> str:
    """The stem of a sample file that says what it holds: checkpoint step, method, seed and
    number of samples, and the class label, guidance weight and raw weights where set, e.g.
    `samples-step2000-ode-seed0-n5000` or `samples-step2000-ddim-seed1-n64-y3-w2`."""
    stem = f"samples-step{step}-{method}-seed{seed}-n{n}"
    if label is not None:
        stem += f"-y{label}-w{guidance:g}"
    return stem if ema else stem + "-noema"


def default_out(run_dir: Path, stem: str) -> Path:
    """`run_dir/samples.npz` for a run's first samples; after that `run_dir/<stem>.npz`, or
    `<stem>-2.npz`, `<stem>-3.npz`, ... if that exists too: a default never overwrites."""
    first = run_dir / FIRST
    if not first.exists():
        return first
    path, k = run_dir / f"{stem}.npz", 2
    while path.exists():
        path, k = run_dir / f"{stem}-{k}.npz", k + 1
    return path


def check_out(out: str | Path) -> Path:
    """An explicit `--out FILE`: it must end in .npz (NumPy would append it silently) and not be
    a directory; an existing file is replaced, as asked."""
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out must name a .npz file, got '{out}'; e.g. --out {out.stem}.npz")
    if out.is_dir():
        raise ConfigError(f"--out '{out}' is a directory; name a file in it, e.g. "
                          f"--out {out / 'samples.npz'}")
    return out


def check_png_dir(png_dir: str | Path, shape: tuple[int, ...], dataset: str) -> Path:
    """The folder of `--png-dir`: only for image data (examples (H, W, C), C = 1 or 3), and new
    or without PNGs (two sample sets in one folder would silently mix in an FID)."""
    png_dir = Path(png_dir)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ConfigError(f"--png-dir writes images, but this run's data ({dataset}) has "
                          f"examples of shape {tuple(shape)}; drop --png-dir (the samples are "
                          "in the .npz file)")
    if png_dir.exists() and not png_dir.is_dir():
        raise ConfigError(f"--png-dir '{png_dir}' is a file; name a new folder")
    if png_dir.is_dir() and any(png_dir.glob("*.png")):
        count = sum(1 for _ in png_dir.glob("*.png"))
        raise ConfigError(f"--png-dir '{png_dir}' already holds {count} PNGs; name an empty or "
                          "new folder (an FID over a mixed folder would be meaningless)")
    return png_dir


def to_uint8(x: Float[ArrayLike, "*shape"], levels: int = 0) -> np.ndarray:
    """Images (any shape) in [0, 1] as 8-bit pixels. With `levels` L (dequantised data
    x = (k + u)/L, `data.source.DequantizedSource`) the grey level is k = ⌊x L⌋ clipped to
    0..L-1, shown as round(255 k / (L - 1)) — the exact inverse of the dequantisation
    (L = 256: the pixel is k); without (binary or continuous data) round(255 x)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    if levels and levels > 1:
        k = np.clip(np.floor(x * levels), 0, levels - 1)
        return np.round(k * (255.0 / (levels - 1))).astype(np.uint8)
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_pngs(x: Float[ArrayLike, "n h w c"], png_dir: str | Path, *, levels: int = 0,
               start: int = 0) -> list[Path]:
    """One PNG per image of `x` (n, H, W, C) in `png_dir`: 8-bit grey (C = 1) or RGB (C = 3) at
    the data's own size, named `000000.png`, `000001.png`, ... from `start`
    (`PNG_DIGITS` digits, more when n needs them). Pixels: `to_uint8(x, levels)`."""
    from PIL import Image

    pixels = to_uint8(x, levels)
    png_dir = Path(png_dir)
    png_dir.mkdir(parents=True, exist_ok=True)
    total = start + pixels.shape[0]
    width = max(PNG_DIGITS, len(str(max(total - 1, 0))))
    paths = []
    for i, img in enumerate(pixels, start):
        path = png_dir / f"{i:0{width}d}.png"
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(path)  # L or RGB
        paths.append(path)
    return paths

