"""Flip test-time augmentation for any detector: score the mean output of an image and its mirror.

The fast training records evaluate with flip TTA (the logits of the image and of its
horizontal mirror averaged). Wrapping a detector in :class:`FlipTTA` does that for any
output: ``fit`` sees the training outputs as they are; ``score`` takes the outputs of SEI
views 0 and 4 (the image and its mirror, ``scored_views``), averages them and scores the
mean with the wrapped detector. For classifiers the mean is of the logits, as the
records; for embeddings, of the embeddings.
"""

from __future__ import annotations

import torch

from ._checks import _float_tensor
from .detectors import Detector

__all__ = ["FlipTTA"]


class FlipTTA(Detector):
    """``detector`` scored on the mean of an image's and its mirror image's outputs.

    >>> import torch
    >>> from mclviz.scoring import MSP
    >>> logits = torch.randn(5, 2, 3)  # (n, [image, mirror], C)
    >>> det = FlipTTA(MSP()).fit(logits[:, 0])
    >>> bool(torch.allclose(det.score(logits), MSP().fit(logits[:, 0]).score(logits.mean(1))))
    True
    """

    scored_views = (0, 4)  # SEI view 4: the horizontally flipped image

    def __init__(self, detector: Detector) -> None:
        if not isinstance(detector, Detector):
            raise TypeError(f"detector must be an mclviz Detector, got {type(detector).__name__}")
        if detector.views != 1 or detector.epsilon:
            raise ValueError(
                f"FlipTTA wraps a one-view detector without input pre-processing; "
                f"{detector!r} has views={detector.views}, epsilon={detector.epsilon}"
            )
        self.detector = detector

    @property
    def name(self) -> str:
        return f"{self.detector.name}+flip"

    @property
    def output(self) -> str:
        return self.detector.output

    @property
    def classifies(self) -> bool:
        return self.detector.classifies

    @property
    def needs_labels(self) -> bool:
        return self.detector.needs_labels

    @property
    def label(self) -> str:
        return f"{self.detector.label}, flip TTA"

    def get_params(self) -> dict:
        return {"detector": self.detector.key}

    def bind(self, model) -> None:
        if hasattr(self.detector, "bind"):
            self.detector.bind(model)

    def _fit(self, x, y) -> None:
        self.detector.fit(x, y)

    def _predict_score(self, x):
        t = _float_tensor(x, "x")
        if t.ndim != 3 or t.shape[1] != 2:
            raise ValueError(
                f"x has shape {tuple(t.shape)}; FlipTTA expects (n, 2, d): the outputs of SEI "
                "views 0 and 4 (the image and its mirror), embed(..., views=[0, 4])"
            )
        return self.detector.predict_score(t.mean(dim=1))

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        return self.detector.differentiable_score(x.mean(dim=1))
