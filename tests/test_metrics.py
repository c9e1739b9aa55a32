"""mclviz.metrics against scikit-learn called directly and hand loops over thresholds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from mclviz.metrics import accuracy, bootstrap_ci, ood_metrics


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
