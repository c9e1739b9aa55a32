"""Masks and positives of MCL: the CCM mask (Eq. 3 / Eq. 11) and the SPA positive set and
its uniform draw (Eq. 7, Eq. 9).

The public helpers check their inputs and build the full (2N, 2N) tensors; the private ones
work from the (label, auxiliary label) groups of validated (2N,) labels and are what the losses
use (no (2N, 2N) label comparison, no (2N, 2N) random tensor).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import _check_multiplier, _check_tau, _check_view_labels
from ._common import _siblings

__all__ = ["ccm_mask", "spa_positive_mask", "sample_positives"]


def _groups(y: Tensor, y_aux: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Compact group ids: (2N,) id of each view's (label[, aux label]) pair, and the pairs."""
    if y_aux is None:
        labels, gid = torch.unique(y, return_inverse=True)  # (H,), (2N,)
        return gid, labels, None
    # 1-D uniques (torch.unique(dim=0) is slow), then one key per (label, aux label) pair
    labels, lid = torch.unique(y, return_inverse=True)
    auxes, aid = torch.unique(y_aux, return_inverse=True)
    keys, gid = torch.unique(lid * auxes.numel() + aid, return_inverse=True)  # (H,), (2N,)
    return gid, labels[keys // auxes.numel()], auxes[keys % auxes.numel()]


def _ccm_mask(
    y: Tensor, y_aux: Tensor | None, alpha: float, beta: float, inv_tau: float, dtype: torch.dtype
) -> Tensor:
    # The mask only depends on the (label, aux label) groups: build the small (H, H) table
    # once and expand it with two index_selects instead of comparing (2N, 2N) label grids.
    gid, labels, aux = _groups(y, y_aux)
    kw = {"dtype": dtype, "device": y.device}
    same = labels[:, None] == labels[None, :]  # (H, H)
    inner = torch.tensor(alpha, **kw)
    if aux is not None:
        inner = torch.where(aux[:, None] == aux[None, :], inner, torch.tensor(beta, **kw))
    table = torch.where(same, inner, torch.tensor(inv_tau, **kw))  # (H, H), Eq. 3 / Eq. 11
    return table.index_select(0, gid).index_select(1, gid)  # (2N, 2N)


def _positive_mask(y: Tensor, y_aux: Tensor | None) -> Tensor:
    gid = _groups(y, y_aux)[0]
    pos = gid[:, None] == gid[None, :]  # (2N, 2N) same label (and same aux label)
    rows, sib = _siblings(y.shape[0], y.device)
    pos[rows, rows] = False  # own view
    pos[rows, sib] = False  # other view of the parent image
    return pos


def _rank_to_pick(count: Tensor, generator: torch.Generator | None) -> Tensor:
    """(2N,) uniform ranks in [0, count), one float64 draw per row (0 where count == 0)."""
    u = torch.rand(count.shape[0], generator=generator, device=count.device, dtype=torch.float64)
    return torch.minimum((u * count).long(), (count - 1).clamp(min=0))


def _sample_from_groups(
    y: Tensor, y_aux: Tensor | None, generator: torch.Generator | None
) -> Tensor:
    """Same draw as ``sample_positives(spa_positive_mask(y, y_aux), generator)`` in O(N log N).

    The positives of view i are the members of its (label, aux) group minus its own image's
    views; with the group members sorted by index, the r-th positive is found by skipping the
    (at most two) excluded positions, so no (2N, 2N) tensor is built.
    """
    n = y.shape[0]
    rows, sib = _siblings(n, y.device)
    gid = _groups(y, y_aux)[0]  # (2N,)
    order = torch.argsort(gid, stable=True)  # views grouped, ascending index inside a group
    size = torch.bincount(gid)  # (H,)
    start = size.cumsum(0) - size  # (H,) first slot of each group in ``order``
    rank = torch.empty_like(rows)
    rank[order] = rows - start[gid[order]]  # (2N,) position of each view inside its group
    sib_in = gid[sib] == gid  # sibling in the same group (same aux label)
    count = size[gid] - 1 - sib_in.long()  # (2N,) |B_i^+|
    r = _rank_to_pick(count, generator)
    big = torch.full_like(rank, n)
    e1 = torch.where(sib_in, torch.minimum(rank, rank[sib]), rank)  # excluded slots, sorted
    e2 = torch.where(sib_in, torch.maximum(rank, rank[sib]), big)
    r = r + (r >= e1).long()
    r = r + (r >= e2).long()
    idx = order[(start[gid] + r).clamp(max=n - 1)]
    return torch.where(count > 0, idx, torch.full_like(idx, -1))


def _positive_pairs(y: Tensor, y_aux: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """All (i, j) pairs of Eq. 7 in O(P) (P = number of pairs), sorted by i then j.

    Returns ``(ii, jj, count)``: (P,) views, (P,) their positives, (2N,) ``|B_i^+|``.
    """
    n = y.shape[0]
    rows, sib = _siblings(n, y.device)
    gid = _groups(y, y_aux)[0]  # (2N,)
    order = torch.argsort(gid, stable=True)  # views grouped, ascending index inside a group
    size = torch.bincount(gid)  # (H,)
    start = size.cumsum(0) - size  # (H,)
    gsize = size[gid]  # (2N,) size of each view's group
    ii = torch.repeat_interleave(rows, gsize)  # (sum gsize,) every view once per group member
    first = torch.repeat_interleave(gsize.cumsum(0) - gsize, gsize)
    jj = order[start[gid[ii]] + torch.arange(ii.numel(), device=y.device) - first]
    keep = jj // 2 != ii // 2  # not the own image (Eq. 7)
    count = gsize - 1 - (gid[sib] == gid).long()  # (2N,)
    return ii[keep], jj[keep], count


# --------------------------------------------------------------------------------------------
# Public mask helpers
# --------------------------------------------------------------------------------------------


def ccm_mask(
    y: Tensor,
    y_aux: Tensor | None = None,
    *,
    tau: float = 0.2,
    alpha: float = 0.05,
    beta: float = 2.5,
) -> Tensor:
    """Class-conditional mask CCM(i, j) of Eq. 3 (or CCM_aux of Eq. 11 when ``y_aux`` is given).

    This is the label-only mask of the paper, for every pair including i = j and the two views
    of one image. The losses then override two cells per row: k = i is excluded, and the
    positive view enters the denominator with ``1/tau`` (see :func:`ccm`, :func:`spa`).

    Args:
        y: (2N,) integer labels of the views.
        y_aux: (2N,) integer auxiliary labels, or ``None``.
        tau: temperature, > 0.
        alpha: multiplier for the same label (and the same auxiliary label), in (0, 1/tau].
        beta: multiplier for the same label and a different auxiliary label, in (0, 1/tau].

    Returns:
        (2N, 2N) float tensor (default float dtype) on ``y``'s device: ``alpha`` where the
        labels (and auxiliary labels) agree, ``beta`` where only the labels agree, ``1/tau``
        otherwise.

    >>> ccm_mask(torch.tensor([0, 0, 1, 1]), tau=0.5, alpha=0.1, beta=1.0)[0]
    tensor([0.1000, 0.1000, 2.0000, 2.0000])
    """
    tau = _check_tau(tau)
    alpha = _check_multiplier("alpha", alpha, tau)
    beta = _check_multiplier("beta", beta, tau)
    _check_view_labels(y, y_aux)
    return _ccm_mask(y, y_aux, alpha, beta, 1.0 / tau, torch.get_default_dtype())


def spa_positive_mask(y: Tensor, y_aux: Tensor | None = None) -> Tensor:
    """Positive set of SPA, Eq. 7: ``out[i, j]`` is True iff view j can attract view i.

    j is a positive of i when ``y[j] == y[i]`` (and ``y_aux[j] == y_aux[i]`` when ``y_aux`` is
    given, the alpha cell of Eq. 11) and j's parent image differs from i's (``j // 2 != i // 2``).

    Args:
        y: (2N,) integer labels of the views (rows 2k, 2k+1 are the views of image k).
        y_aux: (2N,) integer auxiliary labels, or ``None``.

    Returns:
        (2N, 2N) bool tensor on ``y``'s device.
    """
    _check_view_labels(y, y_aux)
    return _positive_mask(y, y_aux)


def sample_positives(pos_mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw one positive per row uniformly from a boolean mask (the draw of Eq. 9).

    Vectorised: one uniform number per row, then the r-th ``True`` of the row is found with a
    cumulative sum; no Python loop and no (2N, 2N) random tensor.

    Args:
        pos_mask: (2N, 2N) bool, e.g. :func:`spa_positive_mask`.
        generator: optional :class:`torch.Generator` on ``pos_mask``'s device; makes the
            draw repeatable.

    Returns:
        (2N,) int64 column indices, -1 for rows without any ``True``.
    """
    if not isinstance(pos_mask, Tensor) or pos_mask.dtype != torch.bool or pos_mask.ndim != 2:
        raise ValueError(
            "pos_mask must be a 2-D bool tensor such as spa_positive_mask(y, y_aux), got "
            f"{type(pos_mask).__name__} {getattr(pos_mask, 'dtype', '')} "
            f"{tuple(getattr(pos_mask, 'shape', ()))}"
        )
    n = pos_mask.shape[0]
    if n == 0 or pos_mask.shape[1] != n:
        raise ValueError(f"pos_mask must be square (2N, 2N), got {tuple(pos_mask.shape)}")
    # float32 cumsum is exact for counts < 2**24 and faster than an integer one on CPU
    csum = pos_mask.to(torch.float32).cumsum(dim=1)  # (2N, 2N) running count of positives
    count = csum[:, -1].long()  # (2N,) positives per row
    r = _rank_to_pick(count, generator)  # (2N,) rank of the positive to pick
    idx = (csum <= r[:, None].to(torch.float32)).sum(dim=1)  # column of the (r+1)-th True
    return torch.where(count > 0, idx, torch.full_like(idx, -1))
