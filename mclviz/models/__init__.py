"""Backbones and heads: CIFAR ResNets, FastNet, torchvision's ImageNet ResNets.

Every model is an :class:`MCLModel`: encoder ``f`` (``features``), projection head ``g``
(``forward``, the output Eq. 12 scores) and the classifier heads a method asks for. Models
take float images ``(n, 3, H, W)`` in ``[0, 1]`` and normalise them themselves.

* :mod:`.resnet`: the paper's CIFAR ResNet-18 / 34 with a width multiplier.
* :mod:`.fastnet`: :class:`FastNet`, the recommended CPU backbone.
* :mod:`.torchvision`: torchvision's ImageNet ResNets and their weights (mean-shifted).
* :mod:`.heads`: the projection head.

>>> import torch
>>> m = build_model("resnet18", width=0.25, proj_dim=128)
>>> m(torch.rand(2, 3, 32, 32)).shape
torch.Size([2, 128])
"""

from .build import build_model
from .fastnet import FastNet
from .heads import projection_head
from .model import BACKBONES, CIFAR_MEAN, CIFAR_STD, MCLModel
from .resnet import ARCHS, BasicBlock, CifarResNet
from .torchvision import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TV_ARCHS,
    TV_IMAGE_SIZE,
    TorchvisionMCLModel,
    describe_imagenet_weights,
    imagenet_weights_file,
    load_imagenet_backbone,
)

__all__ = [
    "ARCHS",
    "BACKBONES",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TV_ARCHS",
    "TV_IMAGE_SIZE",
    "BasicBlock",
    "CifarResNet",
    "FastNet",
    "MCLModel",
    "TorchvisionMCLModel",
    "build_model",
    "describe_imagenet_weights",
    "imagenet_weights_file",
    "load_imagenet_backbone",
    "projection_head",
]
