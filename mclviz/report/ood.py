"""The OOD sets: ours and the paper's columns they stand for.

The report names our sets by :func:`mclviz.names.dataset_name` (as the plots, widgets and
notebooks do); :data:`PAPER_OOD_LABEL` names the paper's columns, which are not our sets.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DEFAULT_OOD",
    "PAPER_OOD",
    "PAPER_OOD_LABEL",
    "ablation_ood",
    "choose_claim_ood",
    "ood_column",
]

DEFAULT_OOD: tuple[str, ...] = ("tinyimagenet-resize", "gaussian", "uniform")

#: paper column -> our OOD set measuring it (exact or stand-in), None when we have none
PAPER_OOD = {
    "svhn": "svhn",
    "lsun_fix": None,
    "imagenet_fix": "tinyimagenet-resize",  # stand-in: same source images, resized not FIX
    "cifar100": "cifar100",
}
#: paper column -> its name in the paper (not a display name of ours: the paper's sets)
PAPER_OOD_LABEL = {
    "svhn": "SVHN",
    "lsun_fix": "LSUN (FIX)",
    "imagenet_fix": "ImageNet (FIX)",
    "cifar100": "CIFAR-100",
}


def ood_column(ood: str) -> str:
    """OOD set ``ood`` in a column name (``auroc_<column>_ours``)."""
    return ood.replace("-", "_")


def ablation_ood(ood: Sequence[str]) -> str | None:
    """Our OOD set for the paper's Tables 3-5 column (CIFAR-100 there)."""
    for name in ("cifar100", "tinyimagenet-resize"):
        if name in ood:
            return name
    return None


def choose_claim_ood(ood: Sequence[str]) -> str:
    """The OOD set the claims are decided on: Tiny ImageNet (resize) when there, else the first."""
    return "tinyimagenet-resize" if "tinyimagenet-resize" in ood else ood[0]
