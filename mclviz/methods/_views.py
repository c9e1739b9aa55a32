"""The views a training step sees, and the functions that make them from a batch of images.

Batch layout (``docs/CONVENTIONS.md``): in a contrastive batch, rows 2k and 2k+1 are the
two views of image k. Labels are per view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..transforms import SimCLRAugment, rotate, translate_flip, two_views

__all__ = [
    "Augmenters",
    "Views",
    "contrastive_views",
    "light_view",
    "rotated_contrastive_views",
    "rotation_head_views",
]


@dataclass
class Views:
    """One step's training views and their labels.

    Attributes:
        x: (V, 3, H, W) float views in [0, 1] (cached backbone features (V, f) in the
            sliders' head-only mode).
        y: (V,) int64 class label of each view.
        y_aux: (V,) int64 auxiliary (rotation) label of each view, or None.
        extra: method-specific row selections, e.g. ``"main"``: the rows a classifier's
            cross-entropy is taken over.
    """

    x: Tensor | None
    y: Tensor
    y_aux: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)


class Augmenters:
    """The run's augmentations, built once from its config.

    ``contrastive``: SimCLR's family (crop scale ``crop_scale_min``-1, colour strength
    ``jitter_strength``). ``light``: the classifiers' view, ``ce_augment="crop"`` (crop scale
    0.5-1 and flip, no colour) or ``"translate"`` (flip and a translation of up to 2
    pixels, the fast records' augmentation).
    """

    def __init__(self, config: Any) -> None:
        self.contrastive = SimCLRAugment(
            size=32, scale=(config.crop_scale_min, 1.0), strength=config.jitter_strength
        )
        self.kind = config.ce_augment
        self._crop = SimCLRAugment(size=32, scale=(0.5, 1.0), p_jitter=0.0, p_gray=0.0)

    def light(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.kind == "translate":
            return translate_flip(x, 2, generator=generator)
        return self._crop(x, generator=generator)


def contrastive_views(x: Tensor, y: Tensor, aug: Augmenters, config: Any, gen) -> Views:
    """Two SimCLR views per image (Eq. 1): (2n, ...), rows 2k / 2k+1 from image k."""
    return Views(two_views(x, aug.contrastive, generator=gen), y.repeat_interleave(2))


def rotated_contrastive_views(x: Tensor, y: Tensor, aug: Augmenters, config: Any, gen) -> Views:
    """MCL's views with the rotation auxiliary task (Eq. 11).

    ``rotations_per_image=4`` (the paper): every image in its 4 rotations, each with 2
    independently augmented views, rotation-major blocks (8n views). ``1``: one random
    rotation per image per step, shared by its two views (2n views); the labels are still
    (class, rotation). The flip and crop are drawn in the image's own frame *before*
    rotating, so the rotation label stays true.
    """
    n = len(x)
    if config.rotations_per_image == 4:
        k = torch.arange(4, device=x.device).repeat_interleave(2 * n)  # (8n,)
        views = rotate(two_views(x.repeat(4, 1, 1, 1), aug.contrastive, generator=gen), k)
        return Views(views, y.repeat_interleave(2).repeat(4), k)
    k = torch.randint(0, 4, (n,), generator=gen, device=x.device).repeat_interleave(2)  # (2n,)
    views = rotate(two_views(x, aug.contrastive, generator=gen), k)
    return Views(views, y.repeat_interleave(2), k)


def light_view(x: Tensor, y: Tensor, aug: Augmenters, config: Any, gen) -> Views:
    """One lightly augmented view per image (the cross-entropy baseline)."""
    return Views(aug.light(x, gen), y)


def rotation_head_views(x: Tensor, y: Tensor, aug: Augmenters, config: Any, gen) -> Views:
    """The auxiliary-rotation baseline's views (Hendrycks et al. 2019).

    ``rotations_per_image=4``: one light view in its 4 rotations (4n views, rotation-major);
    the classifier's loss reads the upright block (``extra["main"]``), the rotation head
    every view. ``1``: the upright view and one random rotation of it (2n views); the
    rotation head reads the rotated block (``extra["rot"]``).
    """
    view = aug.light(x, gen)  # (n, 3, H, W)
    n = len(view)
    main = torch.arange(n, device=x.device)
    if config.rotations_per_image == 4:
        k = torch.arange(4, device=x.device).repeat_interleave(n)  # (4n,)
        rot_rows = torch.arange(4 * n, device=x.device)
        views = rotate(view.repeat(4, 1, 1, 1), k)
    else:
        k_rand = torch.randint(0, 4, (n,), generator=gen, device=x.device)
        k = torch.cat([torch.zeros_like(k_rand), k_rand])  # (2n,)
        rot_rows = torch.arange(n, 2 * n, device=x.device)
        views = rotate(view.repeat(2, 1, 1, 1), k)
    return Views(views, y.repeat(len(k) // n), k, {"main": main, "rot": rot_rows})
