"""SimCLR's NT-Xent loss, Eq. 1-2: :func:`nt_xent` and :class:`NTXentLoss`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import _check_tau, _check_z
from ._common import _cosine, _diag_bias, _no_autocast, _siblings

__all__ = ["nt_xent", "NTXentLoss"]


def _nt_xent_core(sim: Tensor, tau: float) -> Tensor:
    n = sim.shape[0]
    rows, sib = _siblings(n, sim.device)
    logits = torch.add(_diag_bias(n, sim.dtype, sim.device), sim, alpha=1.0 / tau)  # (2N, 2N)
    return -torch.log_softmax(logits, dim=1)[rows, sib].mean()  # Eq. 1-2


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


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`. ``forward(z)``."""

    def __init__(self, tau: float = 0.2) -> None:
        super().__init__()
        self.tau = _check_tau(tau)

    def forward(self, z: Tensor) -> Tensor:
        return nt_xent(z, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
