"""Classification accuracy, OOD-detection metrics, operating points and bootstrap CIs.

In-distribution (IND) samples are the positive class and scores follow mclviz's
direction: higher = more in-distribution (paper Eq. 14). All metrics are fractions in
[0, 1] (the paper prints percentages).

Operating points: a deployed detector is the decision of Eq. 14 at one threshold delta,
``h_delta(x) = IND if score(x) >= delta else OOD``. :func:`threshold_at_tpr` and
:func:`threshold_at_fpr` pick delta; :func:`operating_point` says what it accepts and
rejects.

>>> import numpy as np
>>> m = ood_metrics(np.array([3.0, 2.0, 1.5]), np.array([0.0, 1.0, 2.5]))
>>> round(m["auroc"], 3)
0.778
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = [
    "accuracy",
    "bootstrap_ci",
    "ood_metrics",
    "operating_point",
    "threshold_at_fpr",
    "threshold_at_tpr",
]


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


def _rate(rate, name: str, *, low_open: bool, high_open: bool, example: str) -> float:
    """``rate`` as a float in its interval, else a ValueError naming it."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={rate!r} must be a number in [0, 1], e.g. {example}") from None
    lo_ok = r > 0 if low_open else r >= 0
    hi_ok = r < 1 if high_open else r <= 1
    if not (lo_ok and hi_ok):  # also catches NaN
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name}={rate!r} is outside {interval}; pass e.g. {name}={example}")
    return r


def _fewest(rate: float, n: int) -> int:
    """The smallest count m in 0..n with ``m / n >= rate`` (as floats, the way a rate
    computed as ``count / n`` compares; ``ceil(rate * n)`` can be one too many, e.g.
    ``0.95 * 100 = 95.00000000000001``)."""
    m = min(int(np.ceil(rate * n)), n)
    while m > 0 and (m - 1) / n >= rate:
        m -= 1
    while m / n < rate:
        m += 1
    return m


def threshold_at_tpr(score_in, tpr: float) -> float:
    """The largest threshold delta that keeps at least ``tpr`` of the IND scores >= delta.

    Eq. 14 accepts ``x`` as in-distribution when ``score(x) >= delta``; the TPR at delta
    is ``mean(score_in >= delta)``. The largest delta with ``TPR >= tpr`` is the m-th
    largest IND score, m the fewest IND samples that make up a fraction ``tpr`` (ties
    count in full: every sample tied with it is kept too). At ``tpr=0.95`` the FPR there
    is ``ood_metrics(...)["fpr95"]``.

    Args:
        score_in: (n_in,) IND scores (higher = more in-distribution).
        tpr: the true-positive rate to keep, in (0, 1].

    Returns:
        delta, one of the IND scores.

    >>> threshold_at_tpr(np.array([0.1, 0.4, 0.2, 0.3]), 0.75)
    0.2
    """
    rate = _rate(tpr, "tpr", low_open=True, high_open=False, example="0.95")
    s = np.sort(_array(score_in, "score_in"))[::-1]  # descending
    return float(s[_fewest(rate, s.size) - 1])


def threshold_at_fpr(score_out, fpr: float) -> float:
    """The smallest threshold delta that keeps at most ``fpr`` of the OOD scores >= delta.

    The FPR at delta is ``mean(score_out >= delta)``; the smallest delta with ``FPR <=
    fpr`` accepts the most IND samples under that constraint. It is the next float above
    the (m+1)-th largest OOD score (``numpy.nextafter`` in the scores' precision), m the
    most OOD samples a fraction ``fpr`` allows.

    Args:
        score_out: (n_out,) OOD scores (higher = more in-distribution).
        fpr: the false-positive rate allowed, in [0, 1) (at 1 every threshold qualifies).

    Returns:
        delta, the next float above one of the OOD scores in the scores' own precision
        (float32 scores get a float32 delta), so that ``score_out >= delta`` counts the
        same in float32 as in float64.

    >>> threshold_at_fpr(np.array([0.1, 0.4, 0.2, 0.3]), 0.25) > 0.3
    True
    """
    rate = _rate(fpr, "fpr", low_open=False, high_open=True, example="0.05")
    s = np.sort(_array(score_out, "score_out"))[::-1]  # descending
    n = s.size
    m = _fewest(rate, n)
    if m / n > rate:  # the most OOD samples allowed: m - 1 when m overshoots
        m -= 1
    own = _float_type(score_out)
    return float(np.nextafter(own(s[m]), own(np.inf)))


def _float_type(x) -> type:
    """The numpy float type of ``x``'s values (float64 for integers, lists, bfloat16)."""
    name = str(getattr(x, "dtype", "")).removeprefix("torch.")
    return {"float32": np.float32, "float16": np.float16}.get(name, np.float64)


def _decision_metrics(
    threshold: float, ind_accepted: int, n_in: int, ood_accepted: int, n_out: int
) -> dict[str, float | int]:
    """:func:`operating_point`'s dict from its four counts (the widgets count by
    ``searchsorted`` on sorted scores and share this)."""
    accepted = ind_accepted + ood_accepted
    ood_rejected = n_out - ood_accepted
    return {
        "threshold": float(threshold),
        "tpr": ind_accepted / n_in,
        "fpr": ood_accepted / n_out,
        "precision": ind_accepted / accepted if accepted else float("nan"),
        "accuracy": (ind_accepted + ood_rejected) / (n_in + n_out),
        "ind_accepted": int(ind_accepted),
        "ind_rejected": int(n_in - ind_accepted),
        "ood_accepted": int(ood_accepted),
        "ood_rejected": int(ood_rejected),
        "n_in": int(n_in),
        "n_out": int(n_out),
    }


def operating_point(score_in, score_out, threshold: float) -> dict[str, float | int]:
    """What the decision of Eq. 14 at ``threshold`` accepts and rejects.

    ``h(x) = IND if score(x) >= threshold else OOD``, IND the positive class.

    Args:
        score_in: (n_in,) IND scores (higher = more in-distribution).
        score_out: (n_out,) OOD scores.
        threshold: delta of Eq. 14 (a real number; -inf accepts everything).

    Returns:
        ``threshold``; ``tpr`` (fraction of IND accepted), ``fpr`` (fraction of OOD
        accepted), ``precision`` (fraction of the accepted that are IND; NaN when nothing
        is accepted), ``accuracy`` (fraction of all samples on the right side): floats in
        [0, 1]. The counts ``ind_accepted``, ``ind_rejected``, ``ood_accepted``,
        ``ood_rejected``, ``n_in``, ``n_out``: ints.

    >>> m = operating_point([3.0, 2.0, 1.0], [0.0, 2.5], threshold=2.0)
    >>> m["tpr"], m["fpr"], m["ood_accepted"], m["precision"]
    (0.6666666666666666, 0.5, 1, 0.6666666666666666)
    """
    s_in, s_out = _array(score_in, "score_in"), _array(score_out, "score_out")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold={threshold!r} must be a real number") from None
    if np.isnan(t):
        raise ValueError("threshold=nan is not a threshold; pass a real number, e.g. 0.0")
    return _decision_metrics(
        t, int(np.sum(s_in >= t)), s_in.size, int(np.sum(s_out >= t)), s_out.size
    )


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
