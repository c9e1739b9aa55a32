"""The fused CCM + SPA computation shared by :func:`~mclviz.losses.ccm`,
:func:`~mclviz.losses.spa` and :func:`~mclviz.losses.mcl` (Eq. 4-10).

:func:`_ccm_spa_core` computes both terms from one (2N, 2N) log_softmax; :func:`_mcl_impl`
validates the inputs of :func:`~mclviz.losses.spa` / :func:`~mclviz.losses.mcl_terms`,
builds the similarity, the mask and the SPA positives, and calls the core.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._checks import (
    _check_choice,
    _check_hyper,
    _check_labels,
    _check_lam,
    _check_positives,
    _check_z,
)
from ._common import SPA_MODES, _cosine, _diag_bias, _no_autocast, _siblings
from .masks import _ccm_mask, _positive_pairs, _sample_from_groups

# --------------------------------------------------------------------------------------------
# Loss cores (validated inputs, shared similarity / mask)
#
# Logits are built in one fused kernel, ``addcmul(bias, sim, mask)``: ``mask`` is the
# (non-differentiable) CCM multiplier matrix, ``bias`` is 0 or -inf (left-out terms). Only
# these constant tensors are edited, never the logits, so no in-place op enters the autograd
# graph. The cores never modify ``mask``.
# --------------------------------------------------------------------------------------------


def _zero_like_loss(sim: Tensor) -> Tensor:
    # A zero that stays in the graph, so ``loss.backward()`` works when no term contributes.
    return sim.sum() * 0.0


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
