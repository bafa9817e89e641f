"""The test-NLL report of every evaluation (`sdegen evaluate`, the experiments, the index): the
mean ± standard error, the median, and how many examples lie beyond a robust outlier threshold.

A mean NLL over a test set is set by its worst examples when the per-example NLLs are heavy
tailed (a model that puts almost no density on a few rare test digits): six of 179 digits at
+50 … +195 nats moved a VP model's mean from a median of −7 nats to +0.2. The median and the
outlier count say whether that is happening.

Outlier rule: the modified z-score of Iglewicz & Hoaglin (1993, "How to Detect and Handle
Outliers", Sec. 3.2), one-sided: an example is an outlier when its NLL exceeds

    median + k · 1.4826 · MAD,    k = OUTLIER_K = 3.5,

with MAD the median absolute deviation from the median (1.4826 · MAD estimates the standard
deviation of a normal sample, so k is in "robust σ"). Only the high side counts: a test example
scored far *better* than typical is no failure of the model.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Array, Float

OUTLIER_K = 3.5
"""k of the outlier threshold median + k · 1.4826 · MAD (Iglewicz & Hoaglin's 3.5)."""
MAD_TO_SIGMA = 1.4826
"""1 / Φ⁻¹(3/4): 1.4826 · MAD is a consistent estimate of σ for normal data."""
OUTLIER_RULE = f"NLL > median + {OUTLIER_K} * {MAD_TO_SIGMA} * MAD (Iglewicz & Hoaglin 1993)"


def outlier_threshold(nll: Float[Array, " n"] | np.ndarray, k: float = OUTLIER_K) -> float:
    """median + k · 1.4826 · MAD of per-example NLLs (nats)."""
    nll = np.asarray(nll, dtype=np.float64)
    med = float(np.median(nll))
    return med + k * MAD_TO_SIGMA * float(np.median(np.abs(nll - med)))


def outliers(lp: Float[Array, " n"] | np.ndarray, k: float = OUTLIER_K) -> np.ndarray:
    """Indices of the examples whose NLL = −log p lies above `outlier_threshold`, worst
    first."""
    nll = -np.asarray(lp, dtype=np.float64)
    idx = np.flatnonzero(nll > outlier_threshold(nll, k))
    return idx[np.argsort(-nll[idx], kind="stable")]


def nll_summary(lp: Float[Array, " n"] | np.ndarray | None, k: float = OUTLIER_K) -> dict:
    """The NLL block of a report from per-example log-likelihoods `lp` (nats): `test_nll_nats`
    (mean of −log p), `test_nll_stderr` (population std / √n), `test_nll_median`,
    `test_nll_mad`, `test_nll_outliers` (how many beyond the threshold),
    `test_nll_outlier_threshold`, `test_nll_mean_inliers` (the mean without them) and
    `outlier_rule`. All None without a likelihood (`lp` None: the GAN)."""
    keys = ("test_nll_nats", "test_nll_stderr", "test_nll_median", "test_nll_mad",
            "test_nll_outliers", "test_nll_outlier_threshold", "test_nll_mean_inliers")
    if lp is None:
        return {**dict.fromkeys(keys), "outlier_rule": None}
    nll = -np.asarray(lp, dtype=np.float64).reshape(-1)
    med = float(np.median(nll))
    threshold = outlier_threshold(nll, k)
    out = nll > threshold
    rule = OUTLIER_RULE if k == OUTLIER_K else OUTLIER_RULE.replace(str(OUTLIER_K), str(k))
    return {
        "test_nll_nats": float(nll.mean()),
        "test_nll_stderr": float(nll.std() / math.sqrt(nll.size)),
        "test_nll_median": med,
        "test_nll_mad": float(np.median(np.abs(nll - med))),
        "test_nll_outliers": int(out.sum()),
        "test_nll_outlier_threshold": threshold,
        "test_nll_mean_inliers": float(nll[~out].mean()),
        "outlier_rule": rule,
    }


def format_nll(record: dict, digits: int = 3) -> str:
    """`mean ± se (median m; j/n > threshold)` from a record holding `nll_summary`'s keys
    (and `n_test`); `—` without a likelihood. Older records without the median show the mean
    alone."""
    mean = record.get("test_nll_nats")
    if mean is None:
        return "—"
    text = f"{mean:.{digits}f} ± {record['test_nll_stderr']:.{digits}f}"
    if record.get("test_nll_median") is None:
        return text
    n = record.get("n_test")
    of = f"/{n}" if n else ""
    return (f"{text} (median {record['test_nll_median']:.{digits}f}; "
            f"{record['test_nll_outliers']}{of} > {record['test_nll_outlier_threshold']:.1f})")
