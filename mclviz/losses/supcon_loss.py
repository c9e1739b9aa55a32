"""Supervised contrastive loss (SupCLR, Khosla et al. 2020): :func:`supcon` and
:class:`SupConLoss`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import _check_labels, _check_tau, _check_z
from ._common import _cosine, _diag_bias, _no_autocast, _siblings

__all__ = ["supcon", "SupConLoss"]


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


class SupConLoss(nn.Module):
    """Module form of :func:`supcon`. ``forward(z, y)``."""

    def __init__(self, tau: float = 0.2) -> None:
        super().__init__()
        self.tau = _check_tau(tau)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return supcon(z, y, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
