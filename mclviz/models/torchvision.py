"""torchvision's ImageNet ResNets with MCLModel's interface, and their ImageNet weights.

Mean-Shifted Contrastive Loss (Reiss & Hoshen 2021) starts from ImageNet-pretrained
ResNets; the weights are read from the torch hub cache and never downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._io import sha256
from .heads import projection_head
from .model import MCLModel

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TV_ARCHS",
    "TV_IMAGE_SIZE",
    "TorchvisionMCLModel",
    "describe_imagenet_weights",
    "imagenet_weights_file",
    "load_imagenet_backbone",
]

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
    :func:`load_imagenet_backbone` (which never downloads).

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
        self.head = projection_head(d, proj_dim, head_hidden)
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


def _imagenet_candidates(arch: str) -> list[tuple[str, str]]:
    """(weights name, file name) of torchvision's ImageNet weights for ``arch``, V1 first."""
    if arch not in TV_ARCHS:
        raise ValueError(
            f"arch={arch!r} has no torchvision ImageNet weights; choose one of {sorted(TV_ARCHS)}"
        )
    import torchvision.models as tvm

    enum = tvm.get_model_weights(TV_ARCHS[arch])  # e.g. ResNet18_Weights; IMAGENET1K_V1 first
    return [(f"{enum.__name__}.{w.name}", w.url.rsplit("/", 1)[-1]) for w in enum]


def imagenet_weights_file(arch: str) -> Path:
    """The torchvision ImageNet weights file of ``arch`` in the torch hub cache.

    Looks in ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, default
    ``~/.cache/torch/hub/checkpoints``) for the files torchvision writes, IMAGENET1K_V1 first
    (what Reiss & Hoshen's ``pretrained=True`` loads), e.g. ``resnet18-f37072fd.pth``.
    Nothing is downloaded.

    Raises:
        FileNotFoundError: no such file; the message names the path and how to get it.
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    candidates = _imagenet_candidates(arch)
    for _, name in candidates:
        if (folder / name).is_file():
            return folder / name
    weights, name = candidates[0]
    raise FileNotFoundError(
        f"torchvision's ImageNet weights for {arch} are not in the torch cache: expected "
        f"{folder / name} ({weights}). mclviz never downloads them. On a machine with "
        f'internet access run `python -c "import torchvision; torchvision.models.'
        f"{TV_ARCHS[arch]}(weights='{weights.split('.')[-1]}')\"` and copy the file to "
        f"{folder}/ (or point $TORCH_HOME at a folder holding hub/checkpoints/{name}); or "
        "start from an mclviz checkpoint instead (pretrained=<path>)"
    )


def describe_imagenet_weights(arch: str) -> str:
    """One line naming the ImageNet weights file of ``arch`` and whether its sha256 checks."""
    path = imagenet_weights_file(arch)
    weights = dict((n, w) for w, n in _imagenet_candidates(arch))[path.name]
    expected = path.name.rsplit("-", 1)[-1].split(".")[0]  # torchvision's sha256 prefix
    digest = sha256(path)
    check = (
        "sha256 ok"
        if digest.startswith(expected)
        else f"sha256 {digest[:8]} != {expected}: NOT torchvision's file"
    )
    return f"{arch} ImageNet ({weights}, {path.name}, {check})"


def load_imagenet_backbone(model: MCLModel) -> MCLModel:
    """Load torchvision's ImageNet weights into ``model.backbone`` (in place) and return it.

    Used by ``mclviz.training.train`` when ``config.pretrained == "imagenet"``. The classifier ``fc``
    of the file is dropped (the backbone's ``fc`` is an Identity, as in the authors' code).
    The file is read with ``torch.load(weights_only=True)``, which runs no code.

    Args:
        model: a model of a torchvision arch (``build_model("tv-resnet18")``...).

    Raises:
        ValueError: ``model`` is not a torchvision arch, or the file does not fit it.
        FileNotFoundError: the weights are not in the torch cache (see
            :func:`imagenet_weights_file`).
    """
    arch = getattr(model, "arch", None)
    if arch not in TV_ARCHS:
        raise ValueError(
            f"model has arch={arch!r}; ImageNet weights need a torchvision arch, build it with "
            f"build_model(name) for a name in {sorted(TV_ARCHS)}"
        )
    path = imagenet_weights_file(arch)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable PyTorch state dict ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); delete it and copy the file again"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        model.backbone.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {arch}: {str(err).splitlines()[0]} ...") from None
    return model
