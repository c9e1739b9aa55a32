"""mclviz.metrics against scikit-learn called directly and hand loops over thresholds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_score,
    roc_auc_score,
    roc_curve,
)

from mclviz.metrics import (
    accuracy,
    bootstrap_ci,
    ood_metrics,
    operating_point,
    threshold_at_fpr,
    threshold_at_tpr,
)


def hand_fpr95(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """Smallest FPR over every threshold t (IND iff score >= t) whose TPR is >= 0.95."""
    best = 1.0
    for t in [np.inf, *np.unique(np.concatenate([s_in, s_out]))]:
        tpr = np.mean(s_in >= t)
        fpr = np.mean(s_out >= t)
        if tpr >= 0.95:
            best = min(best, fpr)
    return float(best)


def hand_auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """P(score_in > score_out) + P(tie) / 2 over all pairs."""
    diff = s_in[:, None] - s_out[None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


@pytest.mark.parametrize(("n_in", "n_out"), [(1, 1), (20, 7), (100, 300), (1000, 50)])
@pytest.mark.parametrize("ties", [False, True])
def test_ood_metrics_match_sklearn_and_hand_loops(n_in, n_out, ties):
    rng = np.random.default_rng(n_in + n_out + ties)
    s_in = rng.normal(1.0, 1.0, n_in)
    s_out = rng.normal(0.0, 1.0, n_out)
    if ties:
        s_in, s_out = np.round(s_in * 2) / 2, np.round(s_out * 2) / 2
    m = ood_metrics(s_in, s_out)
    assert set(m) == {"auroc", "aupr_in", "aupr_out", "fpr95"}
    labels = np.r_[np.ones(n_in), np.zeros(n_out)]
    scores = np.r_[s_in, s_out]
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert m["auroc"] == pytest.approx(hand_auroc(s_in, s_out), abs=1e-12)
    assert m["aupr_in"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert m["aupr_out"] == pytest.approx(average_precision_score(1 - labels, -scores), abs=1e-12)
    assert m["fpr95"] == pytest.approx(hand_fpr95(s_in, s_out), abs=1e-12)
    assert all(isinstance(v, float) for v in m.values())


def test_fpr95_collinear_roc_points_are_not_dropped():
    # every threshold adds one IND and one OOD sample: the ROC is the diagonal, whose
    # inner points roc_curve(drop_intermediate=True) would drop (giving fpr95 = 1.0)
    s = np.arange(20, dtype=float)
    m = ood_metrics(s, s)
    assert m["fpr95"] == pytest.approx(0.95) == hand_fpr95(s, s)
    assert m["auroc"] == pytest.approx(0.5)


def test_ood_metrics_extremes_and_torch_input():
    s_in, s_out = torch.linspace(1, 2, 50), torch.linspace(-2, -1, 30)
    m = ood_metrics(s_in, s_out)
    assert m == pytest.approx({"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0})
    r = ood_metrics(s_out, s_in)  # reversed: every OOD scores higher
    assert r["auroc"] == 0.0 and r["fpr95"] == 1.0
    same = ood_metrics(np.zeros(10), np.zeros(10))
    assert same["auroc"] == pytest.approx(0.5) and same["fpr95"] == 1.0


def test_ood_metrics_errors():
    with pytest.raises(ValueError, match="score_out holds NaN"):
        ood_metrics(np.ones(3), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="score_in is empty"):
        ood_metrics(np.array([]), np.ones(3))
    with pytest.raises(ValueError, match="score_in has shape"):
        ood_metrics(np.ones((3, 2)), np.ones(3))


def test_accuracy():
    assert accuracy(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2])) == 0.75
    assert accuracy(np.array([1]), [1]) == 1.0
    with pytest.raises(ValueError, match="pred has 2 labels but y has 3"):
        accuracy([0, 1], [0, 1, 1])


def test_bootstrap_ci_matches_manual_loop():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, 200)
    y = np.where(rng.random(200) < 0.8, pred, (pred + 1) % 3)
    low, high = bootstrap_ci(accuracy, pred, y, n_boot=300, level=0.9, seed=3)
    gen = np.random.default_rng(3)
    stats = []
    for _ in range(300):
        idx = gen.integers(0, 200, 200)
        stats.append(np.mean(pred[idx] == y[idx]))
    want = np.quantile(stats, [0.05, 0.95])
    assert (low, high) == pytest.approx(tuple(want), abs=1e-12)
    assert low < accuracy(pred, y) < high
    assert bootstrap_ci(accuracy, pred, y, n_boot=300, level=0.9, seed=3) == (low, high)


def test_bootstrap_ci_independent_samples():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(1, 1, 120), rng.normal(0, 1, 80)

    def auroc(a, b):
        return ood_metrics(a, b)["auroc"]

    low, high = bootstrap_ci(auroc, s_in, s_out, n_boot=200)  # lengths differ: independent
    assert 0 < low < auroc(s_in, s_out) < high < 1
    gen = np.random.default_rng(0)
    stats = []
    for _ in range(200):
        a = s_in[gen.integers(0, 120, 120)]
        b = s_out[gen.integers(0, 80, 80)]
        stats.append(auroc(a, b))
    assert (low, high) == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])), abs=1e-12)
    with pytest.raises(ValueError, match="paired=True needs arrays of one length"):
        bootstrap_ci(auroc, s_in, s_out, paired=True)
    with pytest.raises(TypeError, match="returned a dict"):
        bootstrap_ci(ood_metrics, s_in, s_out, n_boot=2)


def test_bootstrap_ci_errors():
    with pytest.raises(ValueError, match="at least one array"):
        bootstrap_ci(accuracy)
    with pytest.raises(ValueError, match="n_boot=0"):
        bootstrap_ci(accuracy, [1], [1], n_boot=0)
    with pytest.raises(ValueError, match="level=1.5"):
        bootstrap_ci(accuracy, [1], [1], level=1.5)


# -- operating points (the decision of Eq. 14 at one threshold)

SIZES = [(1, 1), (3, 8), (20, 7), (100, 300), (1000, 50)]


def _scores(n_in, n_out, ties, seed):
    rng = np.random.default_rng(seed)
    s_in, s_out = rng.normal(1.0, 1.0, n_in), rng.normal(0.0, 1.0, n_out)
    if ties:  # few distinct values: many ties inside and across the two sets
        s_in, s_out = np.round(s_in * 2) / 2, np.round(s_out * 2) / 2
    return s_in, s_out


def hand_threshold_at_tpr(s_in: np.ndarray, tpr: float) -> float:
    """The largest candidate t (every IND score) with mean(s_in >= t) >= tpr."""
    return float(max(t for t in s_in if np.mean(s_in >= t) >= tpr))


def hand_threshold_at_fpr(s_out: np.ndarray, fpr: float) -> float:
    """The smallest candidate t (just above each OOD score) with mean(s_out >= t) <= fpr."""
    cands = [np.nextafter(t, np.inf) for t in s_out]
    return float(min(t for t in cands if np.mean(s_out >= t) <= fpr))


@pytest.mark.parametrize(("n_in", "n_out"), SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_operating_point_matches_sklearn_confusion_matrix(n_in, n_out, ties):
    s_in, s_out = _scores(n_in, n_out, ties, seed=10 * n_in + n_out + ties)
    y = np.r_[np.ones(n_in, dtype=int), np.zeros(n_out, dtype=int)]
    scores = np.r_[s_in, s_out]
    lo, hi = scores.min(), scores.max()
    # every score (ties: a threshold equal to a score accepts it), between, and outside
    for t in [*np.unique(scores), (lo + hi) / 2, lo - 1.0, hi + 1.0]:
        m = operating_point(torch.from_numpy(s_in), s_out, t)
        pred = (scores >= t).astype(int)
        tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert (m["ind_accepted"], m["ind_rejected"]) == (tp, fn)
        assert (m["ood_accepted"], m["ood_rejected"]) == (fp, tn)
        assert (m["n_in"], m["n_out"], m["threshold"]) == (n_in, n_out, float(t))
        assert m["tpr"] == tp / n_in and m["fpr"] == fp / n_out
        assert m["accuracy"] == pytest.approx((tp + tn) / (n_in + n_out), abs=1e-15)
        want = precision_score(y, pred, zero_division=np.nan)
        if np.isnan(want):
            assert np.isnan(m["precision"]) and tp + fp == 0
        else:
            assert m["precision"] == pytest.approx(want, abs=1e-15)
        assert all(isinstance(m[k], float) for k in ("tpr", "fpr", "precision", "accuracy"))
        assert all(type(m[k]) is int for k in ("ind_accepted", "ood_rejected", "n_in"))


@pytest.mark.parametrize(("n_in", "n_out"), SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_operating_points_lie_on_sklearn_roc_curve(n_in, n_out, ties):
    s_in, s_out = _scores(n_in, n_out, ties, seed=n_in * n_out + ties)
    y = np.r_[np.ones(n_in), np.zeros(n_out)]
    fpr, tpr, thr = roc_curve(y, np.r_[s_in, s_out], drop_intermediate=False)
    for f, t, th in zip(fpr[1:], tpr[1:], thr[1:], strict=True):  # thr[0] is +inf
        m = operating_point(s_in, s_out, th)
        assert (m["fpr"], m["tpr"]) == pytest.approx((f, t), abs=1e-15)


@pytest.mark.parametrize(("n_in", "n_out"), SIZES)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("rate", [1e-3, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_threshold_at_tpr_is_the_largest_keeping_tpr(n_in, n_out, ties, rate):
    s_in, s_out = _scores(n_in, n_out, ties, seed=n_in + 7 * n_out + ties)
    t = threshold_at_tpr(s_in, rate)
    assert t == hand_threshold_at_tpr(s_in, rate)
    assert np.mean(s_in >= t) >= rate
    assert np.mean(s_in >= np.nextafter(t, np.inf)) < rate  # any larger one loses TPR
    if rate == 0.95:  # the FPR there is ood_metrics' FPR at 95% TPR
        assert operating_point(s_in, s_out, t)["fpr"] == ood_metrics(s_in, s_out)["fpr95"]


def test_threshold_at_tpr_exact_fractions():
    s = np.arange(100, dtype=float)  # 0.95 * 100 = 95.00000000000001 in floats
    assert threshold_at_tpr(s, 0.95) == 5.0  # keeps 95 of 100, not 96
    assert threshold_at_tpr(s, 1.0) == 0.0 and threshold_at_tpr(s, 0.001) == 99.0
    assert threshold_at_tpr(np.array([2.0, 2.0, 2.0, 1.0]), 0.5) == 2.0  # ties kept whole
    assert threshold_at_tpr(torch.tensor([0.5]), 0.3) == 0.5


@pytest.mark.parametrize(("n_in", "n_out"), SIZES)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.1, 0.5, 0.95, 0.999])
def test_threshold_at_fpr_is_the_smallest_keeping_fpr(n_in, n_out, ties, rate):
    s_in, s_out = _scores(n_in, n_out, ties, seed=3 * n_in + n_out + ties)
    t = threshold_at_fpr(s_out, rate)
    assert t == hand_threshold_at_fpr(s_out, rate)
    assert np.mean(s_out >= t) <= rate
    assert np.mean(s_out >= np.nextafter(t, -np.inf)) > rate  # any smaller one adds FPR
    m = operating_point(s_in, s_out, t)
    assert m["fpr"] <= rate


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_threshold_at_fpr_counts_alike_in_the_scores_precision(dtype):
    # a float64 step above a float32 score rounds back onto it in float32 comparisons
    s = torch.linspace(0, 1, 40, dtype=dtype)
    for rate in (0.0, 0.05, 0.3):
        t = threshold_at_fpr(s, rate)
        allowed = int(np.floor(rate * 40 + 1e-9))
        assert int((s >= t).sum()) == allowed  # torch compares in the tensor's dtype
        assert int((s.double() >= t).sum()) == allowed
        assert operating_point(s, s, t)["ood_accepted"] == allowed


def test_threshold_at_fpr_exact_fractions():
    s = np.arange(100, dtype=float)
    assert threshold_at_fpr(s, 0.05) == np.nextafter(94.0, np.inf)  # accepts 95..99
    assert operating_point(s, s, threshold_at_fpr(s, 0.05))["ood_accepted"] == 5
    assert threshold_at_fpr(s, 0.0) == np.nextafter(99.0, np.inf)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: threshold_at_tpr(np.ones(3), 0.0), ValueError, r"tpr=0.0 is outside \(0, 1\]"),
        (lambda: threshold_at_tpr(np.ones(3), 1.5), ValueError, r"tpr=1.5 is outside"),
        (lambda: threshold_at_tpr(np.ones(3), -0.1), ValueError, r"tpr=-0.1 is outside"),
        (lambda: threshold_at_tpr(np.ones(3), float("nan")), ValueError, r"tpr=nan"),
        (lambda: threshold_at_tpr(np.ones(3), "95%"), TypeError, r"tpr='95%' must be a number"),
        (lambda: threshold_at_tpr(np.array([]), 0.95), ValueError, r"score_in is empty"),
        (lambda: threshold_at_tpr([1.0, np.nan], 0.95), ValueError, r"score_in holds NaN"),
        (lambda: threshold_at_fpr(np.ones(3), 1.0), ValueError, r"fpr=1.0 is outside \[0, 1\)"),
        (lambda: threshold_at_fpr(np.ones(3), -0.01), ValueError, r"fpr=-0.01 is outside"),
        (lambda: threshold_at_fpr([], 0.05), ValueError, r"score_out is empty"),
        (lambda: operating_point([], [1.0], 0.0), ValueError, r"score_in is empty"),
        (lambda: operating_point([1.0], [np.nan], 0.0), ValueError, r"score_out holds NaN"),
        (lambda: operating_point([1.0], [1.0], np.nan), ValueError, r"threshold=nan"),
        (lambda: operating_point([1.0], [1.0], "high"), TypeError, r"threshold='high'"),
        (lambda: operating_point(np.ones((2, 2)), [1.0], 0.0), ValueError, r"score_in has shape"),
    ],
)
def test_operating_point_errors_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_operating_point_extremes():
    m = operating_point([1.0, 2.0], [0.0], -np.inf)  # accepts everything
    assert (m["tpr"], m["fpr"], m["precision"]) == (1.0, 1.0, 2 / 3)
    m = operating_point([1.0, 2.0], [0.0], np.inf)  # rejects everything
    assert (m["tpr"], m["fpr"], m["accuracy"]) == (0.0, 0.0, 1 / 3)
    assert np.isnan(m["precision"])
