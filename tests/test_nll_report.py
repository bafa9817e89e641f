"""The NLL report of `sdegen.runs.nll`: the outlier count against a count made by hand, and the
eval.json block of `runs.core.nll_record` (old keys kept, new ones added)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from sdegen.runs.core import nll_record
from sdegen.runs.images import nll_extremes_figure
from sdegen.runs.nll import OUTLIER_K, nll_summary, outlier_threshold, outliers


def test_outlier_count_matches_a_hand_count():
    # NLLs 0..8, 100, 200, and one example scored far *better* than the rest (-300)
    nll = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 200, -300], dtype=float)
    # by hand: sorted 12 values, median = (4 + 5) / 2 = 4.5; |nll - 4.5| sorted:
    # 0.5 0.5 1.5 1.5 2.5 2.5 3.5 3.5 4.5 95.5 195.5 304.5 -> MAD = (2.5 + 3.5) / 2 = 3.0
    threshold = 4.5 + 3.5 * 1.4826 * 3.0  # = 20.067
    assert OUTLIER_K == 3.5
    assert outlier_threshold(nll) == pytest.approx(threshold)
    s = nll_summary(-nll)
    assert s["test_nll_outliers"] == 2  # 100 and 200; -300 is on the good side
    assert s["test_nll_median"] == pytest.approx(4.5) and s["test_nll_mad"] == pytest.approx(3.0)
    assert s["test_nll_nats"] == pytest.approx(nll.mean())
    assert s["test_nll_stderr"] == pytest.approx(nll.std() / math.sqrt(nll.size))
    assert s["test_nll_mean_inliers"] == pytest.approx(np.delete(nll, [9, 10]).mean())
    assert list(outliers(-nll)) == [10, 9]  # worst first
    # the count is independent of how the examples are ordered
    perm = np.random.default_rng(0).permutation(nll.size)
    assert nll_summary(-nll[perm])["test_nll_outliers"] == 2


def test_normal_nlls_have_few_outliers():
    nll = np.random.default_rng(1).normal(size=20_000)
    # 3.5 robust sigmas of a normal sample: P(z > 3.5) = 2.3e-4, about 4.7 of 20 000
    assert nll_summary(-nll)["test_nll_outliers"] <= 15


def test_nll_record_keeps_old_keys_and_adds_the_report(tmp_path):
    lp = -np.array([1.0, 2.0, 3.0, 50.0])
    rec = nll_record(jnp.asarray(lp), 4, 0.5)
    for key in ("test_nll_nats", "test_nll_stderr", "n_test", "likelihood_wall_s",
                "test_nll_median", "test_nll_outliers", "test_nll_outlier_threshold",
                "outlier_rule"):
        assert key in rec
    assert rec["test_nll_nats"] == pytest.approx(14.0) and rec["n_test"] == 4
    assert rec["test_nll_outliers"] == 1 and "MAD" in rec["outlier_rule"]
    none = nll_record(None, 4, 0.5)  # the GAN: no likelihood
    assert none["test_nll_nats"] is None and none["test_nll_outliers"] is None
    images = np.random.default_rng(0).uniform(size=(5, 8, 8, 1))
    png = nll_extremes_figure(images, lp[[0, 1, 2, 3, 0]], tmp_path / "x.png", n=3)
    assert png.stat().st_size > 0
