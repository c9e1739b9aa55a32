"""Class-conditional mask loss L_ccm, Eq. 3-6 (Eq. 11 with auxiliary labels): :func:`ccm`
and :class:`CCMLoss`."""

from __future__ import annotations

from torch import Tensor, nn

from ._checks import _check_hyper, _check_labels, _check_z
from ._common import _cosine, _no_autocast
from ._core import _ccm_spa_core
from .masks import _ccm_mask

__all__ = ["ccm", "CCMLoss"]


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
