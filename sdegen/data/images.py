"""MNIST and CIFAR-10 from the files a user already has, in the folder `data.path`.

- **MNIST** (LeCun et al. 1998): the four idx files `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each may be
  gzipped, with a `.gz` suffix). An idx file is a big-endian header — two zero bytes, a type
  byte (0x08 = unsigned byte), the number of dimensions — then one uint32 per dimension and the
  raw data.
- **CIFAR-10** (Krizhevsky 2009): the python version, `cifar-10-batches-py/data_batch_1..5` and
  `test_batch` (the folder itself may also be `data.path`). Each batch is a pickled dict with
  `data` (10000 × 3072 uint8, each row the red, green then blue 32 × 32 plane) and `labels`.
  Pickles are read with an unpickler that only rebuilds numpy arrays, so a crafted file cannot
  run code.

Images come back as integer levels, (n, H, W, C) uint8 channels-last (256 levels), with int32
labels, the layout of `sdegen.data.digits`.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, DataMissingError

IMAGE_LEVELS = 256
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_IDX_UBYTE = 0x08

Split = tuple[np.ndarray, np.ndarray]


def _find(folder: Path, name: str, layout: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataMissingError(f"missing file '{folder / name}' (or '{name}.gz'); expected layout: "
                    f"{layout}; set data.path to the folder holding them")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read '{path}' ({err}); download it again") from None


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes with `ndim` dimensions (the MNIST format; LeCun et al.
    1998, "THE MNIST DATABASE" file-format notes), checked against its header."""
    path = Path(path)
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"'{path}' is truncated ({len(raw)} bytes, shorter than its header); "
                        "download it again")
    zero, dtype, dims = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype != _IDX_UBYTE or dims != ndim:
        raise DataError(f"'{path}' is not an idx file of {ndim}-D unsigned bytes (magic number "
                        f"{raw[:4].hex()}, expected 0000080{ndim}); is it the right file?")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DataError(f"'{path}' holds {len(raw) - header} data bytes but its header says "
                        f"{shape} = {size}; the file is truncated or corrupt, download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(path: str | Path) -> dict[str, Split]:
    """MNIST from its idx files in `path`: {"train": (images (60000, 28, 28, 1) uint8, labels
    (60000,) int32), "test": (10000 ...)} (any n for which the files agree)."""
    folder = Path(path)
    layout = f"{folder}/{{{', '.join(f for pair in MNIST_FILES.values() for f in pair)}}}[.gz]"
    out = {}
    for split, (img_name, lab_name) in MNIST_FILES.items():
        img_path, lab_path = _find(folder, img_name, layout), _find(folder, lab_name, layout)
        images, labels = read_idx(img_path, 3), read_idx(lab_path, 1)
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"'{img_path}' has {images.shape[0]} images but '{lab_path}' has "
                            f"{labels.shape[0]} labels; the files do not belong together")
        if labels.size and labels.max() > 9:
            raise DataError(f"'{lab_path}' has label {labels.max()}, MNIST labels are 0..9")
        out[split] = (images[..., None], labels.astype(np.int32))
    return out


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain python containers only: any other global is refused."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                             "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("copyreg", "_reconstructor"),
                ("_codecs", "encode")}  # protocol-2 pickles from python 3 store bytes with it

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _batch(path: Path) -> Split:
    raw = _read_bytes(path)
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # a corrupt pickle raises any of a dozen exception types
        raise DataError(f"'{path}' is not a CIFAR-10 python batch ({type(err).__name__}: "
                        f"{err}); download cifar-10-python.tar.gz again") from None
    if not isinstance(batch, dict):
        raise DataError(f"'{path}' holds a {type(batch).__name__}, not a CIFAR-10 batch dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"'{path}' lacks the 'data' or 'labels' entry of a CIFAR-10 batch")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"'{path}': data must be (n, 3072) uint8, got {data.shape} {data.dtype}")
    if labels.shape != (data.shape[0],) or (labels.size and not 0 <= labels.min() <= labels.max()
                                            <= 9):
        raise DataError(f"'{path}': labels must be {data.shape[0]} integers in 0..9, got "
                        f"shape {labels.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int32)


def load_cifar10(path: str | Path) -> dict[str, Split]:
    """CIFAR-10 from its python batches in `path/cifar-10-batches-py/` (or `path` itself):
    {"train": (images (50000, 32, 32, 3) uint8, labels int32), "test": (10000 ...)}."""
    root = Path(path)
    folder = root / CIFAR_DIR if (root / CIFAR_DIR).is_dir() else root
    layout = (f"{root}/{CIFAR_DIR}/{{data_batch_1..data_batch_5, test_batch}} (from "
              "cifar-10-python.tar.gz)")
    out = {}
    for split, names in CIFAR_FILES.items():
        parts = []
        for name in names:
            if not (folder / name).is_file():
                raise DataMissingError(f"missing file '{folder / name}'; expected layout: "
                                       f"{layout}; set data.path to the folder holding it")
            parts.append(_batch(folder / name))
        out[split] = (np.concatenate([p[0] for p in parts]),
                      np.concatenate([p[1] for p in parts]))
    return out
