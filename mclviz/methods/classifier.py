"""The cross-entropy baselines: a plain classifier, and one with an auxiliary rotation head."""

from __future__ import annotations

import torch.nn.functional as F

from ._base import Method
from ._views import light_view, rotation_head_views


def _ce(logits, y, config):
    return F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)


def _plain(out, views, ctx):
    loss = _ce(out["logits"], views.y, ctx.config)
    return {"loss": loss, "ce": loss.detach()}


def _rotation(out, views, ctx):
    main, rows = views.extra["main"], views.extra["rot"]
    ce = _ce(out["logits"][main], views.y[main], ctx.config)
    rl = F.cross_entropy(out["rot"][rows], views.y_aux[rows])
    loss = ce + ctx.config.rot_weight * rl
    return {"loss": loss, "ce": ce.detach(), "rot": rl.detach()}


def _rot_views_per_image(config) -> int:
    return 4 if config.rotations_per_image == 4 else 2


METHODS = [
    Method(
        "ce",
        "cross-entropy classifier (the Baseline row)",
        light_view,
        ("logits",),
        _plain,
        scored_on="features",
        classifier=True,
        hyperparameters=("label_smoothing",),
        views_per_image=lambda config: 1,
        batch_loss=False,
    ),
    Method(
        "rot",
        "cross-entropy + auxiliary rotation head (Hendrycks et al. 2019)",
        rotation_head_views,
        ("logits", "rot"),
        _rotation,
        scored_on="features",
        rotation_labels=True,
        classifier=True,
        rot_head=True,
        hyperparameters=("label_smoothing", "rot_weight"),
        views_per_image=_rot_views_per_image,
        batch_loss=False,
    ),
]
