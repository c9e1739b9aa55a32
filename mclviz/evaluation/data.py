"""The images an evaluation needs: train (for fitting detectors), test, and OOD sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..data import load_images, open_set_split, validation_split

__all__ = ["EvalData", "load_eval_data", "subset"]


@dataclass
class EvalData:
    """Train (x, y) for fitting the detectors, test (x, y), and OOD sets {name: x}."""

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    ood: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, (x, y) in (("train", self.train), ("test", self.test)):
            if len(x) != len(y):
                raise ValueError(f"{name} holds {len(x)} images but {len(y)} labels")


def subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int = 0):
    """A seeded random subset of ``n`` images (sorted indices), or everything for None."""
    if n is None or n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x[idx], y[idx]


def load_eval_data(
    dataset: str = "cifar10",
    *,
    ood: Sequence[str] = ("tinyimagenet-resize", "gaussian", "uniform"),
    known_classes: Sequence[int] | None = None,
    data_root: str | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    split: str = "test",
    holdout: int = 5000,
    seed: int = 0,
) -> EvalData:
    """Load train / test / OOD images for an evaluation (subsets are explicit and seeded).

    Args:
        dataset: the in-distribution data set (``mclviz.data``).
        ood: OOD set names; open-set evaluation (``known_classes``) adds ``"open-set"``,
            the test images of the unknown classes.
        known_classes: evaluate a model trained on these classes (relabelled 0..K-1).
        data_root: data root (None: ``$MCLVIZ_DATA``).
        train_subset, test_subset: seeded subsets of the training images (for fitting)
            and of the test images and each OOD set.
        split: ``"test"`` (the test split) or ``"val"``: the ``holdout`` training images
            that ``Config(holdout=...)`` kept out of training (same stratified draw, same
            ``seed``), with the rest of the training images for fitting. Tune on
            ``"val"``; report ``"test"`` once.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split={split!r}: choose 'test' or 'val' (held-out training images)")
    if split == "val" and known_classes:
        raise ValueError(
            "split='val' with known_classes is not supported: the open-set hold-out differs; "
            "evaluate open-set models on split='test'"
        )
    xtr, ytr = load_images(dataset, "train", root=data_root)
    if split == "val":
        val = validation_split(ytr, holdout, seed=seed)
        (xte, yte), (xtr, ytr) = (xtr[val], ytr[val]), (xtr[~val], ytr[~val])
    else:
        xte, yte = load_images(dataset, "test", root=data_root)
    ood_sets: dict[str, torch.Tensor] = {}
    if known_classes:
        keep, relabel = open_set_split(ytr, known=tuple(known_classes))
        xtr, ytr = xtr[keep], relabel[keep]
        keep, relabel = open_set_split(yte, known=tuple(known_classes))
        ood_sets["open-set"] = subset(xte[~keep], yte[~keep], test_subset, 1)[0]
        xte, yte = xte[keep], relabel[keep]
    xtr, ytr = subset(xtr, ytr, train_subset)
    xte, yte = subset(xte, yte, test_subset)
    for name in ood:
        xo, yo = load_images(name, "test", root=data_root)
        ood_sets[name] = subset(xo, yo, test_subset, 2)[0]
    return EvalData((xtr, ytr), (xte, yte), ood_sets)
