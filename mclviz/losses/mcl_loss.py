"""Masked contrastive learning loss, Eq. 10 (``L_ccm + lam * L_spa``): :func:`mcl`,
:func:`mcl_terms` and :class:`MCLLoss`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._checks import _check_choice, _check_hyper, _check_lam
from ._common import SPA_MODES
from ._core import _mcl_impl

__all__ = ["mcl", "mcl_terms", "MCLLoss"]


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
