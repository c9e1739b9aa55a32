"""The models of the paper's comparison and what evaluating each gave.

A :class:`Setting` is one scored configuration of one model (the keys of an ``evaluate``
row); a :class:`ComparedModel` holds where a model's checkpoint came from and, once
evaluated, its ``evaluate`` table and :class:`~mclviz.evaluation.Scores`. The claims, the
tables and the figures read a setting's numbers through it (``row``, ``detector_scores``),
never by scoring again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..config import Config
from ..names import detector_name, method_name, sei_name
from ..scoring import KNN, ODIN, Energy, Mahalanobis

__all__ = [
    "DETECTOR_LABELS",
    "DEFAULT_METHODS",
    "KNOWN_CLASSES",
    "MSP",
    "OPEN_SET",
    "ComparedModel",
    "Setting",
    "config_mismatch",
    "expected_config",
    "find_row",
    "missing_reason",
    "model_name",
    "no_sei",
    "sei",
]

DEFAULT_METHODS: tuple[str, ...] = (
    "ce",
    "rot",
    "simclr",
    "supclr",
    "ccm",
    "mcl-noaux",
    "mcl",
    "mcl-ce",
)
OPEN_SET = "mcl-openset"
#: MCL with an auxiliary cross-entropy head (``aux_ce``): not the paper's loss, so it has its
#: own row and never stands in for ``mcl``
AUX_CE = "mcl-ce"
AUX_CE_WEIGHT = 1.0
KNOWN_CLASSES: list[int] = [0, 1, 2, 3, 4, 5]
# models evaluated with SEI (1, 4, 8 views); the others are scored on the plain image only
_SEI_MODELS = ("mcl", "rot", "mcl-noaux", OPEN_SET, AUX_CE)


_ODIN, _EPS = ODIN(), Mahalanobis.PREPROCESSING_EPSILON
_LEE = "Lee et al.; tied covariance, raw penultimate features"


def model_name(name: str) -> str:
    """How the report names a model of the comparison: its method's display name
    (:func:`mclviz.names.method_name`); the open-set model is MCL on known classes."""
    if name == OPEN_SET:
        return f"{method_name('mcl')} (open set)"
    if name == AUX_CE:
        return f"{method_name('mcl')} + auxiliary CE"
    return method_name(name)


#: how a setting names each detector of ``mclviz.evaluation.make_detectors`` (the
#: ``detector`` column of the report's results): its display name
#: (:func:`mclviz.names.detector_name`) and the hyperparameters the report runs it with
DETECTOR_LABELS: dict[str, str] = {
    "msp": detector_name("msp"),
    "energy": f"{detector_name('energy')} (T={Energy().temperature:g})",
    "odin": f"{detector_name('odin')} (T={_ODIN.temperature:g}, input pre-processing "
    f"eps={_ODIN.epsilon:g}; fixed, not tuned on OOD data)",
    "mahalanobis": f"{detector_name('mahalanobis')} ({_LEE})",
    "mahalanobis+pre": f"{detector_name('mahalanobis+pre')} ({_LEE}, eps={_EPS:g}; "
    "no feature ensemble)",
    "rmd": f"{detector_name('rmd')} (tied covariance, raw penultimate features)",
    "knn": f"{detector_name('knn')} (k={KNN().k}, L2-normalised penultimate features)",
    "vim": f"{detector_name('vim')} (penultimate features and the classifier)",
    "knn-cosine": f"{detector_name('knn-cosine')}, k=2",
}


class Setting(NamedTuple):
    """One scored configuration of one model: the keys of an ``evaluate`` row.

    ``detector`` is a name of ``mclviz.evaluation.make_detectors`` (``"gaussians"``,
    ``"msp"``, ``"odin"``, ``"mahalanobis+pre"``, ...): the report's results carry those
    names in their ``detector`` column (``mahalanobis+pre`` is the ``Mahalanobis`` detector
    with input pre-processing).
    """

    model: str
    detector: str = "gaussians"
    ways: int = 1
    aggregation: str = "none"
    variant: str = "paper"

    def key(self) -> str:
        """``model/detector/ways/aggregation/variant``: the ``results.csv`` row keys."""
        return "/".join(map(str, self))

    def label(self) -> str:
        """How the report names the setting, e.g. ``"MCL, 8-way SEI w-avg"`` (the model
        by :func:`model_name`, the detector by :data:`DETECTOR_LABELS`)."""
        if self.detector != "gaussians":
            how = DETECTOR_LABELS.get(self.detector, detector_name(self.detector))
        elif self.ways == 1:
            plain = sei_name(1)
            how = f"{detector_name('gaussians')}, {plain}" if self.model in ("ce", "rot") else plain
        else:
            how = f"{self.ways}-way SEI {self.aggregation}"
            if self.variant != "paper":
                how += f" ({self.variant})"
        return f"{model_name(self.model)}, {how}"


def no_sei(model: str) -> Setting:
    """The model's class Gaussians on the plain image (Eq. 12-14)."""
    return Setting(model)


def sei(model: str, ways: int = 8, agg: str = "w-avg") -> Setting:
    """The model's class Gaussians aggregated over ``ways`` SEI views (Eq. 15-20)."""
    return Setting(model, "gaussians", ways, agg)


#: the maximum softmax probability of the two classifiers
MSP = {m: Setting(m, "msp") for m in ("ce", "rot")}


@dataclass
class ComparedModel:
    """One model of the comparison: where it came from and what evaluating it gave."""

    name: str
    status: str = ""  # "" when evaluated, else why not ("no checkpoint for X", ...)
    path: Path | None = None
    checkpoint: Any = None  # mclviz.checkpoint.Checkpoint
    manifest_entry: dict[str, Any] = field(default_factory=dict)
    train_seconds: float | None = None
    sei: tuple[int, ...] = (1,)
    table: pd.DataFrame | None = None
    scores: Any = None  # mclviz.evaluation.Scores
    eval_seconds: float = 0.0
    not_run: dict[str, str] = field(default_factory=dict)  # detector name: why not run

    @classmethod
    def for_name(cls, name: str) -> ComparedModel:
        """A model not yet found nor evaluated, with the SEI views the report scores it in."""
        return cls(name, sei=(1, 4, 8) if name in _SEI_MODELS else (1,))

    @property
    def ok(self) -> bool:
        return self.table is not None

    def rows(self, s: Setting) -> pd.DataFrame:
        """The ``evaluate`` rows of setting ``s``, one per OOD set (empty when absent)."""
        if not self.ok:
            return pd.DataFrame()
        t = self.table
        return t[
            (t["detector"] == s.detector)
            & (t["ways"] == s.ways)
            & (t["aggregation"] == s.aggregation)
            & (t["variant"] == s.variant)
        ]

    def row(self, s: Setting, ood: str) -> pd.Series | None:
        """The ``evaluate`` row of setting ``s`` and OOD set ``ood`` (None when absent)."""
        hit = self.rows(s)
        hit = hit[hit["ood"] == ood] if len(hit) else hit
        return hit.iloc[0] if len(hit) else None

    def detector_scores(self, s: Setting):
        """The :class:`~mclviz.evaluation.DetectorScores` of setting ``s`` (evaluated model)."""
        hit = self.rows(s)
        if not len(hit):
            raise KeyError(f"{s.key()} was not evaluated")
        return self.scores[hit["key"].iloc[0]]

    def score_arrays(self, s: Setting, ood: str) -> tuple[np.ndarray, np.ndarray]:
        """(IND scores, OOD scores) of a setting, float64."""
        r = self.detector_scores(s)
        return r.score_in.double().numpy(), r.score_out[ood].double().numpy()


def find_row(models: dict[str, ComparedModel], s: Setting, ood: str) -> pd.Series | None:
    """The ``evaluate`` row of setting ``s`` of the model it names (None when absent)."""
    model = models.get(s.model)
    return None if model is None else model.row(s, ood)


def missing_reason(models: dict[str, ComparedModel], names: Sequence[str]) -> str:
    """Why the models ``names`` were not evaluated ("x not in methods"; their status)."""
    reasons = []
    for n in dict.fromkeys(names):
        m = models.get(n)
        if m is None:
            reasons.append(f"{n} not in methods")
        elif not m.ok:
            reasons.append(m.status)
    return "; ".join(reasons)


def expected_config(name: str) -> dict[str, Any]:
    """The ``Config`` fields that make a checkpoint the comparison's model ``name``."""
    if name == OPEN_SET:
        return {"method": "mcl", "known_classes": list(KNOWN_CLASSES)}
    if name == AUX_CE:
        return {"method": "mcl", "aux_ce": AUX_CE_WEIGHT}
    return {"method": name}


def config_mismatch(name: str, cfg: Config) -> str:
    """'' when the checkpoint's config is the model the report expects, else why not."""
    if name == OPEN_SET:
        if cfg.method != "mcl" or not cfg.known_classes:
            return (
                f"the checkpoint for {name} is a {cfg.method!r} model with "
                f"known_classes={cfg.known_classes}, not mcl trained on known classes"
            )
    elif name == AUX_CE:
        if cfg.method != "mcl" or not cfg.aux_ce or cfg.known_classes:
            return (
                f"the checkpoint for {name} is a {cfg.method!r} model with aux_ce={cfg.aux_ce} "
                f"and known_classes={cfg.known_classes}, not mcl with an auxiliary CE head"
            )
    elif cfg.method != name or cfg.known_classes or cfg.aux_ce:
        return (
            f"the checkpoint for {name} is a {cfg.method!r} model with "
            f"known_classes={cfg.known_classes}, aux_ce={cfg.aux_ce}"
        )
    if cfg.dataset != "cifar10":
        return f"the checkpoint for {name} was trained on {cfg.dataset!r}, not cifar10"
    return ""
