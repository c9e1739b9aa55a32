"""CIFAR ResNet-18 / ResNet-34 with a width multiplier (the paper's backbones).

The CIFAR variant of ResNet (He et al. 2016) used by SimCLR's CIFAR-10 recipe and by the
MCL paper (section 4): a 3x3 stride-1 stem without max-pool, four stages of basic blocks
with strides 1, 2, 2, 2, global average pooling. ``width`` scales every stage's channel
count (64, 128, 256, 512) so that CPU-sized runs are possible (``width=0.25`` gives
16 / 32 / 64 / 128 channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ARCHS", "BasicBlock", "CifarResNet"]

# stage depths of the two backbones the paper uses
ARCHS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet backbone: ``(n, 3, H, W)`` normalised images -> ``(n, feat_dim)`` features."""

    def __init__(self, depths: tuple[int, int, int, int], width: float = 1.0) -> None:
        super().__init__()
        channels = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(3, channels[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        c_in = channels[0]
        stages = []
        for i, (depth, c_out) in enumerate(zip(depths, channels, strict=True)):
            blocks = []
            for b in range(depth):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feat_dim = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)  # (n, feat_dim)
