"""Backbones: CIFAR ResNet-18 / ResNet-34 with a width multiplier, and the projection head.

The CIFAR variant of ResNet (He et al. 2016) used by SimCLR's CIFAR-10 recipe and by the
MCL paper (section 4): a 3x3 stride-1 stem without max-pool, four stages of basic blocks
with strides 1, 2, 2, 2, global average pooling. ``width`` scales every stage's channel
count (64, 128, 256, 512) so that CPU-sized runs are possible (``width=0.25`` gives
16 / 32 / 64 / 128 channels).

Every model takes float images ``(n, 3, H, W)`` in ``[0, 1]`` and normalises them itself
(CIFAR-10 channel statistics), so callers never have to remember a normalisation.

>>> import torch
>>> m = build_model("resnet18", width=0.25, proj_dim=128)
>>> m(torch.rand(2, 3, 32, 32)).shape
torch.Size([2, 128])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCHS",
    "BasicBlock",
    "CifarResNet",
    "MCLModel",
    "TV_ARCHS",
    "TorchvisionMCLModel",
    "build_model",
]

# stage depths of the two backbones the paper uses
ARCHS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


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


class MCLModel(nn.Module):
    """Encoder f, projection head g, and optional classifier heads.

    Attributes:
        backbone: the CIFAR ResNet encoder f_theta.
        head: SimCLR's CIFAR projection head g_phi, Linear-ReLU-Linear to ``proj_dim``
            (hidden width ``head_hidden``, default the feature width; the authors' code uses 2048).
        classifier: ``Linear(feat_dim, num_classes)`` for cross-entropy methods, else None.
        rot_head: ``Linear(feat_dim, 4)`` for the auxiliary rotation baseline, else None.

    ``normalize_input=False`` feeds the [0, 1] pixels unchanged, as the authors' code does
    (their loaders apply ``ToTensor`` only); mclviz's own models standardise with the
    CIFAR-10 channel statistics.

    ``forward(x)`` returns the projection ``z = g(f(x))`` of Eq. 12, which is what the
    contrastive losses and the Gaussian scoring use.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        width: float = 1.0,
        proj_dim: int = 128,
        num_classes: int = 0,
        rot_classes: int = 0,
        head_hidden: int | None = None,
        normalize_input: bool = True,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch={arch!r} is not known; choose one of {sorted(ARCHS)}")
        if not width > 0:
            raise ValueError(f"width={width!r} must be > 0 (e.g. 0.25 for a CPU-sized model)")
        if proj_dim < 1:
            raise ValueError(
                f"proj_dim={proj_dim!r} must be a positive integer (the paper uses 128)"
            )
        self.arch, self.width, self.proj_dim = arch, float(width), int(proj_dim)
        self.normalize_input = bool(normalize_input)
        mean, std = (CIFAR_MEAN, CIFAR_STD) if normalize_input else ((0.0,) * 3, (1.0,) * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.backbone = CifarResNet(ARCHS[arch], width)
        d = self.backbone.feat_dim
        hidden = int(head_hidden or d)
        self.head = nn.Sequential(
            nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, proj_dim)
        )
        self.classifier = nn.Linear(d, num_classes) if num_classes else None
        self.rot_head = nn.Linear(d, rot_classes) if rot_classes else None

    @property
    def feat_dim(self) -> int:
        return self.backbone.feat_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features ``f(x)``: ``(n, 3, H, W)`` in [0, 1] -> ``(n, feat_dim)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (n, 3, H, W) float images in [0, 1]"
            )
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor, output: str = "z"):
        """Projection ``z = g(f(x))``: ``(n, 3, H, W)`` -> ``(n, proj_dim)`` (not normalised).

        ``output`` picks another head, so that a ``DistributedDataParallel`` wrapper (which
        only sees ``forward``) can train every method: ``"features"`` -> ``f(x)``,
        ``"logits"`` -> class logits, ``"rot"`` -> ``(class logits, rotation logits)``.
        """
        if output == "z":
            return self.head(self.features(x))
        if output == "features":
            return self.features(x)
        if output == "logits":
            return self.logits(x)
        if output == "rot":
            if self.rot_head is None or self.classifier is None:
                raise ValueError(
                    "output='rot' needs a model built with num_classes and rot_classes"
                )
            h = self.features(x)
            return self.classifier(h), self.rot_head(h)
        raise ValueError(f"output={output!r}: choose 'z', 'features', 'logits' or 'rot'")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, num_classes)``; only for models built with ``num_classes``."""
        if self.classifier is None:
            raise ValueError(
                "this model has no classifier head (it was trained contrastively); "
                "use model(x) embeddings with a Mahalanobis detector instead"
            )
        return self.classifier(self.features(x))


def build_model(
    name: str = "resnet18",
    width: float = 1.0,
    proj_dim: int = 128,
    num_classes: int = 0,
    rot_classes: int = 0,
    head_hidden: int | None = None,
    normalize_input: bool = True,
) -> MCLModel:
    """Build a CIFAR ResNet with projection head (and classifier heads when asked).

    Args:
        name: ``"resnet18"`` or ``"resnet34"`` (the paper's main backbone).
        width: channel multiplier; 1.0 is the standard network, 0.25 a CPU-sized one.
        proj_dim: output dimension of the projection head (128 in the paper).
        num_classes: size of a linear classifier on the features (0 = none).
        rot_classes: size of an auxiliary rotation head (4 for Hendrycks et al. 2019; 0 = none).
        head_hidden: hidden width of the projection head (None = the feature width).
        normalize_input: standardise pixels with CIFAR-10 statistics inside the model.

    ``name`` may also be a torchvision ImageNet ResNet of ``TV_ARCHS`` (``"tv-resnet18"``...),
    built by :class:`TorchvisionMCLModel` (``width`` must then be 1.0).
    """
    if name in TV_ARCHS:
        return TorchvisionMCLModel(
            name, width, proj_dim, num_classes, rot_classes, head_hidden, normalize_input
        )
    return MCLModel(name, width, proj_dim, num_classes, rot_classes, head_hidden, normalize_input)


# ------------------------------------------------------------------ torchvision ImageNet ResNets
# Mean-Shifted Contrastive Loss (Reiss & Hoshen 2021) starts from ImageNet-pretrained ResNets.
# arch name -> torchvision constructor name
TV_ARCHS: dict[str, str] = {
    "tv-resnet18": "resnet18",
    "tv-resnet34": "resnet34",
    "tv-resnet50": "resnet50",
    "tv-resnet152": "resnet152",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TV_IMAGE_SIZE = 224  # ImageNet resolution; Reiss & Hoshen upsample CIFAR-10 to 224


class TorchvisionMCLModel(MCLModel):
    """An ImageNet ResNet of torchvision with the interface of :class:`MCLModel`.

    ``backbone`` is torchvision's ``resnet18`` / ``34`` / ``50`` / ``152`` with
    ``fc = Identity``, so its output is the pooled feature (512 or 2048 wide), as in
    Reiss & Hoshen's code; ``head`` is the same Linear-ReLU-Linear projection as
    :class:`MCLModel` (unused by mean-shifted fine-tuning). The state-dict names under
    ``backbone.`` are torchvision's, so ImageNet weights load with
    ``mclviz.one_class.load_imagenet_backbone`` (which never downloads).

    ``features(x)`` takes ``(n, 3, H, W)`` images in [0, 1] (e.g. CIFAR's 32x32), resizes
    them to ``image_size`` (224) with bicubic interpolation and clamps to [0, 1] (the
    authors resize the PIL image with bicubic filtering), then standardises with ImageNet's
    channel statistics (``normalize_input=False`` skips that, as for :class:`MCLModel`).

    The widths are ImageNet's: ``width`` must be 1.0.

    >>> m = build_model("tv-resnet18", proj_dim=16)
    >>> m.feat_dim, m(torch.rand(2, 3, 32, 32)).shape
    (512, torch.Size([2, 16]))
    """

    def __init__(
        self,
        arch: str = "tv-resnet18",
        width: float = 1.0,
        proj_dim: int = 128,
        num_classes: int = 0,
        rot_classes: int = 0,
        head_hidden: int | None = None,
        normalize_input: bool = True,
        image_size: int = TV_IMAGE_SIZE,
    ) -> None:
        # MCLModel.__init__ builds a CIFAR ResNet; this class builds its own modules.
        nn.Module.__init__(self)
        if arch not in TV_ARCHS:
            raise ValueError(
                f"arch={arch!r} is not a torchvision arch; choose one of {sorted(TV_ARCHS)}"
            )
        if width != 1.0:
            raise ValueError(
                f"width={width!r}: {arch} has torchvision's fixed ImageNet widths; set width=1.0"
            )
        if proj_dim < 1:
            raise ValueError(
                f"proj_dim={proj_dim!r} must be a positive integer (the paper uses 128)"
            )
        if int(image_size) != image_size or image_size < 32:
            raise ValueError(f"image_size={image_size!r} must be an integer >= 32 (authors: 224)")
        import torchvision  # heavy; only needed for these archs

        self.arch, self.width, self.proj_dim = arch, 1.0, int(proj_dim)
        self.image_size = int(image_size)
        self.normalize_input = bool(normalize_input)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize_input else ((0.0,) * 3, (1.0,) * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        net = getattr(torchvision.models, TV_ARCHS[arch])(weights=None)  # random init, no download
        d = net.fc.in_features
        net.fc = nn.Identity()
        net.feat_dim = d  # read by MCLModel.feat_dim
        self.backbone = net
        hidden = int(head_hidden or d)
        self.head = nn.Sequential(
            nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, proj_dim)
        )
        self.classifier = nn.Linear(d, num_classes) if num_classes else None
        self.rot_head = nn.Linear(d, rot_classes) if rot_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features: ``(n, 3, H, W)`` in [0, 1] -> resized to 224 -> ``(n, feat_dim)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (n, 3, H, W) float images in [0, 1]"
            )
        s = self.image_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", align_corners=False)
            x = x.clamp(0.0, 1.0)  # (n, 3, s, s); bicubic overshoots a little
        return self.backbone((x - self.mean) / self.std)
