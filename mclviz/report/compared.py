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

__all__ = [
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
    "no_sei",
    "sei",
]

DEFAULT_METHODS: tuple[str, ...] = ("ce", "rot", "simclr", "supclr", "ccm", "mcl-noaux", "mcl")
OPEN_SET = "mcl-openset"
KNOWN_CLASSES: list[int] = [0, 1, 2, 3, 4, 5]
# models evaluated with SEI (1, 4, 8 views); the others are scored on the plain image only
_SEI_MODELS = ("mcl", "rot", "mcl-noaux", OPEN_SET)


class Setting(NamedTuple):
    """One scored configuration of one model: the keys of an ``evaluate`` row."""

    model: str
    detector: str = "gaussians"
    ways: int = 1
    aggregation: str = "none"
    variant: str = "paper"

    def key(self) -> str:
        """``model/detector/ways/aggregation/variant``: the ``results.csv`` row keys."""
        return "/".join(map(str, self))

    def label(self) -> str:
        """How the report names the setting, e.g. ``"mcl, 8-way SEI w-avg"``."""
        if self.detector == "msp":
            how = "MSP"
        elif self.ways == 1:
            how = "Mahalanobis, no SEI" if self.model in ("ce", "rot") else "no SEI"
        else:
            how = f"{self.ways}-way SEI {self.aggregation}"
            if self.variant != "paper":
                how += f" ({self.variant})"
        return f"{self.model}, {how}"


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

    @classmethod
    def for_name(cls, name: str) -> ComparedModel:
        """A model not yet found nor evaluated, with the SEI views the report scores it in."""
        return cls(name, sei=(1, 4, 8) if name in _SEI_MODELS else (1,))

    @property
    def ok(self) -> bool:
        return self.table is not None

    def row(self, s: Setting, ood: str) -> pd.Series | None:
        """The ``evaluate`` row of setting ``s`` and OOD set ``ood`` (None when absent)."""
        if not self.ok:
            return None
        t = self.table
        hit = t[
            (t["detector"] == s.detector)
            & (t["ways"] == s.ways)
            & (t["aggregation"] == s.aggregation)
            & (t["variant"] == s.variant)
            & (t["ood"] == ood)
        ]
        return hit.iloc[0] if len(hit) else None

    def detector_scores(self, s: Setting):
        """The :class:`~mclviz.evaluation.DetectorScores` of setting ``s`` (evaluated model)."""
        for r in self.scores:
            d = r.detector
            ways = getattr(d, "views", 1)
            agg = getattr(d, "aggregation", "none") if ways > 1 else "none"
            if (d.name, ways, agg, getattr(d, "variant", "paper")) == tuple(s)[1:]:
                return r
        raise KeyError(f"{s.key()} was not evaluated")

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
    return {"method": name}


def config_mismatch(name: str, cfg: Config) -> str:
    """'' when the checkpoint's config is the model the report expects, else why not."""
    if name == OPEN_SET:
        if cfg.method != "mcl" or not cfg.known_classes:
            return (
                f"the checkpoint for {name} is a {cfg.method!r} model with "
                f"known_classes={cfg.known_classes}, not mcl trained on known classes"
            )
    elif cfg.method != name or cfg.known_classes:
        return (
            f"the checkpoint for {name} is a {cfg.method!r} model with "
            f"known_classes={cfg.known_classes}"
        )
    if cfg.dataset != "cifar10":
        return f"the checkpoint for {name} was trained on {cfg.dataset!r}, not cifar10"
    return ""
