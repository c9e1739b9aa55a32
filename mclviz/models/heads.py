"""The projection head g of SimCLR (and MCL, Eq. 12 scores its output)."""

from __future__ import annotations

from torch import nn

__all__ = ["projection_head"]


def projection_head(
    feat_dim: int, proj_dim: int, hidden: int | None = None, *, norm: bool = False
) -> nn.Sequential:
    """SimCLR's projection head g: Linear-ReLU-Linear (``norm``: Linear-BN-ReLU-Linear).

    ``hidden`` defaults to ``feat_dim``. The batch-norm variant (SimCLR v2's head) keeps the
    hidden activations standardised, which lets a short schedule use a large learning rate.
    """
    hidden = int(hidden or feat_dim)
    if norm:
        return nn.Sequential(
            nn.Linear(feat_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, proj_dim),
        )
    return nn.Sequential(
        nn.Linear(feat_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, proj_dim)
    )
