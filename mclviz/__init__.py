"""mclviz: Masked Contrastive Learning for anomaly detection, and the views to look inside it.

The public API, by layer (each name also lives in its module):

* configuration and data: :class:`Config`, :data:`PRESETS`, :func:`load_images`;
* methods: :mod:`mclviz.methods` (``register`` a new one), models: :func:`build_model`;
* training: :func:`train`, :func:`fine_tune`; checkpoints: :func:`load`, :func:`save`,
  :func:`load_or_train` (the shipped models);
* scoring (pure tensors): the detectors (:class:`ClassGaussians`, :class:`MSP`,
  :class:`ODIN`, :class:`Energy`, :class:`Mahalanobis`, :class:`RelativeMahalanobis`,
  :class:`KNN`, :class:`ViM`, ...);
* evaluation: :func:`evaluate`, :func:`score` and :class:`Scores`, :class:`Outputs`,
  :func:`load_eval_data`, :func:`score_model`, :func:`retrain_head`, :func:`retrain_full`;
* figures, widgets, the report: :mod:`mclviz.plots`, :mod:`mclviz.widgets`,
  :func:`reproduce` (imported on first use: plotly and ipywidgets load only then).

Score direction everywhere: higher means more in-distribution (the paper's Eq. 14).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._version import __version__
from .checkpoint import Checkpoint, load, save
from .config import PRESETS, Config
from .data import load_images
from .device import Precision, resolve_device, resolve_precision
from .evaluation import (
    EvalData,
    Outputs,
    RetrainResult,
    Scores,
    evaluate,
    load_eval_data,
    retrain_full,
    retrain_head,
    score,
    score_model,
    standard_detectors,
)
from .models import MCLModel, build_model
from .scoring import (
    KNN,
    MSP,
    ODIN,
    ClassGaussians,
    CosineKNN,
    Detector,
    Energy,
    FlipTTA,
    Mahalanobis,
    RelativeMahalanobis,
    ViM,
)
from .training import FeatureCache, TrainResult, fine_tune, train
from .zoo import load_or_train

#: names imported on first use (they pull in plotly / ipywidgets)
_LAZY = {"reproduce": ("report", "reproduce")}

__all__ = [
    "KNN",
    "MSP",
    "ODIN",
    "PRESETS",
    "Checkpoint",
    "ClassGaussians",
    "Config",
    "CosineKNN",
    "Detector",
    "Energy",
    "EvalData",
    "FeatureCache",
    "FlipTTA",
    "MCLModel",
    "Mahalanobis",
    "Outputs",
    "Precision",
    "RelativeMahalanobis",
    "RetrainResult",
    "Scores",
    "TrainResult",
    "ViM",
    "__version__",
    "build_model",
    "evaluate",
    "fine_tune",
    "load",
    "load_eval_data",
    "load_images",
    "load_or_train",
    "reproduce",
    "resolve_device",
    "resolve_precision",
    "retrain_full",
    "retrain_head",
    "save",
    "score",
    "score_model",
    "standard_detectors",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'mclviz' has no attribute {name!r}")
