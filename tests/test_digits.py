"""The embedded digits loader: shapes, levels, labels and seeded splits."""

import numpy as np

from sdegen.data.digits import DIGITS_LEVELS, binarize, digits_splits, load_digits


def test_digits_shapes_levels_and_splits():
    x, y = load_digits()
    assert x.shape == (1797, 8, 8, 1) and y.shape == (1797,)
    assert x.min() == 0 and x.max() == DIGITS_LEVELS - 1
    assert set(np.unique(y)) == set(range(10))
    a, b = digits_splits(seed=0), digits_splits(seed=0)
    sizes = [a[k][0].shape[0] for k in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[0] == round(0.8 * 1797)
    np.testing.assert_array_equal(a["test"][0], b["test"][0])  # seeded
    assert not np.array_equal(a["test"][1], digits_splits(seed=1)["test"][1])
    xb = binarize(x)
    assert set(np.unique(xb)) == {0.0, 1.0} and 0.2 < xb.mean() < 0.6


def test_digits_source_dequantizes_within_each_level():
    import jax

    from sdegen import config as C

    src = C.build_data(C.from_dict({}, ["data.name=digits"]))
    x = np.asarray(src.test_set(jax.random.key(0), 50))
    levels = np.asarray(src.test[:50])
    np.testing.assert_array_equal(np.floor(x * 17).astype(int), levels)  # (k + u)/17, u in [0,1)
    assert src.train_batch(jax.random.key(1), 7).shape == (7, 8, 8, 1)
    binary = C.build_data(C.from_dict({}, ["data.name=digits", "data.binarize=true"]))
    assert set(np.unique(np.asarray(binary.test_set(jax.random.key(0), 50)))) == {0.0, 1.0}
