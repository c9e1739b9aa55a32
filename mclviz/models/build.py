"""``build_model``: any backbone of mclviz with its heads, by name."""

from __future__ import annotations

from .model import MCLModel
from .torchvision import TV_ARCHS, TorchvisionMCLModel

__all__ = ["build_model"]


def build_model(
    name: str = "resnet18",
    width: float = 1.0,
    proj_dim: int = 128,
    num_classes: int = 0,
    rot_classes: int = 0,
    head_hidden: int | None = None,
    normalize_input: bool = True,
    head_norm: bool = False,
    bn_momentum: float | None = None,
) -> MCLModel:
    """Build a CIFAR ResNet (or FastNet) with projection head (and classifier heads when asked).

    Args:
        name: ``"resnet18"``, ``"resnet34"`` (the paper's main backbone) or ``"fastnet"``
            (:class:`FastNet`, the recommended CPU backbone).
        width: channel multiplier; 1.0 is the standard network, 0.25 a CPU-sized one.
        proj_dim: output dimension of the projection head (128 in the paper).
        num_classes: size of a linear classifier on the features (0 = none).
        rot_classes: size of an auxiliary rotation head (4 for Hendrycks et al. 2019; 0 = none).
        head_hidden: hidden width of the projection head (None = the feature width).
        normalize_input: standardise pixels with CIFAR-10 statistics inside the model.
        head_norm: batch norm in the projection head (:func:`projection_head`).
        bn_momentum: batch-norm momentum of the backbone (None: 0.1 for the ResNets,
            0.4 for FastNet).

    ``name`` may also be a torchvision ImageNet ResNet of ``TV_ARCHS`` (``"tv-resnet18"``...),
    built by :class:`TorchvisionMCLModel` (``width`` must then be 1.0).
    """
    if name in TV_ARCHS:
        return TorchvisionMCLModel(
            name, width, proj_dim, num_classes, rot_classes, head_hidden, normalize_input
        )
    return MCLModel(
        name,
        width,
        proj_dim,
        num_classes,
        rot_classes,
        head_hidden,
        normalize_input,
        head_norm=head_norm,
        bn_momentum=bn_momentum,
    )
