"""Contrastive losses: SimCLR, SupCLR, Masked Contrastive Learning and Mean-Shifted.

Pure functions of tensors, like :mod:`torch.nn.functional`, plus thin :class:`torch.nn.Module`
wrappers that check their hyperparameters once in ``__init__``. Equation numbers refer to
Cho, Seol and Lee, "Masked Contrastive Learning for Anomaly Detection", IJCAI 2021
(``../shared/paper/mcl-paper.md``).

Conventions shared by every loss here:

* ``z``: (2N, d) float tensor, **not** necessarily normalised; rows 2k and 2k+1 are the two
  views of image k. Each loss L2-normalises the rows, so similarities are cosines (Eq. 1).
  A zero row stays a zero vector (cosine 0 with everything).
* ``y``: (2N,) integer labels of the views. Both views of an image share its label
  (``y[2k] == y[2k+1]``); this is checked, because a batch stacked as ``[view1; view2]``
  instead of interleaved is the most common layout mistake.
* ``y_aux``: (2N,) integer auxiliary labels (e.g. the rotation index m % 4) or ``None``.
  The two views of an image may carry different auxiliary labels.
* Every loss returns a scalar tensor on ``z``'s device. The number of classes comes from the
  labels; nothing is hard-coded.
* Precision: the loss is computed in float32 (float64 if ``z`` is float64). ``z`` in
  float16 / bfloat16 is cast to float32 first and autocast is disabled inside the loss, so
  mixed-precision training never evaluates ``exp`` / ``logsumexp`` in half precision. All
  softmax denominators are row-max-shifted (``log_softmax``, which is also the fastest fused
  kernel for forward + backward on CPU; ``-log p`` is read off it with one gather per row).
* Validation is cheap: shapes, dtypes and hyperparameters are checked on the host; the
  only device syncs are ``isfinite(z).all()``, the view-pair label check on the (2N,) labels
  and, when given, the check of ``positives``. (Building the label groups with
  ``torch.unique`` and the expected SPA mode's ``repeat_interleave`` also sync, on (2N,)-sized
  data.)
* Hyperparameters are checked on every call: ``tau > 0``; ``alpha`` and ``beta`` in
  ``(0, 1/tau]`` (``beta`` is checked even without ``y_aux``, so ``tau=0.5`` needs
  ``beta <= 2``); ``lam >= 0``.

Choices where the paper is ambiguous (``variant="paper"``):

* CCM (Eq. 3-6, 11): the mask multiplies the cosine similarity in the denominator. The
  positive view (the other view of the same image) enters the denominator with the same term
  as the numerator, ``exp(sim / tau)``, so ``p_ccm <= 1``; k = i is excluded.
* SPA (Eq. 7-9): see :func:`spa`.

``variant="official"`` reproduces the authors' released code where it departs from the
paper (see :func:`ccm` and :func:`spa`).
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "nt_xent",
    "supcon",
    "ccm",
    "spa",
    "mcl",
    "mcl_terms",
    "mean_shifted",
    "angular_center",
    "ccm_mask",
    "spa_positive_mask",
    "sample_positives",
    "NTXentLoss",
    "SupConLoss",
    "CCMLoss",
    "SPALoss",
    "MCLLoss",
    "MeanShiftedLoss",
    "AngularCenterLoss",
    "VARIANTS",
    "SPA_MODES",
    "OFFICIAL_SIM_FLOOR",
]

VARIANTS = ("paper", "official")
SPA_MODES = ("sample", "expected")
#: Floor applied to cosine similarities by ``variant="official"`` (the released code clamps).
OFFICIAL_SIM_FLOOR = 1e-7


# --------------------------------------------------------------------------------------------
# Validation (host-side, cheap)
# --------------------------------------------------------------------------------------------


def _check_z(z: Any, name: str = "z") -> int:
    """Check a (2N, d) finite float tensor and return 2N."""
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (2N, d), got {type(z).__name__}")
    if z.ndim != 2:
        raise ValueError(
            f"{name} must have shape (2N, d) with rows 2k, 2k+1 the two views of image k, "
            f"got shape {tuple(z.shape)}; flatten the features first"
        )
    if not z.is_floating_point():
        raise ValueError(
            f"{name} must be a floating tensor, got dtype {z.dtype}; call {name}.float()"
        )
    n, d = z.shape
    if n == 0 or n % 2:
        raise ValueError(
            f"{name} has {n} rows; it needs an even number >= 2 (two views per image, rows 2k "
            "and 2k+1); pass both views of every image"
        )
    if d == 0:
        raise ValueError(f"{name} has feature dimension 0; it needs d >= 1")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(
            f"{name} contains NaN or inf; check the model output (e.g. a diverged run or an "
            "overflow in half precision)"
        )
    return n


def _check_labels(y: Any, n: int, device: torch.device, name: str, *, pairs: bool) -> None:
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({n},), got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer labels, got dtype {y.dtype}; call {name}.long()"
        )
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"{name} must have shape ({n},) (one label per row of z), got shape {tuple(y.shape)}"
        )
    if y.device != device:
        raise ValueError(
            f"{name} is on {y.device} but z is on {device}; move it with .to(z.device)"
        )
    if pairs and bool((y[0::2] != y[1::2]).any()):
        k = int((y[0::2] != y[1::2]).nonzero()[0, 0])
        raise ValueError(
            f"{name}[{2 * k}]={int(y[2 * k])} differs from {name}[{2 * k + 1}]={int(y[2 * k + 1])}, "
            "but rows 2k and 2k+1 are the two views of image k and share its label; if the "
            "views are stacked as [view1; view2], interleave them: "
            "torch.stack([a, b], 1).flatten(0, 1)"
        )


def _check_view_labels(y: Any, y_aux: Any) -> int:
    """Check (2N,) labels given without z (mask helpers); return 2N."""
    if not isinstance(y, Tensor) or y.ndim != 1:
        raise ValueError(f"y must be a 1-D label tensor of shape (2N,), got {y!r:.80}")
    n = y.shape[0]
    if n == 0 or n % 2:
        raise ValueError(f"y has {n} entries; it needs an even number >= 2 (two views per image)")
    _check_labels(y, n, y.device, "y", pairs=False)
    if y_aux is not None:
        _check_labels(y_aux, n, y.device, "y_aux", pairs=False)
    return n


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(
            f"{name} must be a real number, got a tensor of shape {tuple(value.shape)}"
        )
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def _check_tau(tau: Any) -> float:
    tau = _check_real("tau", tau)
    if tau <= 0:
        raise ValueError(f"tau must be > 0 (the paper uses 0.2), got {tau}")
    return tau


def _check_multiplier(name: str, value: Any, tau: float) -> float:
    value = _check_real(name, value)
    inv_tau = 1.0 / tau
    if not 0.0 < value <= inv_tau * (1.0 + 1e-12):
        raise ValueError(
            f"{name}={value} is outside (0, 1/tau] = (0, {inv_tau:g}] for tau={tau:g}; "
            f"pick 0 < {name} <= 1/tau (the paper uses alpha=0.05, beta=2.5 with tau=0.2)"
        )
    return value


def _check_lam(lam: Any) -> float:
    lam = _check_real("lam", lam)
    if lam < 0:
        raise ValueError(f"lam must be >= 0 (the paper uses 1.0), got {lam}")
    return lam


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name}={value!r}; choose one of {choices}")
    return value


def _check_positives(positives: Any, y: Tensor, y_aux: Tensor | None) -> Tensor:
    """Check a (2N,) index tensor: -1 or an element of the Eq. 7 positive set of its row."""
    n = y.shape[0]
    if not isinstance(positives, Tensor):
        raise TypeError(
            f"positives must be a torch.Tensor of shape ({n},), got {type(positives).__name__}"
        )
    if positives.is_floating_point() or positives.is_complex() or positives.dtype == torch.bool:
        raise ValueError(f"positives must hold integer indices, got dtype {positives.dtype}")
    if positives.shape != (n,):
        raise ValueError(f"positives must have shape ({n},), got {tuple(positives.shape)}")
    if positives.device != y.device:
        raise ValueError(f"positives is on {positives.device} but z is on {y.device}")
    idx = positives.long()
    if bool(((idx < -1) | (idx >= n)).any()):
        raise ValueError(f"positives must be -1 or in [0, {n}), got values outside that range")
    rows = torch.arange(n, device=y.device)
    j = idx.clamp(min=0)
    ok = (y[j] == y) & (j // 2 != rows // 2)
    if y_aux is not None:
        ok &= y_aux[j] == y_aux
    bad = (idx >= 0) & ~ok
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"positives[{i}]={int(idx[i])} is not in the SPA positive set of view {i} (Eq. 7: "
            "same label, same auxiliary label, other image); use sample_positives("
            "spa_positive_mask(y, y_aux)) or -1 for none"
        )
    return idx


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _no_autocast(device: torch.device) -> AbstractContextManager:
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


def _compute_dtype(z: Tensor) -> torch.dtype:
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def _cosine(z: Tensor, variant: str = "paper") -> Tensor:
    """(2N, d) -> (2N, 2N) cosine similarities (Eq. 1), in float32 or float64."""
    zn = F.normalize(z.to(_compute_dtype(z)), dim=1)  # (2N, d), unit rows
    sim = zn @ zn.T  # (2N, 2N)
    if variant == "official":
        sim = sim.clamp(min=OFFICIAL_SIM_FLOOR)
    return sim


def _siblings(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    rows = torch.arange(n, device=device)
    return rows, rows ^ 1  # view 2k <-> 2k+1


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


def _diag_bias(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    bias = torch.zeros(n, n, dtype=dtype, device=device)  # (2N, 2N) additive logit mask
    torch.diagonal(bias).fill_(float("-inf"))  # k != i
    return bias


def _zero_like_loss(sim: Tensor) -> Tensor:
    # A zero that stays in the graph, so ``loss.backward()`` works when no term contributes.
    return sim.sum() * 0.0


# --------------------------------------------------------------------------------------------
# Loss cores (validated inputs, shared similarity / mask)
#
# Logits are built in one fused kernel, ``addcmul(bias, sim, mask)``: ``mask`` is the
# (non-differentiable) CCM multiplier matrix, ``bias`` is 0 or -inf (left-out terms). Only
# these constant tensors are edited, never the logits, so no in-place op enters the autograd
# graph. The cores never modify ``mask``.
# --------------------------------------------------------------------------------------------


def _nt_xent_core(sim: Tensor, tau: float) -> Tensor:
    n = sim.shape[0]
    rows, sib = _siblings(n, sim.device)
    logits = torch.add(_diag_bias(n, sim.dtype, sim.device), sim, alpha=1.0 / tau)  # (2N, 2N)
    return -torch.log_softmax(logits, dim=1)[rows, sib].mean()  # Eq. 1-2


def _ccm_spa_core(
    sim: Tensor,
    mask: Tensor,
    inv_tau: float,
    variant: str,
    idx: Tensor | None = None,
    pairs: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """L_ccm (Eq. 4-6) and the SPA term (Eq. 8-10) from a single (2N, 2N) log_softmax.

    For view i with sibling i' and drawn positive j, both denominators share every term
    ``exp(sim_ik M_ik)`` with k outside {i, i', j}; that shared part
    ``core_i = log sum_{k not in {i, i', j}} exp(sim_ik M_ik)`` is computed once over the
    (2N, 2N) matrix, and the few differing terms are added on (2N,) vectors:

    * CCM: ``log(exp(core) + exp(sim_ii'/tau) + exp(sim_ij M_ij))`` (the positive view with
      the numerator's term, j with its mask value);
    * SPA: ``log(exp(core) + exp(sim_ij/tau))``, plus ``exp(0)`` for the sibling with
      ``variant="official"``.

    Only additions of positive terms, so nothing cancels.

    Args:
        idx: sample mode, (2N,) drawn positive per view or -1 (no SPA term, j not taken out of
            the CCM core). ``None`` with ``pairs=None``: CCM only.
        pairs: expected mode, ``_positive_pairs(y, y_aux)``. No j is taken out of the core;
            for each pair, ``exp(core) * sum_{k != j} p_ik`` (p = softmax of the core) is the
            denominator without j, and ``exp(sim_ij/tau)`` is added to it.
    """
    n = sim.shape[0]
    if n == 2:  # N = 1: the sibling is the only other view (p_ccm = 1), and no SPA positive
        return _zero_like_loss(sim), _zero_like_loss(sim)
    rows, sib = _siblings(n, sim.device)
    if idx is None:
        idx = torch.full((n,), -1, dtype=torch.long, device=sim.device)
    valid = idx >= 0  # (2N,) views with a drawn positive
    j = torch.where(valid, idx, sib)  # (2N,) sibling as placeholder for rows without one
    bias = _diag_bias(n, sim.dtype, sim.device)  # (2N, 2N), -inf at k = i
    bias[rows, sib] = float("-inf")
    bias[rows, j] = float("-inf")
    # A column inside every row's core set: a view of the next image that is not j (N >= 2).
    anchor = (rows + 2) % n
    anchor = torch.where(anchor == j, anchor ^ 1, anchor)
    logits = torch.addcmul(bias, sim, mask)  # (2N, 2N), only the core terms are finite
    log_p = torch.log_softmax(logits, dim=1)  # (2N, 2N)
    cols = torch.stack([sib, j, anchor], dim=1)  # (2N, 3)
    s, m = sim.gather(1, cols), mask.gather(1, cols)  # (2N, 3) each
    # logsumexp of the core = logit - log_softmax at any finite column
    core = s[:, 2] * m[:, 2] - log_p.gather(1, anchor[:, None]).squeeze(1)  # (2N,)
    neg_inf = torch.full_like(core, float("-inf"))

    pos_view = s[:, 0] * inv_tau  # (2N,) numerator of Eq. 4
    drawn_masked = torch.where(valid, s[:, 1] * m[:, 1], neg_inf)  # j back in the CCM sum
    ccm_den = torch.logsumexp(torch.stack([core, pos_view, drawn_masked], dim=1), dim=1)
    ccm = (ccm_den - pos_view).mean()  # Eq. 5-6

    if pairs is None:  # sample mode (or CCM only)
        drawn = s[:, 1] * inv_tau  # (2N,) numerator of Eq. 8
        sibling = torch.zeros_like(core) if variant == "official" else neg_inf
        spa_den = torch.logsumexp(torch.stack([core, drawn, sibling], dim=1), dim=1)
        per_view = torch.where(valid, spa_den - drawn, torch.zeros_like(drawn))
        return ccm, per_view.sum() / n  # Eq. 10: divided by 2N

    ii, jj, count = pairs
    if ii.numel() == 0:
        return ccm, _zero_like_loss(sim)
    # Denominator without j, relative to exp(core): rest_ij = sum_{k != j} p_ik = 1 - p_ij,
    # with p the softmax of the core. Its value is computed without cancellation, as
    # (sum of p without the row maximum) + (p_max - p_ij), or the first sum alone when j is
    # the maximum; its gradient is that of 1 - p_ij (the softmax sums to 1), so the
    # (2N, 2N) softmax is only needed without autograd.
    with torch.no_grad():
        p = torch.softmax(logits, dim=1)  # (2N, 2N)
        p_max, arg_max = p.max(dim=1)  # (2N,)
        p[rows, arg_max] = 0.0
        without_max = p.sum(dim=1)  # (2N,) no cancellation: positive terms only
    p_ij = log_p[ii, jj].exp()  # (P,) with autograd
    p_ij_value = p_ij.detach()
    rest_value = without_max[ii] + torch.where(
        jj == arg_max[ii], torch.zeros_like(p_ij_value), p_max[ii] - p_ij_value
    )
    rest = (rest_value - (p_ij - p_ij_value)).double().clamp(min=1e-300)  # (P,)
    drawn = (sim[ii, jj] * inv_tau).double()  # (P,) numerator of Eq. 8
    terms = [core.double()[ii] + torch.log(rest), drawn]
    if variant == "official":  # the released code keeps the sibling with a zero logit
        terms.append(torch.zeros_like(drawn))
    per_pair = torch.logsumexp(torch.stack(terms, dim=1), dim=1) - drawn  # (P,) -log p_spa
    weight = 1.0 / count[ii].double()  # uniform expectation over B_i^+, Eq. 9
    return ccm, ((per_pair * weight).sum() / n).to(sim.dtype)  # Eq. 10


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


# --------------------------------------------------------------------------------------------
# Public losses
# --------------------------------------------------------------------------------------------


def nt_xent(z: Tensor, tau: float = 0.2) -> Tensor:
    """SimCLR's NT-Xent loss, Eq. 1-2.

    ``(1/2N) sum_i -log exp(sim_{i,i'}/tau) / sum_{k != i} exp(sim_{i,k}/tau)``, with i' the
    other view of i's image.

    Args:
        z: (2N, d) features, rows 2k and 2k+1 are the two views of image k.
        tau: temperature, > 0.

    Returns:
        Scalar tensor.
    """
    tau = _check_tau(tau)
    _check_z(z)
    with _no_autocast(z.device):
        return _nt_xent_core(_cosine(z), tau)


def supcon(z: Tensor, y: Tensor, tau: float = 0.2) -> Tensor:
    """Supervised contrastive loss, L_out of Khosla et al. (2020).

    For each anchor i, the positives P(i) are all other views with the same label (including
    the other view of its image) and the mean over P(i) is outside the log:
    ``l_i = -(1/|P(i)|) sum_{p in P(i)} log exp(sim_ip/tau) / sum_{k != i} exp(sim_ik/tau)``;
    the loss is the mean over the 2N anchors. The ``tau / base_tau`` factor of the reference
    implementation is 1 here. With all labels distinct it equals :func:`nt_xent`.

    Args:
        z: (2N, d) features, rows 2k and 2k+1 are the two views of image k.
        y: (2N,) integer labels of the views.
        tau: temperature, > 0.

    Returns:
        Scalar tensor.
    """
    tau = _check_tau(tau)
    n = _check_z(z)
    _check_labels(y, n, z.device, "y", pairs=True)
    with _no_autocast(z.device):
        sim = _cosine(z)  # (2N, 2N)
        pos = (y[:, None] == y[None, :]).to(sim.dtype)  # (2N, 2N) same label
        pos.fill_diagonal_(0.0)  # P(i) excludes i itself, keeps the other view
        rows, sib = _siblings(n, z.device)
        logits = torch.add(_diag_bias(n, sim.dtype, sim.device), sim, alpha=1.0 / tau)
        # log of the denominator, read off the fused log_softmax at the sibling column
        log_denom = logits[rows, sib] - torch.log_softmax(logits, dim=1)[rows, sib]  # (2N,)
        mean_pos = (sim * pos).sum(dim=1) / pos.sum(dim=1) / tau  # (2N,), |P(i)| >= 1
        return (log_denom - mean_pos).mean()


def ccm(
    z: Tensor,
    y: Tensor,
    y_aux: Tensor | None = None,
    *,
    tau: float = 0.2,
    alpha: float = 0.05,
    beta: float = 2.5,
    variant: str = "paper",
) -> Tensor:
    """Class-conditional mask loss L_ccm, Eq. 3-6 (Eq. 11 with ``y_aux``).

    ``p_ccm(i, i') = exp(sim_{i,i'}/tau) / sum_{k != i} exp(sim_{i,k} M_{i,k})`` where i' is
    the other view of i's image, ``M = CCM`` (:func:`ccm_mask`: alpha for the same label,
    1/tau for a different one; with ``y_aux``: alpha for same label and same auxiliary label,
    beta for same label and different auxiliary label, 1/tau otherwise), except that the
    positive view enters the denominator with the numerator's term ``exp(sim/tau)``, so
    ``p_ccm <= 1``. The loss is the mean of ``-log p_ccm`` over the 2N views (Eq. 6).
    With ``alpha = beta = 1/tau`` it equals :func:`nt_xent`.

    ``variant="official"``: cosine similarities are clamped below at 1e-7
    (``sim = max(sim, 1e-7)``) before use, as in the authors' code.

    Args:
        z: (2N, d) features, rows 2k and 2k+1 are the two views of image k.
        y: (2N,) integer labels of the views.
        y_aux: (2N,) integer auxiliary labels (rotation index) or ``None``.
        tau: temperature, > 0.
        alpha: same-label multiplier, in (0, 1/tau].
        beta: same-label, different-auxiliary-label multiplier, in (0, 1/tau] (always checked).
        variant: ``"paper"`` or ``"official"``.

    Returns:
        Scalar tensor.
    """
    tau, alpha, beta, variant = _check_hyper(tau, alpha, beta, variant)
    n = _check_z(z)
    _check_labels(y, n, z.device, "y", pairs=True)
    if y_aux is not None:
        _check_labels(y_aux, n, z.device, "y_aux", pairs=False)
    with _no_autocast(z.device):
        sim = _cosine(z, variant)
        mask = _ccm_mask(y, y_aux, alpha, beta, 1.0 / tau, sim.dtype)
        return _ccm_spa_core(sim, mask, 1.0 / tau, variant)[0]


def spa(
    z: Tensor,
    y: Tensor,
    y_aux: Tensor | None = None,
    *,
    tau: float = 0.2,
    alpha: float = 0.05,
    beta: float = 2.5,
    mode: str = "sample",
    positives: Tensor | None = None,
    generator: torch.Generator | None = None,
    variant: str = "paper",
) -> Tensor:
    """Stochastic positive attraction, Eq. 7-9, averaged as in Eq. 10: ``(1/2N) sum_i l_spa(i)``.

    Positive set of view i (Eq. 7, :func:`spa_positive_mask`): every view with the same label
    (and, with ``y_aux``, the same auxiliary label, as in Eq. 11's alpha cell) whose parent
    image is not i's. For a positive j,
    ``p_spa(i, j) = exp(sim_ij/tau) / sum_{k not in parent(i)} exp(sim_ik M_ik)`` (Eq. 8), where
    both views of i's parent image are left out of the denominator, the chosen positive j
    enters it with ``exp(sim_ij/tau)`` like the numerator, and every other view with the CCM
    mask (:func:`ccm_mask`).

    Modes:
        * ``"sample"``: one positive per view drawn uniformly (Eq. 9's stochastic draw);
          ``generator`` makes the draw repeatable, and the draw is exactly
          ``sample_positives(spa_positive_mask(y, y_aux), generator)`` (computed from the
          label groups without building the mask); ``positives`` fixes the draw instead.
        * ``"expected"``: the mean of ``-log p_spa(i, j)`` over all positives j of i, i.e. the
          exact expectation of Eq. 9 (computed in closed form from the shared denominator,
          one (2N,)-vector correction per (view, positive) pair, no cancellation).

    A view with no positive (e.g. the only image of its class in the batch) contributes 0,
    and the sum is still divided by 2N.

    ``variant="official"`` (authors' code): cosine similarities clamped below at 1e-7 before
    use; the sibling view is kept in the denominator with a zero logit (an ``exp(0) = 1``
    term) instead of being left out.

    Args:
        z: (2N, d) features, rows 2k and 2k+1 are the two views of image k.
        y: (2N,) integer labels of the views.
        y_aux: (2N,) integer auxiliary labels or ``None``.
        tau: temperature, > 0.
        alpha: same-label multiplier, in (0, 1/tau].
        beta: same-label, different-auxiliary-label multiplier, in (0, 1/tau].
        mode: ``"sample"`` or ``"expected"``.
        positives: (2N,) integer tensor fixing the sample-mode draw: ``positives[i]`` is -1
            (view i contributes 0) or a member of view i's positive set (checked). Only with
            ``mode="sample"``.
        generator: :class:`torch.Generator` on ``z``'s device for the sample-mode draw.
            Ignored in expected mode.
        variant: ``"paper"`` or ``"official"``.

    Returns:
        Scalar tensor.
    """
    return _mcl_impl(
        z, y, y_aux, tau=tau, alpha=alpha, beta=beta, lam=1.0, mode=mode,
        positives=positives, generator=generator, variant=variant, with_ccm=False,
    )["spa"]  # fmt: skip


def mcl_terms(
    z: Tensor,
    y: Tensor,
    y_aux: Tensor | None = None,
    *,
    tau: float = 0.2,
    alpha: float = 0.05,
    beta: float = 2.5,
    lam: float = 1.0,
    mode: str = "sample",
    positives: Tensor | None = None,
    generator: torch.Generator | None = None,
    variant: str = "paper",
) -> dict[str, Tensor]:
    """MCL loss of Eq. 10 and its two terms, computed together as in :func:`mcl`.

    Same arguments as :func:`mcl` (the SPA options spelled out). Returns
    ``dict(loss=ccm + lam * spa, ccm=..., spa=...)``; all three are in the same graph (call
    ``.item()`` on ``ccm`` / ``spa`` for logging and ``.backward()`` on ``loss``).
    """
    return _mcl_impl(
        z, y, y_aux, tau=tau, alpha=alpha, beta=beta, lam=lam, mode=mode,
        positives=positives, generator=generator, variant=variant, with_ccm=True,
    )  # fmt: skip


def _mcl_impl(
    z: Tensor,
    y: Tensor,
    y_aux: Tensor | None,
    *,
    tau: Any,
    alpha: Any,
    beta: Any,
    lam: Any,
    mode: Any,
    positives: Tensor | None,
    generator: torch.Generator | None,
    variant: Any,
    with_ccm: bool,
) -> dict[str, Tensor]:
    tau, alpha, beta, variant = _check_hyper(tau, alpha, beta, variant)
    lam = _check_lam(lam)
    mode = _check_choice("mode", mode, SPA_MODES)
    n = _check_z(z)
    _check_labels(y, n, z.device, "y", pairs=True)
    if y_aux is not None:
        _check_labels(y_aux, n, z.device, "y_aux", pairs=False)
    if positives is not None:
        if mode != "sample":
            raise ValueError(
                f"positives fixes the draw of mode='sample' but mode={mode!r}; drop positives "
                "or use mode='sample'"
            )
        idx = _check_positives(positives, y, y_aux)
    inv_tau = 1.0 / tau
    with _no_autocast(z.device):
        sim = _cosine(z, variant)  # (2N, 2N), shared by both terms
        mask = _ccm_mask(y, y_aux, alpha, beta, inv_tau, sim.dtype)  # (2N, 2N), Eq. 3 / 11
        if mode == "expected":
            pairs = _positive_pairs(y, y_aux)  # Eq. 7, without a (2N, 2N) mask
            ccm_term, spa_term = _ccm_spa_core(sim, mask, inv_tau, variant, pairs=pairs)
        else:
            if positives is None:
                idx = _sample_from_groups(y, y_aux, generator)  # Eq. 9 draw, O(N log N)
            ccm_term, spa_term = _ccm_spa_core(sim, mask, inv_tau, variant, idx=idx)
        if not with_ccm:
            return {"spa": spa_term}
        return {"loss": ccm_term + lam * spa_term, "ccm": ccm_term, "spa": spa_term}


def mcl(
    z: Tensor,
    y: Tensor,
    y_aux: Tensor | None = None,
    *,
    tau: float = 0.2,
    alpha: float = 0.05,
    beta: float = 2.5,
    lam: float = 1.0,
    **spa_options: Any,
) -> Tensor:
    """Masked contrastive learning loss, Eq. 10: ``L_ccm + lam * (1/2N) sum_i l_spa(i)``.

    The cosine similarity matrix, the CCM mask and one (2N, 2N) log_softmax are shared by both
    terms (their denominators differ only in a few terms per row).
    See :func:`ccm` and :func:`spa` for the terms and the choices made where the paper is
    ambiguous; :func:`mcl_terms` also returns the two terms.

    Args:
        z: (2N, d) features, rows 2k and 2k+1 are the two views of image k.
        y: (2N,) integer labels of the views.
        y_aux: (2N,) integer auxiliary labels (rotation index) or ``None``.
        tau: temperature, > 0.
        alpha: same-label multiplier, in (0, 1/tau].
        beta: same-label, different-auxiliary-label multiplier, in (0, 1/tau].
        lam: weight of the SPA term, >= 0.
        **spa_options: ``mode``, ``positives``, ``generator``, ``variant`` (``variant`` applies
            to both terms); see :func:`spa`.

    Returns:
        Scalar tensor.
    """
    unknown = set(spa_options) - {"mode", "positives", "generator", "variant"}
    if unknown:
        raise TypeError(
            f"mcl got unknown option(s) {sorted(unknown)}; allowed: mode, positives, "
            "generator, variant"
        )
    return mcl_terms(z, y, y_aux, tau=tau, alpha=alpha, beta=beta, lam=lam, **spa_options)["loss"]


def mean_shifted(z: Tensor, center: Tensor, tau: float = 0.25) -> Tensor:
    """Mean-shifted contrastive loss of Reiss & Hoshen (2021).

    The rows of ``z`` are L2-normalised, the center is subtracted, the result is normalised
    again, and NT-Xent (:func:`nt_xent`) is applied with the views paired as rows 2k, 2k+1
    (the reference code stacks ``[view1; view2]``; the mean over views is the same).

    Args:
        z: (2N, d) features, rows 2k and 2k+1 are the two views of image k.
        center: (d,) the mean of the L2-normalised training features (not renormalised).
        tau: temperature, > 0 (their value is 0.25).

    Returns:
        Scalar tensor.
    """
    tau = _check_tau(tau)
    _check_z(z)
    c = _check_center(center, z)
    with _no_autocast(z.device):
        dtype = _compute_dtype(z)
        shifted = F.normalize(F.normalize(z.to(dtype), dim=1) - c.to(dtype), dim=1)  # (2N, d)
        return _nt_xent_core(_cosine(shifted), tau)


def angular_center(z: Tensor, center: Tensor) -> Tensor:
    """Angular center loss of Reiss & Hoshen (2021): the negative cosine to the center, averaged.

    ``-(1/2N) sum_i cos(z_i, center)``. Their paper writes ``-phi(x) . c`` with ``phi(x)``
    normalised and ``c`` the (unnormalised) mean; that is this loss times the constant
    ``||c||``, so the gradient direction is the same.

    Args:
        z: (2N, d) features (any number of rows >= 2, even).
        center: (d,) center, e.g. the mean of the normalised training features.

    Returns:
        Scalar tensor in [-1, 1].
    """
    _check_z(z)
    c = _check_center(center, z)
    with _no_autocast(z.device):
        dtype = _compute_dtype(z)
        zn = F.normalize(z.to(dtype), dim=1)  # (2N, d)
        cn = F.normalize(c.to(dtype), dim=0)  # (d,)
        return -(zn @ cn).mean()


def _check_center(center: Any, z: Tensor) -> Tensor:
    d = z.shape[1]
    if not isinstance(center, Tensor):
        raise TypeError(
            f"center must be a torch.Tensor of shape ({d},), got {type(center).__name__}"
        )
    if center.shape != (d,):
        raise ValueError(
            f"center must have shape ({d},) like a row of z, got {tuple(center.shape)}"
        )
    if not center.is_floating_point():
        raise ValueError(f"center must be a floating tensor, got dtype {center.dtype}")
    if center.device != z.device:
        raise ValueError(f"center is on {center.device} but z is on {z.device}; use .to(z.device)")
    if not bool(torch.isfinite(center).all()):
        raise ValueError("center contains NaN or inf")
    return center


def _check_hyper(tau: Any, alpha: Any, beta: Any, variant: Any) -> tuple[float, float, float, str]:
    tau = _check_tau(tau)
    return (
        tau,
        _check_multiplier("alpha", alpha, tau),
        _check_multiplier("beta", beta, tau),
        _check_choice("variant", variant, VARIANTS),
    )


# --------------------------------------------------------------------------------------------
# nn.Module wrappers: store checked hyperparameters, call the functions
# --------------------------------------------------------------------------------------------


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`. ``forward(z)``."""

    def __init__(self, tau: float = 0.2) -> None:
        super().__init__()
        self.tau = _check_tau(tau)

    def forward(self, z: Tensor) -> Tensor:
        return nt_xent(z, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class SupConLoss(nn.Module):
    """Module form of :func:`supcon`. ``forward(z, y)``."""

    def __init__(self, tau: float = 0.2) -> None:
        super().__init__()
        self.tau = _check_tau(tau)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return supcon(z, y, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class CCMLoss(nn.Module):
    """Module form of :func:`ccm`. ``forward(z, y, y_aux=None)``."""

    def __init__(
        self, tau: float = 0.2, alpha: float = 0.05, beta: float = 2.5, variant: str = "paper"
    ) -> None:
        super().__init__()
        self.tau, self.alpha, self.beta, self.variant = _check_hyper(tau, alpha, beta, variant)

    def forward(self, z: Tensor, y: Tensor, y_aux: Tensor | None = None) -> Tensor:
        return ccm(
            z, y, y_aux, tau=self.tau, alpha=self.alpha, beta=self.beta, variant=self.variant
        )

    def extra_repr(self) -> str:
        return f"tau={self.tau}, alpha={self.alpha}, beta={self.beta}, variant={self.variant!r}"


class SPALoss(nn.Module):
    """Module form of :func:`spa`. ``forward(z, y, y_aux=None, *, positives=None, generator=None)``."""

    def __init__(
        self,
        tau: float = 0.2,
        alpha: float = 0.05,
        beta: float = 2.5,
        mode: str = "sample",
        variant: str = "paper",
    ) -> None:
        super().__init__()
        self.tau, self.alpha, self.beta, self.variant = _check_hyper(tau, alpha, beta, variant)
        self.mode = _check_choice("mode", mode, SPA_MODES)

    def forward(
        self,
        z: Tensor,
        y: Tensor,
        y_aux: Tensor | None = None,
        *,
        positives: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return spa(
            z, y, y_aux, tau=self.tau, alpha=self.alpha, beta=self.beta, mode=self.mode,
            positives=positives, generator=generator, variant=self.variant,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, alpha={self.alpha}, beta={self.beta}, mode={self.mode!r}, "
            f"variant={self.variant!r}"
        )


class MCLLoss(nn.Module):
    """Module form of :func:`mcl` (Eq. 10). Paper defaults: tau=0.2, alpha=0.05, beta=2.5, lam=1.

    ``forward(z, y, y_aux=None, *, positives=None, generator=None)`` returns the scalar loss;
    ``terms(...)`` (same arguments) returns ``dict(loss=, ccm=, spa=)`` for progress bars.
    """

    def __init__(
        self,
        tau: float = 0.2,
        alpha: float = 0.05,
        beta: float = 2.5,
        lam: float = 1.0,
        mode: str = "sample",
        variant: str = "paper",
    ) -> None:
        super().__init__()
        self.tau, self.alpha, self.beta, self.variant = _check_hyper(tau, alpha, beta, variant)
        self.lam = _check_lam(lam)
        self.mode = _check_choice("mode", mode, SPA_MODES)

    def terms(
        self,
        z: Tensor,
        y: Tensor,
        y_aux: Tensor | None = None,
        *,
        positives: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        return mcl_terms(
            z, y, y_aux, tau=self.tau, alpha=self.alpha, beta=self.beta, lam=self.lam,
            mode=self.mode, positives=positives, generator=generator, variant=self.variant,
        )  # fmt: skip

    def forward(
        self,
        z: Tensor,
        y: Tensor,
        y_aux: Tensor | None = None,
        *,
        positives: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return self.terms(z, y, y_aux, positives=positives, generator=generator)["loss"]

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, alpha={self.alpha}, beta={self.beta}, lam={self.lam}, "
            f"mode={self.mode!r}, variant={self.variant!r}"
        )


class MeanShiftedLoss(nn.Module):
    """Module form of :func:`mean_shifted`. ``forward(z, center)``."""

    def __init__(self, tau: float = 0.25) -> None:
        super().__init__()
        self.tau = _check_tau(tau)

    def forward(self, z: Tensor, center: Tensor) -> Tensor:
        return mean_shifted(z, center, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class AngularCenterLoss(nn.Module):
    """Module form of :func:`angular_center`. ``forward(z, center)``."""

    def forward(self, z: Tensor, center: Tensor) -> Tensor:
        return angular_center(z, center)
