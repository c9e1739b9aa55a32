"""Inputs of the widget tests: a feature cache with one cluster per class, random images."""

from __future__ import annotations

import torch

from mclviz.training import FeatureCache


def feature_cache(n=80, classes=4, f=16, seed=0) -> FeatureCache:
    """Features with one cluster per class (so the retrained heads learn something)."""
    g = torch.Generator().manual_seed(seed)
    centers = 3 * torch.randn(classes, f, generator=g)

    def feats(labels, *shape):
        return centers[labels].view(len(labels), *[1] * len(shape), f) + torch.randn(
            len(labels), *shape, f, generator=g
        )

    y = torch.arange(n) % classes
    yt = torch.arange(40) % classes
    ood = {
        "far": 3 * torch.randn(30, 4, f, generator=g) + 6,
        "near": feats(torch.arange(30) % classes, 4) * 1.5,
    }
    return FeatureCache(
        views=feats(y, 4, 3),
        labels=y,
        train=feats(y, 4),
        test=feats(yt, 4),
        test_labels=yt,
        ood=ood,
        hidden=16,
        proj_dim=8,
    )


def random_images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
