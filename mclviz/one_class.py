"""One-class anomaly detection with the Mean-Shifted Contrastive Loss (Reiss & Hoshen 2021).

The one-class protocol of their paper's CIFAR-10 table: for each class in turn, train on
that class's training images only, test on the whole test set with the other nine classes
as anomalies, and report the AUROC per class and the mean.

The method (``method="msc"`` of :func:`mclviz.train.train`):

1. start from a pretrained backbone: torchvision's ImageNet ResNet (``pretrained="imagenet"``,
   archs ``"tv-resnet18"`` ... of :data:`mclviz.models.TV_ARCHS`, images resized to 224 and
   standardised with ImageNet statistics inside the model) or any mclviz checkpoint (e.g.
   one trained without labels with ``simclr``);
2. center ``c`` = mean of the L2-normalised backbone features of the normal training images;
3. fine-tune the backbone with the mean-shifted loss (:func:`mclviz.losses.mean_shifted`,
   optionally ``+ msc_angular *`` :func:`mclviz.losses.angular_center`), batch-norm
   statistics frozen;
4. score a test image by minus its mean cosine distance to its k = 2 nearest training
   features (:class:`mclviz.scoring.KNN`; higher = more normal, as everywhere in mclviz).

Public API:

* :func:`load_imagenet_backbone`: torchvision ImageNet weights from the torch hub cache
  (``torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth`` ...); never downloads.
* :func:`load_one_class_data` -> :class:`OneClassData`: train and test splits, loaded once.
* :func:`msc_config`, :func:`fine_tune`: the authors' recipe (:data:`MSC_RECIPE`) as a
  :class:`~mclviz.config.Config`, and the fine-tuning run (a thin wrapper over ``train``).
* :func:`knn_auroc`: the one-class AUROC of a model's kNN scores.
* :func:`one_class_table`: the paper's table (kNN on the starting backbone, after
  fine-tuning, and an MCL Mahalanobis reference), one row per class plus the mean.
* :func:`evaluate_one_class`: the AUROC of a saved ``msc`` checkpoint.

>>> MSC_RECIPE["batch_size"], MSC_RECIPE["weight_decay"], MSC_RECIPE["momentum"]
(64, 5e-05, 0.0)
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .checkpoint import build_model_from_config, load
from .config import Config
from .data import class_names, load_images, one_class
from .device import resolve_device
from .embed import embed
from .metrics import ood_metrics
from .models import TV_ARCHS, MCLModel
from .scoring import KNN, fit_gaussians, gaussian_scores
from .train import TrainResult, _seed, train

__all__ = [
    "MSC_RECIPE",
    "OneClassData",
    "evaluate_one_class",
    "fine_tune",
    "imagenet_weights_file",
    "knn_auroc",
    "load_imagenet_backbone",
    "load_one_class_data",
    "msc_config",
    "one_class_table",
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

        With ``train_subset``, exactly the subset ``mclviz.train.prepare_data`` draws for a
        config with ``normal_class``, ``train_subset`` and ``seed`` (so a checkpoint's own
        config reproduces it).
        """
        c = self.check_class(normal_class)
        images = self.train_images[one_class(self.train_labels, normal=c)]
        if len(images) == 0:
            raise ValueError(f"normal_class={c} has no training images in {self.dataset}")
        if train_subset is not None and train_subset < len(images):
            g = torch.Generator().manual_seed(_seed(seed, 7919))  # prepare_data's draw
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


# ----------------------------------------------------------------------------- ImageNet
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def _describe_imagenet(arch: str) -> str:
    path = imagenet_weights_file(arch)
    weights = dict((n, w) for w, n in _imagenet_candidates(arch))[path.name]
    expected = path.name.rsplit("-", 1)[-1].split(".")[0]  # torchvision's sha256 prefix
    digest = _sha256(path)
    check = (
        "sha256 ok"
        if digest.startswith(expected)
        else f"sha256 {digest[:8]} != {expected}: NOT torchvision's file"
    )
    return f"{arch} ImageNet ({weights}, {path.name}, {check})"


def load_imagenet_backbone(model: MCLModel) -> MCLModel:
    """Load torchvision's ImageNet weights into ``model.backbone`` (in place) and return it.

    Used by ``mclviz.train`` when ``config.pretrained == "imagenet"``. The classifier ``fc``
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


# ----------------------------------------------------------------------------- backbones
def _describe_checkpoint(path: Path) -> str:
    ck = load(path)
    c = ck.config
    what = c.extra.get("source") or f"{c.method} checkpoint"
    return (
        f"{c.arch} width {c.width:g} from {what} {path.name} (epoch {ck.epoch}, "
        f"sha256 {(ck.sha256 or '')[:12]})"
    )


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
    ``extra["backbone"]`` records which backbone was used (text).
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
        fields = {"arch": arch, "width": 1.0, "normalize_input": True}
        backbone = _describe_imagenet(arch)
    else:
        c = load(src).config
        fields = {
            k: getattr(c, k)
            for k in ("arch", "width", "proj_dim", "head_hidden", "normalize_input")
        }
        backbone = _describe_checkpoint(Path(src))
    return config.replace(
        method="msc",
        normal_class=int(normal_class),
        pretrained=src,
        extra={**config.extra, "backbone": backbone},
        **fields,
    )


def _starting_model(config: Config) -> MCLModel:
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

    A thin wrapper over :func:`mclviz.train.train` with ``method="msc"`` and the config of
    :func:`msc_config`. The backbone features ``f(x)`` (not the projection head) are
    trained with the mean-shifted loss, batch-norm statistics frozen (batch-norm layers in
    eval mode, their affine weights trained), as in the authors' code.

    Differences from the authors' released code (``main.py`` / ``utils.py``):

    * learning-rate schedule: mclviz's cosine annealing to 0 (``train.lr_at``); theirs is
      constant (so the mean lr here is half theirs);
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
    * ``msc_angular``: see ``mclviz.train`` (weight 4 matches their ``--angular`` term).

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
        The :class:`~mclviz.train.TrainResult`; ``result.config.extra["backbone"]`` names
        the starting backbone.
    """
    cfg = msc_config(normal_class, pretrained=pretrained, config=config)
    train_data = None
    if data is not None:
        cfg = cfg.replace(dataset=data.dataset)  # provenance for evaluate_one_class
        images = data.normal_train(cfg.normal_class, cfg.train_subset, cfg.seed)
        train_data = (images, torch.zeros(len(images), dtype=torch.long))
    return train(cfg, out=out, data=train_data, progress=progress)


# ----------------------------------------------------------------------------- scoring
def _embed_batch(model: torch.nn.Module) -> int:
    side = getattr(model, "image_size", 32)
    return max(16, 512 * 32**2 // side**2)  # torchvision archs run at 224: smaller batches


def _features(
    model: torch.nn.Module, images: torch.Tensor, output: str = "features", progress: bool = False
) -> torch.Tensor:
    batch = _embed_batch(model)
    z = embed(model, images, output=output, batch_size=batch, progress=progress)  # (n, 1, d)
    return z[:, 0]  # (n, d), float32, computed in eval mode


def _auroc(scores: torch.Tensor, is_normal: torch.Tensor) -> float:
    if bool(is_normal.all()) or not bool(is_normal.any()):
        raise ValueError(
            f"the test set holds {int(is_normal.sum())} normal images out of {len(is_normal)}; "
            "the AUROC needs both normal and anomalous test images (use a larger test_subset)"
        )
    return ood_metrics(scores[is_normal], scores[~is_normal])["auroc"]


def _knn_auroc(
    train_feats: torch.Tensor, test_feats: torch.Tensor, is_normal: torch.Tensor, k: int
) -> float:
    scores = KNN(k=k).fit(train_feats).score(test_feats)  # (M,), higher = more normal
    return _auroc(scores, is_normal)


def knn_auroc(
    model: torch.nn.Module,
    normal_class: int,
    *,
    data: OneClassData,
    k: int = 2,
    train_subset: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> float:
    """One-class AUROC of kNN scores on ``model.features`` (Reiss & Hoshen's evaluation).

    The normal class's training images are the kNN reference set; each test image scores
    minus its mean cosine distance to its ``k`` nearest training features (higher = more
    normal); the normal class's test images are the positives, the other classes the
    anomalies.

    Args:
        model: a model with ``features(x)`` (``MCLModel``); run in eval mode, float32.
        normal_class: the normal class.
        data: the splits (:func:`load_one_class_data`).
        k: neighbours (the authors: 2).
        train_subset, seed: the normal training images, as in :meth:`OneClassData.normal_train`
            (pass the run's ``config.train_subset`` and ``config.seed``).
        progress: progress bars of the embedding.
    """
    train_x = data.normal_train(normal_class, train_subset, seed)
    train_f = _features(model, train_x, progress=progress)
    test_f = _features(model, data.test_images, progress=progress)
    return _knn_auroc(train_f, test_f, data.test_is_normal(normal_class), k)


def _gaussian_auroc(train_z: torch.Tensor, test_z: torch.Tensor, is_normal: torch.Tensor) -> float:
    n, d = train_z.shape
    # fewer samples than dimensions: the sample covariance is singular, a larger ridge fixes it
    kw: dict[str, Any] = {} if n > d else {"allow_singular": True, "ridge": 1e-3}
    g = fit_gaussians(train_z, torch.zeros(n, dtype=torch.long), **kw)
    return _auroc(gaussian_scores(test_z, g)[:, 0], is_normal)  # minus squared Mahalanobis


def one_class_table(
    classes: Iterable[int],
    *,
    pretrained: str | os.PathLike,
    epochs: int,
    data_root: str | os.PathLike | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    mcl_checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    config: Config | None = None,
    data: OneClassData | None = None,
    out: str | os.PathLike | None = None,
    k: int = 2,
) -> pd.DataFrame:
    """The one-class table of Reiss & Hoshen: AUROC per normal class, and the mean.

    For each class of ``classes``: fine-tune ``pretrained`` on that class's training images
    (:func:`fine_tune`) and test on the test set with the other classes as anomalies.

    Columns:
        ``class`` (int; "mean" in the last row), ``name``,
        ``knn_pretrained``: kNN (k = 2) on the starting backbone's features, no fine-tuning;
        ``msc``: kNN after mean-shifted fine-tuning;
        ``mcl_mahalanobis``: the MCL checkpoint's projection ``z`` (Eq. 12), one Gaussian
        fitted on the normal class's training embeddings, minus the squared Mahalanobis
        distance (NaN without ``mcl_checkpoint``). MCL saw every class's labels in
        training, so this is a reference, not a one-class method;
        ``backbone``: the starting backbone (text).
    ``df.attrs`` holds the fine-tuning config (``"config"``) and the test-set size.

    Args:
        classes: normal classes to run, e.g. ``range(10)``.
        pretrained: ``"imagenet"`` or an mclviz checkpoint path (see :func:`msc_config`).
        epochs: fine-tuning epochs per class (the authors: 20).
        data_root: data root (ignored when ``data`` is given).
        train_subset: train on this many images of the normal class (seeded, explicit);
            None = all 5,000, as the paper.
        test_subset: test on this many test images (seeded); None = all 10,000.
        mcl_checkpoint: an MCL checkpoint for the reference column.
        progress: progress bars.
        config: the fine-tuning run's other fields (default :data:`MSC_RECIPE`);
            ``epochs`` and ``train_subset`` override it.
        data: already loaded splits (then ``data_root`` and ``test_subset`` are not used).
        out: folder for the per-class checkpoints ``out/class-<c>/checkpoint.safetensors``.
        k: kNN neighbours.
    """
    from tqdm.auto import tqdm

    classes = list(classes)
    if not classes:
        raise ValueError("classes is empty; pass normal classes, e.g. classes=range(10)")
    if data is None:
        data = load_one_class_data(data_root=data_root, test_subset=test_subset)
    classes = [data.check_class(c) for c in classes]
    cfg = msc_config(classes[0], pretrained=pretrained, config=config)
    cfg = cfg.replace(epochs=int(epochs), train_subset=train_subset)
    if data_root is not None:
        cfg = cfg.replace(data_root=str(data_root))
    start = _starting_model(cfg)
    test_pre = _features(start, data.test_images, progress=progress)  # (M, d), once
    mcl_model = None
    if mcl_checkpoint is not None:
        mcl_model = load(mcl_checkpoint, device=resolve_device(cfg.device)).model
        test_z = _features(mcl_model, data.test_images, output="z", progress=progress)
    rows = []
    for c in tqdm(classes, desc="one-class", unit="class", disable=not progress):
        is_normal = data.test_is_normal(c)
        train_x = data.normal_train(c, cfg.train_subset, cfg.seed)
        row: dict[str, Any] = {"class": c, "name": data.names[c] if data.names else str(c)}
        row["knn_pretrained"] = _knn_auroc(_features(start, train_x), test_pre, is_normal, k)
        run_out = Path(out) / f"class-{c}" if out is not None else None
        result = fine_tune(
            c, pretrained=cfg.pretrained, config=cfg, data=data, out=run_out, progress=progress
        )
        row["msc"] = knn_auroc(
            result.model,
            c,
            data=data,
            k=k,
            train_subset=cfg.train_subset,
            seed=cfg.seed,
            progress=progress,
        )
        row["mcl_mahalanobis"] = math.nan
        if mcl_model is not None:
            row["mcl_mahalanobis"] = _gaussian_auroc(
                _features(mcl_model, train_x, output="z"), test_z, is_normal
            )
        row["backbone"] = cfg.extra["backbone"]
        rows.append(row)
        del result
    df = pd.DataFrame(rows)
    scores = ["knn_pretrained", "msc", "mcl_mahalanobis"]
    mean = {
        "class": "mean",
        "name": "mean",
        **{s: df[s].mean(skipna=False) for s in scores},
        "backbone": cfg.extra["backbone"],
    }
    df = pd.concat([df, pd.DataFrame([mean])], ignore_index=True)
    run = {key: v for key, v in cfg.to_dict().items() if key != "normal_class"}
    df.attrs = {"config": run, "n_test": len(data.test_labels), "k": k}
    return df


def evaluate_one_class(
    checkpoint_path: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    test_subset: int | None = None,
    k: int = 2,
) -> dict[str, Any]:
    """The one-class AUROC of a saved ``msc`` checkpoint (kNN on its features).

    The kNN reference set is the run's own normal training images (its config's
    ``normal_class``, ``train_subset`` and ``seed``, drawn as ``mclviz.train`` drew them).

    Args:
        checkpoint_path: a checkpoint written by :func:`fine_tune` or ``python -m mclviz
            train --method msc``.
        data_root: data root; None -> the checkpoint config's, then ``$MCLVIZ_DATA``.
        test_subset: test on this many test images (seeded, as :func:`load_one_class_data`).
        k: kNN neighbours.

    Returns:
        ``{"auroc", "normal_class", "name", "backbone", "n_train", "n_test", "checkpoint"}``.
    """
    ck = load(checkpoint_path)
    cfg = ck.config
    if cfg.method != "msc" or cfg.normal_class is None:
        raise ValueError(
            f"{checkpoint_path} is a {cfg.method!r} checkpoint; evaluate_one_class needs one "
            "trained with method='msc' and a normal_class (mclviz.one_class.fine_tune)"
        )
    root = data_root if data_root is not None else cfg.data_root
    data = load_one_class_data(cfg.dataset, data_root=root, test_subset=test_subset)
    model = ck.model.to(resolve_device(cfg.device))
    auroc = knn_auroc(
        model, cfg.normal_class, data=data, k=k, train_subset=cfg.train_subset, seed=cfg.seed
    )
    c = cfg.normal_class
    backbone = cfg.extra.get("backbone") or f"{cfg.arch} from pretrained={cfg.pretrained!r}"
    return {
        "auroc": auroc,
        "normal_class": c,
        "name": data.names[c] if data.names else str(c),
        "backbone": backbone,
        "n_train": len(data.normal_train(c, cfg.train_subset, cfg.seed)),
        "n_test": len(data.test_labels),
        "checkpoint": str(checkpoint_path),
    }
