"""The one scoring pipeline: fit detectors on a model's training outputs, score test and OOD.

``score(outputs, detectors)`` is what ``evaluate``, the report, the notebooks and the
widgets all run. For every detector (:mod:`mclviz.scoring`, one ``fit`` / ``score``
protocol): ``fit`` on the training images' outputs (in the rotations the detector needs),
then ``predict_score`` on the test images and every OOD set (in the SEI views it
aggregates; after its input pre-processing when ``epsilon > 0``). The result,
:class:`Scores`, holds every detector's scores, predictions, accuracy and OOD metrics,
and the :class:`~.outputs.Outputs` they came from (the figures read their embeddings there).

:func:`standard_detectors` is the set a method is evaluated with by default: MCL's
class-conditional Gaussians (Eq. 12-20) for 1, 4 and 8 SEI views, every aggregation and
both variants, and, for classifiers, the maximum softmax probability.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from ..config import Config
from ..metrics import accuracy, ood_metrics
from ..scoring import (
    AGGREGATIONS,
    KNN,
    MSP,
    ODIN,
    VARIANTS,
    ClassGaussians,
    CosineKNN,
    Detector,
    Energy,
    FlipTTA,
    Mahalanobis,
    RelativeMahalanobis,
    ViM,
)
from .outputs import Outputs, ood_split

__all__ = [
    "BASELINES",
    "DETECTOR_NAMES",
    "DetectorScores",
    "Scores",
    "detector_unavailable",
    "make_detectors",
    "pick_detector",
    "recommended_detector",
    "recommended_gaussians",
    "score",
    "standard_detectors",
    "scored_views",
]


def scored_views(detector: Detector) -> list[int]:
    """The SEI views of a test image the detector scores (``scored_views``, else 0..views-1)."""
    return list(getattr(detector, "scored_views", range(detector.views)))


@dataclass
class DetectorScores:
    """One fitted detector's results.

    Attributes:
        detector: the fitted detector.
        score_in: (n,) test scores (higher = more in-distribution).
        score_out: {OOD name: (n_o,) scores}.
        pred: (n,) predicted test classes, None for detectors that do not classify.
        pred_out: {OOD name: (n_o,) the class each OOD image is taken for}.
        accuracy: test accuracy in [0, 1] (None without predictions).
    """

    detector: Detector
    score_in: torch.Tensor
    score_out: dict[str, torch.Tensor]
    pred: torch.Tensor | None = None
    pred_out: dict[str, torch.Tensor] = field(default_factory=dict)
    accuracy: float | None = None

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """{OOD name: AUROC, AUPR-in, AUPR-out, FPR at 95% TPR} (``mclviz.metrics``)."""
        return {name: ood_metrics(self.score_in, s) for name, s in self.score_out.items()}


@dataclass
class Scores:
    """Every detector's results on one model's evaluation, and the outputs behind them."""

    outputs: Outputs
    results: dict[str, DetectorScores]
    method: str = ""

    @property
    def test_labels(self) -> torch.Tensor:
        return self.outputs.data.test[1]

    def __getitem__(self, key: str | Detector) -> DetectorScores:
        k = key.key if isinstance(key, Detector) else key
        try:
            return self.results[k]
        except KeyError:
            raise KeyError(
                f"no detector {k!r} in these scores; have {list(self.results)}"
            ) from None

    def __iter__(self):
        return iter(self.results.values())

    def table(self) -> pd.DataFrame:
        """One row per detector and OOD set: how it was scored, accuracy, OOD metrics.

        Columns ``method, detector, ways, aggregation, variant, normalize, covariance,
        output, label, key, accuracy, ood, auroc, aupr_in, aupr_out, fpr95``; ``ways`` is
        the number of SEI views, ``aggregation`` ``"none"`` for one view.
        """
        rows: list[dict[str, Any]] = []
        for r in self:
            d = r.detector
            inner = getattr(d, "detector", d)  # a FlipTTA's wrapped detector
            views = len(scored_views(d)) if not hasattr(d, "detector") else 1
            info = {
                "method": self.method,
                "detector": d.name,
                "ways": views,
                "aggregation": getattr(inner, "aggregation", "none") if views > 1 else "none",
                "variant": getattr(inner, "variant", "paper"),
                "normalize": getattr(inner, "normalize", None),
                "covariance": getattr(inner, "covariance_", getattr(inner, "covariance", None)),
                "output": self.outputs.resolve(d.output),
                "label": d.label,
                "key": d.key,
                "accuracy": r.accuracy,
            }
            for name, m in r.metrics.items():
                rows.append({**info, "ood": name, **m})
        return pd.DataFrame(rows)


def standard_detectors(
    method,
    *,
    sei: Sequence[int] = (1, 4, 8),
    aggregations: Sequence[str] = AGGREGATIONS,
    variants: Sequence[str] = VARIANTS,
    covariance: str = "auto",
    normalize: bool = True,
) -> list[Detector]:
    """The detectors a method is evaluated with by default (see the module docstring).

    Args:
        method: the method's registry entry (``mclviz.methods.get(name)``).
        sei: numbers of SEI views (1 = plain Mahalanobis scoring).
        aggregations, variants: of SEI (``mclviz.scoring.aggregate``).
        covariance, normalize: of the class-conditional Gaussians.
    """
    bad = [w for w in sei if w not in (1, 4, 8)]
    if bad:
        raise ValueError(f"sei={list(sei)} holds {bad}; SEI uses 1, 4 or 8 views")
    dets: list[Detector] = []
    for w in sorted(set(sei)):
        for agg in ("avg",) if w == 1 else aggregations:
            for variant in variants:
                dets.append(
                    ClassGaussians(
                        views=w,
                        aggregation=agg,
                        variant=variant,
                        covariance=covariance,
                        normalize=normalize,
                    )
                )
    if method.classifier:
        dets.append(MSP())
    return dets


#: one-detector constructors by name (``--detector`` of the command line); ``+flip``
#: after a name wraps it in flip TTA (``FlipTTA``), e.g. ``msp+flip``
_SINGLE: dict[str, Any] = {
    "msp": MSP,
    "energy": Energy,
    "odin": ODIN,
    "mahalanobis": Mahalanobis,
    "mahalanobis+pre": lambda: Mahalanobis(epsilon=Mahalanobis.PREPROCESSING_EPSILON),
    "rmd": RelativeMahalanobis,
    "knn": KNN,
    "vim": ViM,
    "knn-cosine": CosineKNN,
}
#: every name ``make_detectors`` knows ("gaussians" is the SEI set of ``standard_detectors``)
DETECTOR_NAMES = ("gaussians", *_SINGLE)
#: the field's baselines, for the report's detector x model table
BASELINES = ("msp", "energy", "odin", "mahalanobis", "mahalanobis+pre", "rmd", "knn", "vim")
_NEEDS_CLASSIFIER = ("msp", "energy", "odin", "vim")


def _base_name(name: str) -> tuple[str, bool]:
    """(detector name without a ``+flip`` suffix, whether it had one); unknown names raise."""
    base, flip = (name[: -len("+flip")], True) if name.endswith("+flip") else (name, False)
    if base != "gaussians" and base not in _SINGLE:
        raise ValueError(
            f"detector {name!r} is not known; choose among {list(DETECTOR_NAMES)} "
            "(a '+flip' suffix adds flip TTA)"
        )
    return base, flip


def _method_and_config(method):
    """(registry entry, config or None) of a ``method`` argument: an entry or a Config."""
    if isinstance(method, Config):  # its method, and the heads its fields add
        return method.method_entry, method
    return method, None


def detector_unavailable(name: str, method) -> str | None:
    """Why detector ``name`` cannot score a model of ``method``, or None when it can.

    ``method``: the model's :class:`~mclviz.config.Config` (a checkpoint's ``config``), or
    a method's registry entry (``mclviz.methods.get(name)``) for the method's own heads.

    The one place that decides which detectors a model can use (``make_detectors``, the
    report's detector x model table, ``mclviz score --detector`` and notebook 03 ask it):
    the detectors that read logits (``msp``, ``energy``, ``odin``, ``vim``) need a
    classifier head, which the method has (``ce``, ``rot``) or the config adds (an
    auxiliary cross-entropy head, ``aux_ce > 0``: the ``mcl-ce`` model), i.e.
    ``entry.needs_classifier(config)``.
    """
    entry, config = _method_and_config(method)
    base, _ = _base_name(name)
    if base in _NEEDS_CLASSIFIER and not entry.needs_classifier(config):
        return "no classifier"
    return None


def make_detectors(
    names: Sequence[str],
    method,
    *,
    sei: Sequence[int] = (1, 4, 8),
    aggregations: Sequence[str] = AGGREGATIONS,
    variants: Sequence[str] = VARIANTS,
    covariance: str = "auto",
    normalize: bool = True,
) -> list[Detector]:
    """Detectors by name for a model of ``method``: its :class:`~mclviz.config.Config`
    (pass a checkpoint's ``config``, so that a config that adds a classifier head,
    ``aux_ce > 0``, gets the logit detectors) or a method's registry entry.

    ``"gaussians"`` is MCL's scoring for every SEI setting (:func:`standard_detectors`
    without MSP); the others are one detector each (:data:`DETECTOR_NAMES`), with a
    ``+flip`` suffix for flip TTA. A detector the model cannot use
    (:func:`detector_unavailable`) raises ValueError.
    """
    entry, config = _method_and_config(method)
    dets: list[Detector] = []
    for name in names:
        base, flip = _base_name(name)
        if base == "gaussians":
            dets += [
                d
                for d in standard_detectors(
                    entry,
                    sei=sei,
                    aggregations=aggregations,
                    variants=variants,
                    covariance=covariance,
                    normalize=normalize,
                )
                if isinstance(d, ClassGaussians)
            ]
            continue
        if detector_unavailable(name, method):
            raise ValueError(
                f"detector {name!r} reads a classifier's logits, but method={entry.name!r} "
                "has no classifier head"
                + (
                    " and this config adds none (aux_ce=0)"
                    if config is not None
                    else " (pass the checkpoint's config instead of the method if it was "
                    "trained with aux_ce > 0)"
                )
                + "; use gaussians, mahalanobis, rmd or knn"
            )
        det = _SINGLE[base]()
        dets.append(FlipTTA(det) if flip else det)
    return dets


def recommended_gaussians(method) -> ClassGaussians:
    """The class Gaussians of the evaluation's defaults, 8-way SEI w-avg with rotation labels."""
    views = 8 if method.rotation_labels else 1
    return ClassGaussians(views=views, aggregation="w-avg", covariance="auto")


def pick_detector(scores: Scores, *, gaussians_only: bool = False) -> str:
    """The key of the detector of ``scores`` a view shows when none is named.

    The method's :func:`recommended_detector` when it was scored; else (classifiers) MSP;
    else the class Gaussians with the most SEI views, w-avg aggregation and the paper's
    variant; else the first detector. ``gaussians_only`` considers only class Gaussians.
    """
    from .. import methods

    dets = [r.detector for r in scores]
    gauss = [d for d in dets if isinstance(d, ClassGaussians)]
    pool = gauss if gaussians_only else dets
    if not pool:
        raise ValueError(
            "these scores hold no "
            + ("ClassGaussians detector; pass detector=" if gaussians_only else "detector")
        )
    if scores.method in methods.names():
        entry = methods.get(scores.method)
        best = recommended_gaussians(entry) if gaussians_only else recommended_detector(entry)
        if best.key in scores.results:
            return best.key
        msp = [d for d in pool if isinstance(d, MSP)]
        if entry.classifier and msp:
            return msp[0].key
    if gauss:
        return max(
            gauss, key=lambda d: (d.views, d.aggregation == "w-avg", d.variant == "paper")
        ).key
    return pool[0].key


def recommended_detector(method) -> Detector:
    """The detector mclviz recommends for a model of ``method`` (its registry entry): what
    ``mclviz score``, the operating-point explorer and the result views use by default.

    One-class (``msc``): the cosine kNN of the mean-shifted paper; a classifier head
    (``ce``, ``rot``): MSP (the paper's Baseline); rotation labels without a classifier
    (``mcl``): class Gaussians with 8-way SEI w-avg (the paper's best, Table 4); other
    contrastive models: class Gaussians on the plain image (SEI hurts them, Table 5). The
    Gaussians take the evaluation's defaults (``covariance="auto"``, outputs
    L2-normalised, the paper's aggregation).
    """
    if method.one_class:
        return CosineKNN()
    if method.classifier:
        return MSP()
    return recommended_gaussians(method)


def run_detector(det: Detector, outputs: Outputs, split: str):
    """(pred or None, scores) of a fitted detector on one split of ``outputs``."""
    if det.epsilon:
        x = outputs.perturbed(det.output, split, det)
    else:
        x = outputs.get(det.output, split, scored_views(det))
    if x.shape[1] == 1 and not hasattr(det, "scored_views") and det.views == 1:
        x = x[:, 0]
    return det.predict_score(x)


def score(
    outputs: Outputs,
    detectors: Iterable[Detector],
    *,
    model: torch.nn.Module | None = None,
    method: str = "",
) -> Scores:
    """Fit every detector on the training outputs and score the test and OOD sets.

    Args:
        outputs: the model's outputs on the evaluation data (:class:`~.outputs.Outputs`).
        detectors: unfitted detectors (they are fitted here, in place).
        model: the model, for detectors that read its weights (``bind``, e.g. ViM's
            classifier); default ``outputs.model``.
        method: the model's method name (a label in the table).
    """
    model = model if model is not None else outputs.model
    y_train, y_test = outputs.data.train[1], outputs.data.test[1]
    results: dict[str, DetectorScores] = {}
    for det in detectors:
        if hasattr(det, "bind") and model is not None:
            det.bind(model)
        fit_views = det.fit_views if not hasattr(det, "scored_views") else 1
        x_train = outputs.get(det.output, "train", fit_views)
        det.fit(x_train[:, 0] if fit_views == 1 else x_train, y_train)
        pred, s_in = run_detector(det, outputs, "test")
        score_out, pred_out = {}, {}
        for name in outputs.data.ood:
            p, s = run_detector(det, outputs, ood_split(name))
            score_out[name] = s
            if p is not None:
                pred_out[name] = p
        acc = accuracy(pred, y_test) if pred is not None else None
        results[det.key] = DetectorScores(det, s_in, score_out, pred, pred_out, acc)
    return Scores(outputs, results, method)
