"""One-class anomaly detection with the Mean-Shifted Contrastive Loss (Reiss & Hoshen 2021).

The one-class protocol of their paper's CIFAR-10 table: for each class in turn, train on
that class's training images only, test on the whole test set with the other nine classes
as anomalies, and report the AUROC per class and the mean. A test image scores minus its
mean cosine distance to its k = 2 nearest training features (:class:`mclviz.scoring.CosineKNN`; higher = more normal, as everywhere in mclviz).

* :func:`knn_auroc`: the one-class AUROC of a model's kNN scores.
* :func:`one_class_table`: the paper's table (kNN on the starting backbone, after
  fine-tuning, and an MCL Mahalanobis reference), one row per class plus the mean.
* :func:`evaluate_one_class`: the AUROC of a saved ``msc`` checkpoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..checkpoint import load
from ..config import Config
from ..device import resolve_device
from ..embed import embed
from ..metrics import ood_metrics
from ..scoring import CosineKNN, fit_gaussians, gaussian_scores
from ..training import (
    OneClassData,
    describe_pretrained,
    fine_tune,
    load_one_class_data,
    msc_config,
    starting_model,
)

__all__ = ["evaluate_one_class", "knn_auroc", "one_class_table"]


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
    scores = CosineKNN(k=k).fit(train_feats).score(test_feats)  # (M,), higher = more normal
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
    start = starting_model(cfg)
    backbone = describe_pretrained(cfg)
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
        row["backbone"] = backbone
        rows.append(row)
        del result
    df = pd.DataFrame(rows)
    scores = ["knn_pretrained", "msc", "mcl_mahalanobis"]
    mean = {
        "class": "mean",
        "name": "mean",
        **{s: df[s].mean(skipna=False) for s in scores},
        "backbone": backbone,
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
    backbone = (
        ck.metrics.get("backbone")
        or cfg.extra.get("backbone")  # checkpoints written before the metrics held it
        or f"{cfg.arch} from pretrained={cfg.pretrained!r}"
    )
    return {
        "auroc": auroc,
        "normal_class": c,
        "name": data.names[c] if data.names else str(c),
        "backbone": backbone,
        "n_train": len(data.normal_train(c, cfg.train_subset, cfg.seed)),
        "n_test": len(data.test_labels),
        "checkpoint": str(checkpoint_path),
    }
