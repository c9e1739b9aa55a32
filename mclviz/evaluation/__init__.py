"""Evaluation: the scoring pipeline, checkpoint evaluation, retraining results, one-class.

* :func:`score` (:mod:`.pipeline`): fit detectors on a model's training outputs, score the
  test and OOD sets; :class:`Scores`; :func:`standard_detectors`.
* :class:`Outputs` (:mod:`.outputs`): a model's outputs on the evaluation images, on demand.
* :func:`evaluate` (:mod:`.evaluate`): one checkpoint's table of accuracy and OOD metrics.
* :func:`load_eval_data`, :class:`EvalData` (:mod:`.data`).
* :func:`retrain_head`, :func:`retrain_full`, :func:`score_model` (:mod:`.retrain`): the
  sliders' retrainings and their :class:`RetrainResult`.
* :func:`one_class_table`, :func:`knn_auroc`, :func:`evaluate_one_class`
  (:mod:`.one_class`): the mean-shifted one-class protocol.
* :func:`score_images`, :class:`ScoredImages` (:mod:`.user_images`): a user's own image
  files scored and called in- or out-of-distribution at a threshold set on the test set.
"""

from .data import EvalData, load_eval_data, subset
from .evaluate import checkpoint_outputs, evaluate, format_table
from .one_class import evaluate_one_class, knn_auroc, one_class_table
from .outputs import Outputs, ood_split
from .perturb import fitted_fingerprint, perturbed_outputs
from .pipeline import (
    BASELINES,
    DETECTOR_NAMES,
    DetectorScores,
    Scores,
    detector_unavailable,
    make_detectors,
    pick_detector,
    recommended_detector,
    recommended_gaussians,
    run_detector,
    score,
    scored_views,
    standard_detectors,
)
from .retrain import (
    MODE_LABELS,
    RETRAIN_METHODS,
    RetrainResult,
    check_hyperparameters,
    default_ways,
    retrain_full,
    retrain_head,
    score_embeddings,
    score_model,
)
from .user_images import ScoredImages, score_images

__all__ = [
    "BASELINES",
    "DETECTOR_NAMES",
    "MODE_LABELS",
    "RETRAIN_METHODS",
    "DetectorScores",
    "EvalData",
    "Outputs",
    "RetrainResult",
    "ScoredImages",
    "Scores",
    "check_hyperparameters",
    "checkpoint_outputs",
    "default_ways",
    "detector_unavailable",
    "evaluate",
    "evaluate_one_class",
    "format_table",
    "knn_auroc",
    "load_eval_data",
    "make_detectors",
    "pick_detector",
    "recommended_detector",
    "recommended_gaussians",
    "ood_split",
    "one_class_table",
    "fitted_fingerprint",
    "perturbed_outputs",
    "retrain_full",
    "retrain_head",
    "run_detector",
    "score",
    "score_embeddings",
    "score_images",
    "score_model",
    "standard_detectors",
    "subset",
    "scored_views",
]
