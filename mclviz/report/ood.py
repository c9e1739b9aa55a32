"""The OOD sets: ours, how the page names them, and the paper's columns they stand for."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DEFAULT_OOD",
    "PAPER_OOD",
    "PAPER_OOD_LABEL",
    "ablation_ood",
    "choose_claim_ood",
    "ood_column",
    "ood_label",
]

DEFAULT_OOD: tuple[str, ...] = ("tinyimagenet-resize", "gaussian", "uniform")

_OOD_NAMES = {
    "tinyimagenet-resize": "Tiny ImageNet (resize)",
    "gaussian": "Gaussian noise",
    "uniform": "uniform noise",
    "open-set": "open set (unknown classes)",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
}
#: paper column -> our OOD set measuring it (exact or stand-in), None when we have none
PAPER_OOD = {
    "svhn": "svhn",
    "lsun_fix": None,
    "imagenet_fix": "tinyimagenet-resize",  # stand-in: same source images, resized not FIX
    "cifar100": "cifar100",
}
#: paper column -> its name in the paper
PAPER_OOD_LABEL = {
    "svhn": "SVHN",
    "lsun_fix": "LSUN (FIX)",
    "imagenet_fix": "ImageNet (FIX)",
    "cifar100": "CIFAR-100",
}


def ood_label(name: str) -> str:
    """How the page names OOD set ``name`` ("Tiny ImageNet (resize)"; else the name)."""
    return _OOD_NAMES.get(name, name)


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
