"""The embedded image default: scikit-learn's 8×8 handwritten digits (UCI optdigits; Alpaydin &
Kaynak 1998) — 1797 images with 17 grey levels (0..16), shipped inside scikit-learn, so every
image feature runs on CPU with no download.

Images are returned as integer levels, (n, 8, 8, 1) channels-last, with their labels; models
choose their own scaling (dequantised [0, 1] for likelihoods, binarised for the Helmholtz
machine) so the raw data stays one thing.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .splits import split_indices

DIGITS_LEVELS = 17  # pixel values are the integers 0..16
DIGITS_SHAPE = (8, 8, 1)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: (images (n, 8, 8, 1) uint8 in 0..16, labels (n,) int32 in 0..9)."""
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a pinned dependency
        raise DataError("the digits dataset needs scikit-learn; run `make test` or "
                        "`pip install -r requirements.lock` to install it") from None
    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.uint8)[..., None]
    return images, np.asarray(bunch.target, dtype=np.int32)


def digits_splits(
    seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seeded train/val/test split of the digits: {"train": (x, y), "val": ..., "test": ...}."""
    x, y = load_digits()
    tr, va, te = split_indices(x.shape[0], seed, fractions)
    return {"train": (x[tr], y[tr]), "val": (x[va], y[va]), "test": (x[te], y[te])}


def binarize(images: np.ndarray, threshold: int = DIGITS_LEVELS // 2) -> np.ndarray:
    """Binarised digits (levels > threshold → 1), float32, as used by the Helmholtz machine."""
    return (np.asarray(images) > threshold).astype(np.float32)
