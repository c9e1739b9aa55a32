"""Numerics shared by the losses: the variant and mode names, cosine similarities (Eq. 1),
the compute dtype, autocast switched off, and the view-pair index helpers.

Rows 2k and 2k+1 of a (2N, ...) batch are the two views of image k.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

VARIANTS = ("paper", "official")
SPA_MODES = ("sample", "expected")
#: Floor applied to cosine similarities by ``variant="official"`` (the released code clamps).
OFFICIAL_SIM_FLOOR = 1e-7


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


def _diag_bias(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    bias = torch.zeros(n, n, dtype=dtype, device=device)  # (2N, 2N) additive logit mask
    torch.diagonal(bias).fill_(float("-inf"))  # k != i
    return bias
