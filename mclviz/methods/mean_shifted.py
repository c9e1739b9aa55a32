"""Mean-shifted contrastive fine-tuning of a pretrained backbone on one class (Reiss & Hoshen 2021).

The features are the backbone output ``f(x)`` (no projection head), as in their code; the
center is the mean of the L2-normalised features of the un-augmented normal training
images, computed once before fine-tuning with the starting weights (float32, batch norm
in eval mode), and kept in the run's state. Batch norm stays in eval mode while training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import losses
from ..embed import embed
from ._base import Method
from ._views import contrastive_views


def _loss(out, views, ctx):
    z, c = out["features"], ctx.config
    center = ctx.state["center"].to(device=z.device, dtype=z.dtype)  # (feat_dim,)
    loss = losses.mean_shifted(z, center, tau=c.msc_tau)
    terms = {"loss": loss, "msc": loss.detach()}
    if c.msc_angular:
        # -mean cos(z_i, c). The authors' ``--angular`` adds sum over the two views of
        # mean ||z_i/|z_i| - c/|c| ||^2 = 4 + 4 * angular_center: msc_angular=4 gives
        # their gradient (they also shift by the normalised center in that mode).
        ang = losses.angular_center(z, center)
        terms["loss"] = loss + c.msc_angular * ang
        terms["angular"] = ang.detach()
    return terms


def center(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(feat_dim,) the mean of the L2-normalised features of ``images`` (eval mode, fp32)."""
    side = getattr(model, "image_size", images.shape[-1])
    batch = max(16, 512 * images.shape[-1] ** 2 // side**2)  # torchvision archs run at 224
    feats = embed(model, images, output="features", batch_size=batch, progress=False)
    return F.normalize(feats[:, 0], dim=1).mean(0)


def _setup(config, model, images, device, precision) -> dict:
    return {"center": center(model, images)}


def _check(config) -> None:
    if config.normal_class is None:
        raise ValueError("method='msc' is one-class: set normal_class (e.g. normal_class=3)")


METHODS = [
    Method(
        "msc",
        "mean-shifted contrastive fine-tuning, one class (Reiss & Hoshen 2021)",
        contrastive_views,
        ("features",),
        _loss,
        scored_on="features",
        hyperparameters=("msc_tau", "msc_angular"),
        one_class=True,
        freeze_bn=True,
        setup=_setup,
        check=_check,
        default_lr=lambda config: config.msc_lr,
    ),
]
