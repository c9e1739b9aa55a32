"""Self-ensemble inference: Gaussians per rotation, per-view scores, aggregation (Eq. 15-20).

Two aggregation variants:

* ``variant="paper"`` follows Eq. 17-20 on the scores S = -d^2.
* ``variant="official"`` reproduces the authors' released evaluation code: it works on
  minus the *square root* of the squared distance, and its weighted average is the
  per-class harmonic mean of those distances over the views (the paper's Eq. 19 weights
  the views by a harmonic mean over the classes instead).

SEI view m (0..7): the image rotated by ``m % 4`` quarter turns, flipped horizontally first
when ``m >= 4``; it is scored against rotation ``m % 4``'s Gaussians.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import _check_finite, _float_tensor, _labels
from .gaussians import Gaussians, fit_gaussians, gaussian_scores

__all__ = ["AGGREGATIONS", "VARIANTS", "aggregate", "fit_sei_gaussians", "sei_scores"]

AGGREGATIONS = ("avg", "max", "w-avg")
METHODS = AGGREGATIONS  # the name aggregate() calls its argument
VARIANTS = ("paper", "official")


def _check_method(method: str, variant: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}")
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is unknown; choose one of {VARIANTS}")


def _sei_rotation(m: int) -> int:
    """SEI view ``m`` (0..7) -> its rotation index ``m % 4`` (m >= 4 is the flipped image)."""
    return m % 4


def fit_sei_gaussians(z_views, y, **kwargs) -> list[Gaussians]:
    """C x R Gaussians for self-ensemble inference: one set per rotation r (Sec. 3.2).

    Args:
        z_views: (n, R, d) training embeddings, column r = the images rotated by r * 90
            degrees (SEI views 0..R-1, ``mclviz.embed.embed(..., views=R)``).
        y: (n,) class labels, the same for every rotation.
        **kwargs: passed to ``fit_gaussians`` (covariance, ridge, shrinkage, unbiased,
            normalize, classes, ...).

    Returns:
        A list of R ``Gaussians``; entry r models N(mu_i^(r), Sigma_i^(r)) of Eq. 15.
    """
    zt = _float_tensor(z_views, "z_views")
    if zt.ndim != 3:
        raise ValueError(
            f"z_views has shape {tuple(zt.shape)}; expected (n, R, d) with one column per "
            "rotation (for plain (n, d) embeddings use fit_gaussians)"
        )
    if zt.shape[1] > 4:
        raise ValueError(
            f"z_views has {zt.shape[1]} views; fit on the R <= 4 rotations only "
            "(flipped views m >= 4 reuse rotation m % 4's Gaussians): pass z_views[:, :4]"
        )
    yt = _labels(y, zt.shape[0])
    if "classes" not in kwargs and yt.numel():
        kwargs["classes"] = int(yt.max()) + 1
    return [fit_gaussians(zt[:, r], yt, **kwargs) for r in range(zt.shape[1])]


def _view_indices(views: Sequence[int] | None, W: int) -> list[int]:
    if views is None:
        return list(range(W))
    v = [int(m) for m in views]
    if len(v) != W:
        raise ValueError(f"views={list(views)!r} names {len(v)} views, but z_views has {W}")
    if any(m < 0 or m > 7 for m in v):
        raise ValueError(f"views={v!r}: SEI view indices are 0..7")
    return v


def sei_scores(
    z_views,
    gaussians_per_rotation: Sequence[Gaussians] | Gaussians,
    *,
    views: Sequence[int] | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Score every SEI view against its rotation's Gaussians (Eq. 15-16).

    View m (0..W-1) is the test image rotated by ``m % 4`` quarter turns, horizontally
    flipped first when ``m >= 4``; it is scored against rotation ``m % 4``'s Gaussians.

    Args:
        z_views: (n, W, d) test embeddings; column w is SEI view ``views[w]``.
        gaussians_per_rotation: list of R Gaussians from ``fit_sei_gaussians``; a single
            ``Gaussians`` is used for every view.
        views: the SEI view index of each column (default 0..W-1, as
            ``embed(..., views=W)``); pass the list given to ``embed(..., views=[...])``.
        chunk_size: see ``gaussian_scores``.

    Returns:
        (n, W, C) scores S^(m)_i(x) = -d^2 (higher = more in-distribution).
    """
    zt = _float_tensor(z_views, "z_views")
    if zt.ndim != 3:
        raise ValueError(
            f"z_views has shape {tuple(zt.shape)}; expected (n, W, d) embeddings of W SEI "
            "views (add a view axis with z[:, None] for plain embeddings)"
        )
    n, W, d = zt.shape
    vs = _view_indices(views, W)
    if isinstance(gaussians_per_rotation, Gaussians):
        gs = [gaussians_per_rotation] * 4
    else:
        gs = list(gaussians_per_rotation)
        if not gs or not all(isinstance(g, Gaussians) for g in gs):
            raise TypeError(
                "gaussians_per_rotation must be a non-empty list of Gaussians "
                "(from fit_sei_gaussians) or one Gaussians"
            )
    need = max(_sei_rotation(m) for m in vs) + 1
    if need > len(gs):
        raise ValueError(
            f"view(s) {[m for m in vs if _sei_rotation(m) >= len(gs)]} need rotation "
            f"{need - 1}'s Gaussians, but gaussians_per_rotation has {len(gs)} entries; fit "
            f"on {need} rotations (fit_sei_gaussians with z_views[:, :{need}]) or use fewer views"
        )
    C = gs[0].num_classes
    if any(g.num_classes != C or g.dim != gs[0].dim for g in gs):
        raise ValueError("the Gaussians of the rotations differ in class count or dimension")
    cols = [
        gaussian_scores(zt[:, w], gs[_sei_rotation(m)], chunk_size=chunk_size)
        for w, m in enumerate(vs)
    ]
    return torch.stack(cols, dim=1)  # (n, W, C); differentiable in z_views (see gaussian_scores)


# ----------------------------------------------------------------------------- aggregation


def aggregate(
    scores, method: str = "w-avg", variant: str = "paper"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine the per-view score vectors of SEI into a label and an IND score (Eq. 17-20).

    ``variant="paper"`` (on S = -d^2 from ``sei_scores``):

    * ``"avg"`` (Eq. 17): ``A_i = mean_m S_i^(m)``.
    * ``"max"`` (Eq. 18): ``A_i = max_m S_i^(m)``.
    * ``"w-avg"`` (Eq. 19-20): ``W^(m) = (sum_n 1 / S_n^(m))^-1`` and
      ``A_i = sum_m W^(m) S_i^(m) / sum_m W^(m)``. The scores are negative, so every
      ``W^(m)`` is negative too (minus 1/C times the harmonic mean of the view's squared
      class distances); sharing one sign, the normalised weights ``W^(m) / sum W`` are
      positive and sum to one. A view whose distances are all large gets a large weight:
      unusually low scores are penalised, as the paper intends.

    ``variant="official"`` reproduces the authors' released code. It scores with the
    square-root distance, so the input ``S = -d^2`` is first turned into ``-sqrt(d^2)``:

    * ``"avg"``: mean over views of ``-sqrt(d^2)`` (their code sums; same ranking).
    * ``"max"`` (their "min"): largest ``-sqrt(d^2)`` over views.
    * ``"w-avg"`` (their "wa"): per class, minus the harmonic mean over the views of the
      square-root distances, ``A_i = -W / sum_m (1 / sqrt(d_i^(m)^2))``.

    In both variants ``pred = argmax_i A_i`` (ties go to the lowest class index; the
    official "min" loop would take the last) and ``score = A_pred = max_i A_i``. With
    W = 1 every method returns the plain argmax and max (of ``-sqrt(d^2)`` for the official
    variant). A zero distance is clamped to the smallest positive float, so a harmonic
    mean with a zero term is ~0 (its limit) instead of NaN.

    Args:
        scores: (n, W, C) scores S_i^(m)(x) (a 2-D (n, C) input means W = 1). The
            weighted averages and the official variant need scores <= 0 (minus squared
            distances).
        method: "avg", "max" or "w-avg".
        variant: "paper" or "official".

    Returns:
        pred: (n,) int64 predicted class; score: (n,) aggregated score at ``pred``
        (higher = more in-distribution).
    """
    _check_method(method, variant)
    s = _float_tensor(scores, "scores")
    if s.ndim == 2:
        s = s[:, None, :]
    if s.ndim != 3 or s.shape[1] < 1 or s.shape[2] < 1:
        raise ValueError(
            f"scores has shape {tuple(s.shape)}; expected (n, W, C) from sei_scores "
            "(or (n, C) for a single view)"
        )
    _check_finite(s, "scores")
    if (variant == "official" or method == "w-avg") and bool((s > 0).any()):
        raise ValueError(
            f"scores holds positive values (max {float(s.max()):.3g}); method={method!r}, "
            f"variant={variant!r} needs minus squared Mahalanobis distances (<= 0) as "
            "returned by gaussian_scores / sei_scores"
        )
    tiny = torch.finfo(s.dtype).tiny
    if variant == "paper":
        if method == "avg":
            agg = s.mean(dim=1)
        elif method == "max":
            agg = s.amax(dim=1)
        else:
            dist = (-s).clamp_min(tiny)  # (n, W, C), d^2 > 0
            dmin = dist.amin(dim=2, keepdim=True)  # (n, W, 1)
            # -W^(m) = (sum_n 1/d_n)^-1, computed as dmin / sum_n (dmin / d_n): no overflow.
            h = dmin / (dmin / dist).sum(dim=2, keepdim=True)  # (n, W, 1)
            weight = h / h.sum(dim=1, keepdim=True)  # W^(m) / sum_m W^(m) > 0
            agg = (weight * s).sum(dim=1)
    else:
        root = (-s).sqrt()  # (n, W, C) square-root distances
        if method == "avg":
            agg = -root.mean(dim=1)
        elif method == "max":
            agg = -root.amin(dim=1)
        else:
            dist = root.clamp_min(tiny)
            dmin = dist.amin(dim=1, keepdim=True)  # (n, 1, C)
            # harmonic mean over views W / sum_m 1/d_m, as dmin / mean_m (dmin / d_m)
            agg = -(dmin[:, 0] / (dmin / dist).mean(dim=1))
    pred = agg.argmax(dim=1)  # first index among ties
    return pred, agg.gather(1, pred[:, None])[:, 0]
