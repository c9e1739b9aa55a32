"""MCLModel: encoder f, projection head g and optional classifier heads; ``build_model``.

Every model takes float images ``(n, 3, H, W)`` in ``[0, 1]`` and normalises them itself
(CIFAR-10 channel statistics), so callers never have to remember a normalisation.
"""

from __future__ import annotations

import torch
from torch import nn

from .fastnet import FastNet
from .heads import projection_head
from .resnet import ARCHS, CifarResNet

__all__ = ["BACKBONES", "CIFAR_MEAN", "CIFAR_STD", "MCLModel"]

#: every backbone of build_model (besides torchvision's TV_ARCHS)
BACKBONES = (*ARCHS, "fastnet")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


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
        head_norm: bool = False,
        bn_momentum: float | None = None,
    ) -> None:
        super().__init__()
        if arch not in BACKBONES:
            raise ValueError(f"arch={arch!r} is not known; choose one of {list(BACKBONES)}")
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
        if arch == "fastnet":
            self.backbone = FastNet(width, bn_momentum=0.4 if bn_momentum is None else bn_momentum)
        else:
            self.backbone = CifarResNet(ARCHS[arch], width)
            if bn_momentum is not None:
                for mod in self.backbone.modules():
                    if isinstance(mod, nn.BatchNorm2d):
                        mod.momentum = bn_momentum
        d = self.backbone.feat_dim
        self.head = projection_head(d, proj_dim, head_hidden, norm=head_norm)
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
        ``"logits"`` -> class logits, ``"rot"`` -> ``(class logits, rotation logits)``;
        a tuple of names -> :meth:`outputs` (several heads from one pass).
        """
        if isinstance(output, tuple | list):
            return self.outputs(x, tuple(output))
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
        raise ValueError(
            f"output={output!r}: choose 'z', 'features', 'logits', 'rot' or a tuple of them"
        )

    def outputs(self, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Several outputs from one backbone pass: ``names`` among ``"z"``, ``"features"``,
        ``"logits"``, ``"rot"`` (rotation logits) -> ``{name: (n, d) tensor}``."""
        h = self.features(x)
        out: dict[str, torch.Tensor] = {}
        for name in names:
            if name == "z":
                out[name] = self.head(h)
            elif name == "features":
                out[name] = h
            elif name in ("logits", "rot"):
                layer = self.classifier if name == "logits" else self.rot_head
                if layer is None:
                    raise ValueError(
                        f"output {name!r} needs a model built with "
                        f"{'num_classes' if name == 'logits' else 'rot_classes'}"
                    )
                out[name] = layer(h)
            else:
                raise ValueError(
                    f"output {name!r} is unknown; choose among 'z', 'features', 'logits', 'rot'"
                )
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, num_classes)``; only for models built with ``num_classes``."""
        if self.classifier is None:
            raise ValueError(
                "this model has no classifier head (it was trained contrastively); "
                "use model(x) embeddings with a Mahalanobis detector instead"
            )
        return self.classifier(self.features(x))
