"""Classification accuracy, OOD-detection metrics and bootstrap confidence intervals.

In-distribution (IND) samples are the positive class and scores follow mclviz's
direction: higher = more in-distribution (paper Eq. 14). All metrics are fractions in
[0, 1] (the paper prints percentages).

>>> import numpy as np
>>> m = ood_metrics(np.array([3.0, 2.0, 1.5]), np.array([0.0, 1.0, 2.5]))
>>> round(m["auroc"], 3)
0.778
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["accuracy", "bootstrap_ci", "ood_metrics"]


def _array(x, name: str, *, dtype=np.float64) -> np.ndarray:
    """1-D numpy array from a numpy array, a list or a (any-device) torch tensor."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} has shape {a.shape}; expected a 1-D array of per-sample values")
    if a.size == 0:
        raise ValueError(f"{name} is empty; pass at least one sample")
    if dtype is not None:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
        a = a.astype(dtype)
        if not np.isfinite(a).all():
            raise ValueError(
                f"{name} holds NaN or infinite values (first at index "
                f"{int(np.flatnonzero(~np.isfinite(a))[0])}); fix or drop them"
            )
    return a


def ood_metrics(score_in, score_out) -> dict[str, float]:
    """AUROC, AUPR-In, AUPR-Out and FPR at 95% TPR for IND-vs-OOD scores.

    IND is the positive class. ``aupr_in`` is the average precision with IND positive and
    the scores as given; ``aupr_out`` treats OOD as positive and ranks by minus the score.
    ``fpr95`` is the smallest false-positive rate among the ROC points (every threshold,
    ``roc_curve(..., drop_intermediate=False)``) whose true-positive rate is >= 0.95.

    Args:
        score_in: (n_in,) scores of in-distribution samples (higher = more IND).
        score_out: (n_out,) scores of out-of-distribution samples.

    Returns:
        {"auroc", "aupr_in", "aupr_out", "fpr95"} as floats in [0, 1].
    """
    s_in, s_out = _array(score_in, "score_in"), _array(score_out, "score_out")
    scores = np.concatenate([s_in, s_out])
    is_in = np.concatenate([np.ones(s_in.size, dtype=int), np.zeros(s_out.size, dtype=int)])
    fpr, tpr, _ = roc_curve(is_in, scores, drop_intermediate=False)
    return {
        "auroc": float(roc_auc_score(is_in, scores)),
        "aupr_in": float(average_precision_score(is_in, scores)),
        "aupr_out": float(average_precision_score(1 - is_in, -scores)),
        "fpr95": float(fpr[tpr >= 0.95].min()),
    }


def accuracy(pred, y) -> float:
    """Fraction of ``pred == y`` (both (n,) integer labels)."""
    p, t = _array(pred, "pred", dtype=None), _array(y, "y", dtype=None)
    if p.shape != t.shape:
        raise ValueError(
            f"pred has {p.size} labels but y has {t.size}; pass one prediction per sample"
        )
    return float(np.mean(p == t))


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    paired: bool | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric_fn(*arrays)``.

    Each replicate resamples the arrays with replacement and evaluates ``metric_fn``.
    ``paired=True`` draws one set of indices for all arrays (they must have one length,
    e.g. ``accuracy(pred, y)``); ``paired=False`` resamples each array on its own (e.g.
    ``score_in`` and ``score_out`` of ``ood_metrics``, two independent samples). The
    default ``None`` pairs the arrays when they all have the same length.

    Args:
        metric_fn: returns one float, e.g. ``accuracy`` or
            ``lambda a, b: ood_metrics(a, b)["auroc"]``.
        *arrays: 1-D arrays or tensors passed to ``metric_fn``.
        n_boot: number of bootstrap replicates.
        level: coverage of the interval, in (0, 1).
        seed: seed of the numpy generator (same seed, same interval).
        paired: see above.

    Returns:
        (low, high): the (1 - level)/2 and (1 + level)/2 quantiles of the replicates.
    """
    if not arrays:
        raise ValueError(
            "pass at least one array to resample, e.g. bootstrap_ci(accuracy, pred, y)"
        )
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be a positive integer (e.g. 1000)")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must lie in (0, 1), e.g. 0.95")
    arrs = [_array(a, f"arrays[{i}]", dtype=None) for i, a in enumerate(arrays)]
    lengths = {a.size for a in arrs}
    if paired is None:
        paired = len(lengths) == 1
    elif paired and len(lengths) != 1:
        raise ValueError(
            f"paired=True needs arrays of one length, got lengths {[a.size for a in arrs]}; "
            "pass paired=False to resample them independently"
        )
    rng = np.random.default_rng(seed)
    stats = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        if paired:
            idx = rng.integers(0, arrs[0].size, arrs[0].size)
            sample = [a[idx] for a in arrs]
        else:
            sample = [a[rng.integers(0, a.size, a.size)] for a in arrs]
        value = metric_fn(*sample)
        if isinstance(value, dict):
            raise TypeError(
                f"metric_fn returned a dict (keys {sorted(value)}); wrap it to return one "
                "float, e.g. lambda a, b: ood_metrics(a, b)['auroc']"
            )
        stats[b] = float(value)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)
