"""Stochastic positive attraction, Eq. 7-9 (averaged as in Eq. 10): :func:`spa` and
:class:`SPALoss`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import _check_choice, _check_hyper
from ._common import SPA_MODES
from ._core import _mcl_impl

__all__ = ["spa", "SPALoss"]


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
