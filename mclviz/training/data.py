"""The training images a config asks for, and the seeds every random draw derives from."""

from __future__ import annotations

import torch

from ..data import load_images, one_class, open_set_split, validation_split

__all__ = ["prepare_data", "seed_of"]


def seed_of(*parts: int) -> int:
    """A 63-bit seed from integers (FNV-1a): ``seed_of(seed, epoch)``, ``seed_of(seed, step, 1)``.

    Every random draw of a run is a pure function of such a seed, so a resumed run repeats
    the draws an uninterrupted one makes.
    """
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


def prepare_data(config) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images and labels the config asks for.

    In this order: open-set (``known_classes``, relabelled 0..K-1), one-class
    (``normal_class``, labels 0), the validation hold-out (``holdout`` images, stratified,
    ``mclviz.data.validation_split``), then an explicit seeded ``train_subset``.
    """
    images, labels = load_images(config.dataset, "train", root=config.data_root)
    if config.known_classes:
        keep, relabel = open_set_split(labels, known=tuple(config.known_classes))
        images, labels = images[keep], relabel[keep]
    if config.normal_class is not None:
        keep = one_class(labels, normal=config.normal_class)
        if not bool(keep.any()):
            raise ValueError(f"normal_class={config.normal_class} has no training images")
        images, labels = images[keep], torch.zeros(int(keep.sum()), dtype=torch.long)
    if config.holdout:
        val = validation_split(labels, config.holdout, seed=config.seed)
        images, labels = images[~val], labels[~val]
    if config.train_subset is not None and config.train_subset < len(labels):
        g = torch.Generator().manual_seed(seed_of(config.seed, 7919))
        idx = torch.randperm(len(labels), generator=g)[: config.train_subset].sort().values
        images, labels = images[idx], labels[idx]
    return images, labels
