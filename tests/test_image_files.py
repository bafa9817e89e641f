"""MNIST idx and CIFAR-10 python-batch loaders, on tiny files written in those exact formats."""

import gzip
import pickle

import numpy as np
import pytest

from sdegen import config as C
from sdegen.data.images import load_cifar10, load_mnist, read_idx
from sdegen.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder, n_train=3, n_test=2, gz=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, a in arrays.items():
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(_idx(a))
        else:
            (folder / name).write_bytes(_idx(a))
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_parses(tmp_path, gz):
    arrays = _write_mnist(tmp_path, gz=gz)
    got = load_mnist(tmp_path)
    x, y = got["train"]
    assert x.shape == (3, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int32
    np.testing.assert_array_equal(x[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(got["test"][0][..., 0], arrays["t10k-images-idx3-ubyte"])
    # through the config: a dequantised source in [0, 1) with 256 levels
    src = C.build_data(C.from_dict({"data": {"name": "mnist", "path": str(tmp_path)}}))
    assert src.shape == (28, 28, 1) and src.levels == 256


def test_mnist_missing_and_malformed_files(tmp_path):
    with pytest.raises(DataError, match="missing file .*train-images-idx3-ubyte.*data.path"):
        load_mnist(tmp_path)
    _write_mnist(tmp_path)
    good = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    bad_magic = bytearray(good)
    bad_magic[2] = 0x0D  # float data
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes(bad_magic))
    with pytest.raises(DataError, match="magic number 00000d03"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(good[:-5])
    with pytest.raises(DataError, match="truncated"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(good[:7])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte", 3)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(good)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros(5)))
    with pytest.raises(DataError, match="do not belong together"):
        load_mnist(tmp_path)
    with pytest.raises(C.ConfigError, match="data.path"):
        C.build_data(C.from_dict({"data": {"name": "mnist"}}))


def _write_cifar(folder, n=2):
    rng = np.random.default_rng(1)
    d = folder / "cifar-10-batches-py"
    d.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)],
                 b"filenames": [b"x.png"] * n}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    return d, batches


def test_cifar_batches_parse(tmp_path):
    d, batches = _write_cifar(tmp_path)
    got = load_cifar10(tmp_path)
    x, y = got["train"]
    assert x.shape == (10, 32, 32, 3) and got["test"][0].shape == (2, 32, 32, 3)
    row = batches["data_batch_1"][b"data"][1]
    # channel-planar rows (R plane, G plane, B plane) become channels-last pixels
    np.testing.assert_array_equal(x[1, 0, 5], row[[5, 1024 + 5, 2048 + 5]])
    np.testing.assert_array_equal(y[:2], batches["data_batch_1"][b"labels"])
    np.testing.assert_array_equal(load_cifar10(d)["test"][0], got["test"][0])


def test_cifar_missing_and_malformed(tmp_path):
    with pytest.raises(DataError, match="missing file .*data_batch_1.*cifar-10-batches-py"):
        load_cifar10(tmp_path)
    d, batches = _write_cifar(tmp_path)
    (d / "data_batch_3").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="data_batch_3.*not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)
    wrong = {**batches["data_batch_3"], b"data": np.zeros((2, 100), np.uint8)}
    (d / "data_batch_3").write_bytes(pickle.dumps(wrong, protocol=2))
    with pytest.raises(DataError, match=r"\(n, 3072\) uint8"):
        load_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (d / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="builtins.print is not allowed"):
        load_cifar10(tmp_path)
    (d / "data_batch_3").write_bytes(pickle.dumps(batches["data_batch_3"])[:40])
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)
