"""How data sets, methods, detectors and SEI settings are named on screen: one place.

Code keys (``"tinyimagenet-resize"``, ``"mcl-noaux"``, ``"mahalanobis+pre"``) are what the
library and its files use; people read the display names. Figures, widgets, tables,
notebooks and the report all name things through these functions, so a name is changed
here once. A key without a display name is shown as it is (a user's own image folder, a
method registered at run time).

- :func:`dataset_name`: ``"tinyimagenet-resize"`` -> ``"Tiny ImageNet (resize)"``.
- :func:`method_name`: ``"mcl-noaux"`` -> ``"MCL w/o aux"``.
- :func:`detector_name`: ``"msp"`` -> ``"MSP"``, ``"knn+flip"`` -> ``"kNN + flip TTA"``.
- :func:`sei_name`: ``(8, "w-avg")`` -> ``"8-way w-avg"``, ``(1, "none")`` -> ``"no SEI"``.
- :func:`variant_name`, :func:`mode_name`: SEI variants and the retraining modes.

>>> dataset_name("gaussian"), method_name("mcl"), sei_name(4, "max")
('Gaussian noise', 'MCL', '4-way max')
"""

from __future__ import annotations

import os

__all__ = [
    "DATASETS",
    "DETECTORS",
    "METHODS",
    "MODES",
    "VARIANTS",
    "dataset_name",
    "detector_name",
    "method_name",
    "mode_name",
    "sei_name",
    "variant_name",
]

#: data sets (in-distribution and OOD), by their ``mclviz.data`` key
DATASETS: dict[str, str] = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
    "digits": "digits (8x8, upsampled)",
    "tinyimagenet-resize": "Tiny ImageNet (resize)",
    "gaussian": "Gaussian noise",
    "uniform": "uniform noise",
    "open-set": "open set (unknown classes)",
}

#: training methods, by their ``mclviz.methods`` name (the README's rows)
METHODS: dict[str, str] = {
    "mcl": "MCL",
    "mcl-noaux": "MCL w/o aux",
    "ccm": "CCM",
    "supclr": "SupCLR",
    "simclr": "SimCLR",
    "ce": "cross-entropy",
    "rot": "cross-entropy + rotation",
    "msc": "mean-shifted",
}

#: OOD detectors, by their ``Detector.name`` (``mclviz.scoring``)
DETECTORS: dict[str, str] = {
    "gaussians": "class Gaussians",
    "class-mean": "class means",
    "msp": "MSP",
    "energy": "energy",
    "odin": "ODIN",
    "mahalanobis": "Mahalanobis",
    "mahalanobis+pre": "Mahalanobis + input preprocessing",
    "rmd": "relative Mahalanobis",
    "knn": "kNN",
    "knn-cosine": "kNN (cosine)",
    "vim": "ViM",
}

#: SEI aggregation variants (``mclviz.scoring.aggregate``)
VARIANTS: dict[str, str] = {"paper": "paper", "official": "official code"}

#: retraining modes (``mclviz.evaluation.RetrainResult.mode``), short
MODES: dict[str, str] = {"fast": "head retrained", "full": "whole network", "model": "as trained"}


def dataset_name(key: str) -> str:
    """The display name of data set ``key``; a path is named by its last part.

    >>> dataset_name("tinyimagenet-resize"), dataset_name("/data/my-photos.zip")
    ('Tiny ImageNet (resize)', 'my-photos.zip')
    """
    key = str(key)
    if key in DATASETS:
        return DATASETS[key]
    return os.path.basename(key.rstrip("/\\")) or key


def method_name(key: str) -> str:
    """The display name of method ``key`` (the key itself when it has none).

    >>> method_name("ccm"), method_name("MCL + aux")
    ('CCM', 'MCL + aux')
    """
    return METHODS.get(str(key), str(key))


def detector_name(key: str) -> str:
    """The display name of detector ``key``; a ``+flip`` suffix reads "+ flip TTA".

    >>> detector_name("msp+flip")
    'MSP + flip TTA'
    """
    key = str(key)
    if key.endswith("+flip"):
        return f"{detector_name(key[: -len('+flip')])} + flip TTA"
    return DETECTORS.get(key, key)


def sei_name(ways: int, aggregation: str = "none") -> str:
    """An SEI setting: ``"no SEI"`` for one view, else ``"<ways>-way <aggregation>"``.

    >>> sei_name(1, "none"), sei_name(8, "w-avg")
    ('no SEI', '8-way w-avg')
    """
    ways = int(ways)
    return "no SEI" if ways == 1 else f"{ways}-way {aggregation}"


def variant_name(key: str) -> str:
    """The display name of an SEI variant (``"official"`` -> ``"official code"``)."""
    return VARIANTS.get(str(key), str(key))


def mode_name(key: str) -> str:
    """The short display name of a retraining mode (``"fast"`` -> ``"head retrained"``)."""
    return MODES.get(str(key), str(key))
