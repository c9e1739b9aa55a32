"""Mean-Shifted contrastive loss and angular center loss of Reiss & Hoshen (2021):
:func:`mean_shifted`, :func:`angular_center`, :class:`MeanShiftedLoss`,
:class:`AngularCenterLoss`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import _check_tau, _check_z
from ._common import _compute_dtype, _cosine, _no_autocast
from .nt_xent_loss import _nt_xent_core

__all__ = ["mean_shifted", "angular_center", "MeanShiftedLoss", "AngularCenterLoss"]


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
