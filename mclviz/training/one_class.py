"""Mean-shifted fine-tuning runs (Reiss & Hoshen 2021): the recipe, its config, the run.

The method itself (views, loss, center, frozen batch norm) is the ``msc`` entry of
:mod:`mclviz.methods`; this module builds its config from a starting backbone and runs it
on one normal class (:func:`fine_tune`). Evaluation: :mod:`mclviz.evaluation.one_class`.

>>> MSC_RECIPE["batch_size"], MSC_RECIPE["weight_decay"], MSC_RECIPE["momentum"]
(64, 5e-05, 0.0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import build_model_from_config, load
from ..config import Config
from ..data import class_names, load_images, one_class
from ..device import resolve_device
from ..models import TV_ARCHS, MCLModel, imagenet_weights_file, load_imagenet_backbone
from .data import seed_of
from .train import TrainResult, train

__all__ = [
    "MSC_RECIPE",
    "OneClassData",
    "fine_tune",
    "load_one_class_data",
    "msc_config",
    "starting_model",
]

#: Reiss & Hoshen's fine-tuning recipe (their released ``main.py``) as config fields: SGD
#: without momentum, lr 1e-5, weight decay 5e-5, batch 64, 20 epochs (their ResNet-18
#: default), temperature 0.25; augmentation crop scale 0.2-1 and colour jitter
#: (0.4, 0.4, 0.4, 0.1) = strength 0.5 (MoCo v2's). See :func:`fine_tune` for what differs.
MSC_RECIPE: dict[str, Any] = {
    "batch_size": 64,
    "epochs": 20,
    "lr": None,  # -> msc_lr
    "msc_lr": 1e-5,
    "momentum": 0.0,
    "weight_decay": 5e-5,
    "msc_tau": 0.25,
    "crop_scale_min": 0.2,
    "jitter_strength": 0.5,
}
_DEFAULT_IMAGENET_ARCH = "tv-resnet18"


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class OneClassData:
    """Labelled train and test splits for the one-class protocol, loaded once.

    Attributes:
        train_images: (N, 3, H, W) uint8, every class of the training split.
        train_labels: (N,) int64.
        test_images: (M, 3, H, W) uint8, every class (or the explicit ``test_subset``).
        test_labels: (M,) int64.
        names: class names, indexed by label.
        dataset: the data set name (``mclviz.data``).
        test_subset: the size of the seeded test subset, None for the whole test set.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    names: list[str] = field(default_factory=list)
    dataset: str = "cifar10"
    test_subset: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names) if self.names else int(self.train_labels.max()) + 1

    def check_class(self, normal_class: int) -> int:
        """``normal_class`` as an int, or a ``ValueError`` naming the valid labels."""
        n = self.num_classes
        if (
            isinstance(normal_class, bool)
            or int(normal_class) != normal_class
            or not (0 <= normal_class < n)
        ):
            raise ValueError(
                f"normal_class={normal_class!r} is not a class label of "
                f"{self.dataset}; pass one of 0..{n - 1}"
            )
        return int(normal_class)

    def normal_train(
        self, normal_class: int, train_subset: int | None = None, seed: int = 0
    ) -> torch.Tensor:
        """(n, 3, H, W) uint8 training images of the normal class.

        With ``train_subset``, exactly the subset ``mclviz.training.prepare_data`` draws for a
        config with ``normal_class``, ``train_subset`` and ``seed`` (so a checkpoint's own
        config reproduces it).
        """
        c = self.check_class(normal_class)
        images = self.train_images[one_class(self.train_labels, normal=c)]
        if len(images) == 0:
            raise ValueError(f"normal_class={c} has no training images in {self.dataset}")
        if train_subset is not None and train_subset < len(images):
            g = torch.Generator().manual_seed(seed_of(seed, 7919))  # prepare_data's draw
            idx = torch.randperm(len(images), generator=g)[:train_subset].sort().values
            images = images[idx]
        return images

    def test_is_normal(self, normal_class: int) -> torch.Tensor:
        """(M,) bool, True for the test images of the normal class."""
        return one_class(self.test_labels, normal=self.check_class(normal_class))


def load_one_class_data(
    dataset: str = "cifar10",
    *,
    data_root: str | os.PathLike | None = None,
    test_subset: int | None = None,
) -> OneClassData:
    """Load the train and test splits of ``dataset`` (each class is a normal class in turn).

    Args:
        dataset: a labelled data set of ``mclviz.data`` (the paper: ``"cifar10"``).
        data_root: data root; None -> ``$MCLVIZ_DATA`` -> ``./data``.
        test_subset: test on this many test images of all classes (a seeded random subset,
            ``load_images(..., n=test_subset, seed=0)``); None = the whole test set, as the
            paper.
    """
    xtr, ytr = load_images(dataset, "train", root=data_root)
    xte, yte = load_images(dataset, "test", root=data_root)
    if test_subset is not None and test_subset < len(yte):
        xte, yte = load_images(dataset, "test", root=data_root, n=test_subset, seed=0)
    names = class_names(dataset, root=data_root)
    return OneClassData(xtr, ytr, xte, yte, names, str(dataset), test_subset)


# ----------------------------------------------------------------------------- backbones
def _check_pretrained(pretrained: Any) -> str:
    if pretrained is None or pretrained == "":
        raise ValueError(
            "pretrained=None: mean-shifted fine-tuning starts from a pretrained backbone; pass "
            "'imagenet' (torchvision weights in the torch cache) or an mclviz checkpoint path"
        )
    if str(pretrained) == "imagenet":
        return "imagenet"
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained={str(pretrained)!r} is neither 'imagenet' nor an existing checkpoint "
            "file; train one with `python -m mclviz train --method simclr ...`"
        )
    return str(path.resolve())


def msc_config(
    normal_class: int, *, pretrained: str | os.PathLike, config: Config | None = None
) -> Config:
    """The config of a mean-shifted fine-tuning run of ``normal_class`` from ``pretrained``.

    Args:
        normal_class: the normal class.
        pretrained: ``"imagenet"`` or the path of an mclviz checkpoint (stored resolved).
        config: the run's other fields; default the ``paper`` preset with
            :data:`MSC_RECIPE`. Its ``method``, ``normal_class`` and ``pretrained`` are
            set here, and the backbone fields are made to fit ``pretrained``.

    Backbone fields: from a checkpoint, ``arch``, ``width``, ``proj_dim``, ``head_hidden``
    and ``normalize_input`` are copied from its config. For ``"imagenet"``, ``width=1.0``
    and ``normalize_input=True`` (ImageNet statistics); the arch is kept when it is a
    torchvision arch, a CIFAR arch name maps to its torchvision counterpart
    (``"resnet18"`` -> ``"tv-resnet18"``), and without ``config`` it is ``"tv-resnet18"``.
    The starting backbone is described by :func:`~mclviz.training.describe_pretrained`
    (and recorded in the checkpoint's metrics as ``"backbone"``).
    """
    src = _check_pretrained(pretrained)
    if config is None:
        config = Config.preset(
            "paper",
            method="msc",
            normal_class=normal_class,
            arch=_DEFAULT_IMAGENET_ARCH,
            **MSC_RECIPE,
        )
    if src == "imagenet":
        arch = config.arch if config.arch in TV_ARCHS else f"tv-{config.arch}"
        # fail here, before any data is loaded, when the weights are not in the torch cache
        # (FileNotFoundError naming the file and how to get it; nothing is downloaded)
        imagenet_weights_file(arch)
        fields = {"arch": arch, "width": 1.0, "normalize_input": True}
    else:
        c = load(src).config
        fields = {
            k: getattr(c, k)
            for k in ("arch", "width", "proj_dim", "head_hidden", "normalize_input")
        }
    return config.replace(
        method="msc",
        normal_class=int(normal_class),
        pretrained=src,
        **fields,
    )


def starting_model(config: Config) -> MCLModel:
    """The backbone ``config.pretrained`` names, before any fine-tuning, on the config's device."""
    if config.pretrained == "imagenet":
        model = load_imagenet_backbone(build_model_from_config(config))
    else:
        model = load(config.pretrained).model
    return model.to(resolve_device(config.device)).eval()


def fine_tune(
    normal_class: int,
    *,
    pretrained: str | os.PathLike,
    config: Config | None = None,
    data: OneClassData | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune ``pretrained`` on the training images of ``normal_class`` (Reiss & Hoshen).

    A thin wrapper over :func:`mclviz.training.train` with ``method="msc"`` and the config of
    :func:`msc_config`. The backbone features ``f(x)`` (not the projection head) are
    trained with the mean-shifted loss, batch-norm statistics frozen (batch-norm layers in
    eval mode, their affine weights trained), as in the authors' code.

    Differences from the authors' released code (``main.py`` / ``utils.py``):

    * learning-rate schedule: mclviz's cosine annealing to 0 (``mclviz.training.lr_at``);
      theirs is constant (so the mean lr here is half theirs);
    * augmentation: mclviz's batched SimCLR family on the 32x32 image (crop scale
      ``crop_scale_min`` = 0.2-1, jitter strength 0.5 = (0.4, 0.4, 0.4, 0.1) with p 0.8,
      grayscale p 0.2, flip), then the model resizes to 224; theirs crops to 224 in PIL and
      adds a Gaussian blur (p 0.5), which mclviz's augmentation does not have;
    * they freeze conv1, bn1, layer1 and layer2 of ResNet-152 (not of ResNet-18); mclviz
      trains every layer of every arch;
    * test-time resize: bicubic to 224 for every arch (theirs for ResNet-18; ResNet-152
      uses Resize(256) + CenterCrop(224));
    * kNN: mean cosine distance (``scoring.KNN``) instead of faiss's summed squared L2
      distance of normalised features: the same ranking, so the same AUROC;
    * steps per epoch drop the last partial batch; ``precision="auto"`` may run the
      backbone in bf16 (the loss is float32); theirs is float32 throughout;
    * ``msc_angular``: see the ``msc`` entry of ``mclviz.methods`` (weight 4 matches their
      ``--angular`` term).

    Args:
        normal_class: the normal class (0..9 for CIFAR-10).
        pretrained: ``"imagenet"`` or an mclviz checkpoint path (see :func:`msc_config`).
        config: the run's other fields (default: the paper preset with :data:`MSC_RECIPE`);
            ``train_subset`` and ``seed`` choose the normal training images as
            :meth:`OneClassData.normal_train` does.
        data: loaded splits (:func:`load_one_class_data`); None loads ``config.dataset``.
        out: run folder for ``checkpoint.safetensors``; None keeps the run in memory.
        progress: show a progress bar.

    Returns:
        The :class:`~mclviz.training.TrainResult`; ``describe_pretrained(result.config)`` names
        the starting backbone.
    """
    cfg = msc_config(normal_class, pretrained=pretrained, config=config)
    train_data = None
    if data is not None:
        cfg = cfg.replace(dataset=data.dataset)  # provenance for evaluate_one_class
        images = data.normal_train(cfg.normal_class, cfg.train_subset, cfg.seed)
        train_data = (images, torch.zeros(len(images), dtype=torch.long))
    return train(cfg, out=out, data=train_data, progress=progress)
