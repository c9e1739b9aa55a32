"""Scoring: class-conditional Gaussians, Mahalanobis scores, self-ensemble inference, detectors.

Paper section 3 (Eq. 12-20). Everything here works on tensors of model outputs and never
sees a model (a detector may copy weights from one, ``Detector.bind``); the evaluation
pipeline turns images into outputs and runs the detectors.

Score direction everywhere: **higher = more in-distribution** (Eq. 14).

* :mod:`.covariance`: ``shrinkage_coefficient`` (Ledoit-Wolf, OAS), ``SHRINKAGES``.
* :mod:`.gaussians`: ``fit_gaussians``, ``gaussian_scores``, ``Gaussians`` (Eq. 12-13).
* :mod:`.sei`: ``fit_sei_gaussians``, ``sei_scores``, ``aggregate`` (Eq. 15-20).
* :mod:`.tta`: ``FlipTTA``, flip test-time augmentation around any one-view detector.
* :mod:`.detectors`: the detector protocol ``Detector`` and MCL's detectors:

  - ``ClassGaussians``: class Gaussians with SEI (MCL's scoring, Eq. 12-20);
  - ``ClassMean``: cosine similarity to the nearest class mean.

* :mod:`.baselines`: the field's baselines, each with its paper's defaults:

  - ``MSP``: maximum softmax probability (Hendrycks & Gimpel 2017);
  - ``Energy``: ``T logsumexp(logits / T)``, T = 1 (Liu et al. 2020);
  - ``ODIN``: max softmax at T = 1000 with input pre-processing eps = 0.0014 (Liang et al. 2018);
  - ``Mahalanobis``: tied-covariance Mahalanobis on raw features (Lee et al. 2018);
  - ``RelativeMahalanobis``: class minus background Mahalanobis distance (Ren et al. 2021);
  - ``KNN``: minus the distance to the k-th (50th) normalised neighbour (Sun et al. 2022);
  - ``ViM``: energy minus the scaled residual off the principal subspace (Wang et al. 2022);
  - ``CosineKNN``: mean cosine distance to k = 2 neighbours (Mean-Shifted Contrastive Loss).
"""

from ._checks import NotFittedError
from .baselines import KNN, MSP, ODIN, CosineKNN, Energy, Mahalanobis, RelativeMahalanobis, ViM
from .covariance import SHRINKAGES, shrinkage_coefficient
from .detectors import OUTPUTS, ClassGaussians, ClassMean, Detector
from .gaussians import COVARIANCES, Gaussians, fit_gaussians, gaussian_scores
from .sei import AGGREGATIONS, VARIANTS, aggregate, fit_sei_gaussians, sei_scores
from .tta import FlipTTA

__all__ = [
    "AGGREGATIONS",
    "COVARIANCES",
    "KNN",
    "MSP",
    "ODIN",
    "OUTPUTS",
    "SHRINKAGES",
    "VARIANTS",
    "ClassGaussians",
    "ClassMean",
    "CosineKNN",
    "Detector",
    "Energy",
    "FlipTTA",
    "Gaussians",
    "Mahalanobis",
    "NotFittedError",
    "RelativeMahalanobis",
    "ViM",
    "aggregate",
    "fit_gaussians",
    "fit_sei_gaussians",
    "gaussian_scores",
    "sei_scores",
    "shrinkage_coefficient",
]
