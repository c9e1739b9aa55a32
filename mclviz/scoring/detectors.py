"""The detector protocol, and MCL's own detectors (class Gaussians with SEI, class means).

One scikit-learn-like protocol: ``fit(x, y=None)`` -> self, ``score(x)``. The field's
baselines (MSP, Energy, ODIN, Mahalanobis, RMD, KNN, ViM, cosine KNN) follow it in
:mod:`.baselines`.

Every detector scores one model output, named by its ``output`` attribute:

* ``"z"``: the projection g(f(x)) of Eq. 12 (contrastive models);
* ``"features"``: the encoder's f(x) (the penultimate layer of a classifier);
* ``"logits"``: a classifier's logits;
* ``"scored"``: whichever of ``z`` / ``features`` the model's method is scored on
  (``mclviz.methods``); the evaluation pipeline resolves it per model.

``x`` is a tensor (n, d), or (n, W, d) with the SEI views 0..W-1 of every image for
detectors with ``views > 1`` (and with the training images' R = ``fit_views`` rotations
for ``fit``). ``fit`` learns from the training set's outputs (and labels, where the
detector uses them) and returns ``self``; learnt state lives in attributes ending in
``_``. ``score`` returns one number per sample, **higher = more in-distribution**
(Eq. 14), everywhere in mclviz. Detectors that classify (``classifies = True``) also have
``predict``; ``predict_score`` gives both from one pass. Using a detector before ``fit``
raises :class:`NotFittedError`; a stateless detector's ``fit`` only checks its input.

Input pre-processing (ODIN, Lee et al.'s Mahalanobis): a detector with ``epsilon > 0``
asks the evaluation pipeline to move every input image by ``epsilon * sign(grad_x
differentiable_score(model(x)))`` before scoring it (the direction that raises its own
score, which an in-distribution image follows more than an outlier). ``epsilon`` is in
units of the model's input, images in [0, 1] (mclviz models normalise inside). That needs
the model, so it is done in the evaluation pipeline, not here.

Models: ``bind(model)`` lets a detector copy what it needs from the trained model before
``fit`` (ViM: the classifier's weight and bias); the evaluation pipeline calls it on every
detector. The detector keeps detached copies, never the model.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ._checks import (
    NotFittedError,
    _check_finite,
    _check_fitted,
    _chunk,
    _float_tensor,
    _labels,
    _rows,
)
from .covariance import check_shrinkage
from .gaussians import COVARIANCES, DEFAULT_RIDGE
from .sei import _check_method, aggregate, fit_sei_gaussians, sei_scores

__all__ = [
    "OUTPUTS",
    "ClassGaussians",
    "ClassMean",
    "Detector",
    "NotFittedError",
]

#: the model outputs a detector can score
OUTPUTS = ("z", "features", "logits", "scored")


class Detector:
    """Base class of mclviz's detectors: the protocol of the module docstring.

    Subclasses set the class attributes and implement ``_fit`` / ``_predict_score``
    (and ``_differentiable_score`` where it is not the score itself, ``bind`` where they
    need the model); hyperparameters are checked and stored in ``__init__``, nothing is
    learnt there. Learnt state lives in attributes ending in ``_`` (``fitted_`` marks a
    fitted detector).

    The calls, in order:

    1. ``bind(model)`` (optional; a no-op unless the detector needs the model, as ViM);
    2. ``fit(x_train, y_train)`` -> self;
    3. ``score(x)`` (n,), higher = more in-distribution; ``predict(x)`` (n,) classes for
       detectors with ``classifies``; ``predict_score(x)`` both from one pass;
    4. for input pre-processing (``epsilon > 0``): ``differentiable_score(x)``.

    Attributes:
        name: short name, e.g. ``"msp"`` (the ``--detector`` value of the command line).
        output: the model output scored (one of :data:`OUTPUTS`).
        views: SEI views of a test image that ``score`` aggregates (1 = the image as is).
        classifies: ``predict`` gives a class.
        needs_labels: ``fit`` uses class labels.
        epsilon: input pre-processing step in input units ([0, 1] pixels; 0 = none; see
            the module docstring).
    """

    name: str = "detector"
    output: str = "scored"
    views: int = 1
    classifies: bool = False
    needs_labels: bool = False
    epsilon: float = 0.0

    @property
    def fit_views(self) -> int:
        """Rotations of the training images ``fit`` needs (SEI fits one set per rotation)."""
        return min(self.views, 4)

    @property
    def key(self) -> str:
        """A stable identifier of the detector and its settings (for tables and caches)."""
        parts = [self.name, *(f"{k}={v}" for k, v in self.get_params().items())]
        return "/".join(parts)

    @property
    def label(self) -> str:
        """How a table or legend names this detector."""
        return self.name

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters set in ``__init__`` (as scikit-learn's ``get_params``)."""
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the protocol
    def fit(self, x, y=None) -> Detector:
        """Learn from the training set's outputs ``x`` (and labels ``y``); returns self."""
        if self.needs_labels and y is None:
            raise ValueError(f"{type(self).__name__}.fit needs the training labels: call fit(x, y)")
        self._fit(x, y)
        self.fitted_ = True
        return self

    def score(self, x) -> torch.Tensor:
        """(n,) in-distribution score, higher = more in-distribution."""
        return self.predict_score(x)[1]

    def predict(self, x) -> torch.Tensor:
        """(n,) predicted class (detectors with ``classifies``)."""
        if not self.classifies:
            raise ValueError(
                f"{type(self).__name__} does not classify; use a detector with "
                "classifies=True (e.g. MSP, Mahalanobis or ClassGaussians) for predictions"
            )
        return self.predict_score(x)[0]

    def predict_score(self, x) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(pred or None, score) from one pass."""
        _check_fitted(self, "fitted_")
        return self._predict_score(x)

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        """(n,) the score as a differentiable function of the output ``x`` (pre-processing).

        A pure torch function of ``x`` (no ``.detach()``, no numpy), so that
        ``torch.autograd.grad(det.differentiable_score(model(images)).sum(), images)`` gives
        the pre-processing direction. It equals ``score(x)`` unless the detector's docstring
        names a strictly increasing function of it (ODIN: the log of its score), which has
        the same gradient sign. Needs ``fit`` like ``score``.
        """
        _check_fitted(self, "fitted_")
        return self._differentiable_score(x)

    def bind(self, model: torch.nn.Module) -> Detector:
        """Copy what the detector needs from the trained ``model``; returns self.

        The evaluation pipeline calls it on every detector before ``fit``. The base class
        needs nothing (a no-op); ViM copies ``model.classifier``'s weight and bias. A
        detector keeps detached copies, never a reference to the model.
        """
        return self

    # -- for subclasses
    def _fit(self, x, y) -> None:
        """Check ``x`` (stateless detectors learn nothing)."""

    def _predict_score(self, x) -> tuple[torch.Tensor | None, torch.Tensor]:
        raise NotImplementedError

    def _differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        return self._predict_score(x)[1]


class ClassGaussians(Detector):
    """MCL's scoring: class-conditional Gaussians, optionally with self-ensemble inference.

    ``views=1`` is plain Mahalanobis scoring (Eq. 12-14): ``predict`` is the class of the
    highest score ``-d^2`` and ``score`` that score. ``views=4`` / ``8`` scores the SEI
    views of every test image against the Gaussians of their rotation (Eq. 15-16) and
    aggregates them with ``aggregation`` (Eq. 17-20). No input pre-processing
    (``epsilon = 0``; the MCL paper uses none).

    With ``normalize=False, covariance="tied"`` and one view it is Lee et al.'s detector
    up to the covariance normaliser (``n - C`` here, ``n`` there, a constant factor);
    :class:`~mclviz.scoring.baselines.Mahalanobis` is that detector as its paper defines it.

    Args:
        views: number of SEI views W; views 0..W-1 (m % 4 = rotation, m >= 4 flipped).
        aggregation: "avg", "max" or "w-avg" (see ``aggregate``; unused for one view).
        variant: "paper" or "official" (see ``aggregate``).
        covariance: "class" (one per class, Eq. 12), "tied" (pooled; see ``fit_gaussians``)
            or "auto": "class" when every class has more samples than dimensions, else
            "tied" (a per-class sample covariance would be singular); ``covariance_``
            records the choice.
        ridge: covariance ridge (default 1e-3, :data:`~mclviz.scoring.gaussians.DEFAULT_RIDGE`,
            chosen on held-out training images; see ``fit_gaussians``).
        shrinkage: covariance shrinkage, "none" (default, as the authors' code),
            "ledoit-wolf", "oas" or a fixed coefficient (see ``fit_gaussians``).
        normalize: L2-normalise the outputs first. Eq. 12 has no normalisation; the
            authors' evaluation code normalises, and so does this default. Say which in a
            table: ``label`` names it.
        output: the model output scored (default: the method's, ``z`` for contrastive
            models, ``features`` for classifiers).
        chunk_size: query rows per block when scoring.

    Attributes (after ``fit``):
        gaussians_: list of R Gaussians, one per rotation.
        n_classes_: C.

    >>> import torch
    >>> z, y = torch.randn(400, 4, 8), torch.arange(400) % 2
    >>> det = ClassGaussians(views=4).fit(z, y)
    >>> det.score(z[:3]).shape
    torch.Size([3])
    """

    name = "gaussians"
    classifies = True
    needs_labels = True

    def __init__(
        self,
        views: int = 1,
        aggregation: str = "w-avg",
        variant: str = "paper",
        covariance: str = "class",
        ridge: float = DEFAULT_RIDGE,
        shrinkage: str | float = "none",
        normalize: bool = True,
        output: str = "scored",
        chunk_size: int | None = None,
    ) -> None:
        if int(views) != views or not 1 <= views <= 8:
            raise ValueError(f"views={views!r} must be an SEI view count in 1..8 (1, 4 or 8)")
        _check_method(aggregation, variant)
        if covariance not in (*COVARIANCES, "auto"):
            raise ValueError(
                f"covariance={covariance!r} is unknown; choose one of {(*COVARIANCES, 'auto')}"
            )
        _check_output(output)
        self.views = int(views)
        self.aggregation = aggregation
        self.variant = variant
        self.covariance = covariance
        self.ridge = ridge
        self.shrinkage = check_shrinkage(shrinkage)
        self.normalize = bool(normalize)
        self.output = output
        self.chunk_size = None if chunk_size is None else _chunk(chunk_size)

    @property
    def label(self) -> str:
        how = "no SEI" if self.views == 1 else f"{self.views}-way SEI {self.aggregation}"
        if self.variant != "paper":
            how += f" ({self.variant})"
        space = "normalised" if self.normalize else "raw"
        cov = f"{getattr(self, 'covariance_', self.covariance)} cov."
        if self.shrinkage != "none":
            cov += f" {_shrinkage_label(self.shrinkage)}"
        return f"class Gaussians ({cov}, {space}), {how}"

    def _fit(self, x, y) -> None:
        zt = _float_tensor(x, "x")
        if zt.ndim == 2:
            zt = zt[:, None]
        if zt.ndim != 3:
            raise ValueError(f"x has shape {tuple(zt.shape)}; expected (n, R, d) or (n, d)")
        need = self.fit_views
        if zt.shape[1] < need:
            raise ValueError(
                f"views={self.views} needs training outputs in {need} rotations, but x has "
                f"{zt.shape[1]}; embed the training set with views={need}"
            )
        self.covariance_ = self.covariance
        if self.covariance == "auto":  # a per-class covariance needs more samples than dims
            counts = torch.bincount(_labels(y, zt.shape[0]))
            self.covariance_ = "class" if int(counts.min()) > zt.shape[-1] else "tied"
        self.gaussians_ = fit_sei_gaussians(
            zt[:, :4],  # every rotation given (at least the views need)
            y,
            covariance=self.covariance_,
            ridge=self.ridge,
            shrinkage=self.shrinkage,
            normalize=self.normalize,
        )
        self.n_classes_ = self.gaussians_[0].num_classes

    def class_scores(self, x) -> torch.Tensor:
        """(n, W, C) per-view class scores -d^2 (Eq. 15-16)."""
        _check_fitted(self, "fitted_")
        zt = _views(x, self.views, "x")
        return sei_scores(zt, self.gaussians_, chunk_size=self.chunk_size)

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        agg = self.aggregation if self.views > 1 else "avg"
        return aggregate(self.class_scores(x), agg, self.variant)


def _shrinkage_label(shrinkage: str | float) -> str:
    return shrinkage if isinstance(shrinkage, str) else f"shrinkage {shrinkage:g}"


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r} is unknown; choose one of {OUTPUTS}")


def _views(x, views: int, name: str) -> torch.Tensor:
    """``x`` as (n, W, d) with W == views ((n, d) is accepted for one view)."""
    t = _float_tensor(x, name)
    if t.ndim == 2 and views == 1:
        t = t[:, None]
    if t.ndim != 3 or t.shape[1] != views:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}, but views={views} expects (n, {views}, d) "
            f"outputs of SEI views 0..{views - 1} (embed(..., views={views}); from more views "
            f"take {name}[:, :{views}])"
        )
    return t


def _logits(x, name: str = "logits", classes: int | None = None) -> torch.Tensor:
    t = _float_tensor(x, name)
    if t.ndim == 3 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 2 or t.shape[1] < 1:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}; expected (n, C) classifier logits "
            "(embed(..., output='logits'))"
        )
    if classes is not None and t.shape[1] != classes:
        raise ValueError(
            f"{name} has {t.shape[1]} classes, but the detector was fitted on {classes}; "
            "pass the logits of the classifier it was fitted with"
        )
    _check_finite(t, name)
    return t


def _check_epsilon(epsilon: float, example: str) -> float:
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        eps = float("nan")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(
            f"epsilon={epsilon!r} must be a finite number >= 0, the pre-processing step in "
            f"[0, 1] pixel units (0 = no pre-processing; e.g. {example})"
        )
    return eps


def _check_temperature(temperature: float, paper: str) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature={temperature!r} must be a finite number > 0 ({paper})")
    return t


def _check_labels_fit(y, n: int, device) -> tuple[torch.Tensor, int]:
    """Training labels 0..C-1 with every class present -> (labels, C)."""
    yt = _labels(y, n).to(device)
    if n == 0 or int(yt.min()) < 0:
        raise ValueError("y must hold labels 0..C-1 for at least one row (no OOD label -1)")
    C = int(yt.max()) + 1
    counts = torch.bincount(yt, minlength=C)
    if bool((counts == 0).any()):
        raise ValueError(
            f"classes {(counts == 0).nonzero().flatten().tolist()} have no samples "
            f"(C = {C}); relabel y to 0..C-1"
        )
    return yt, C


class ClassMean(Detector):
    """Cosine similarity to the class means; ``score = max_c cos(z, mu_c)``.

    Means are taken over the L2-normalised training embeddings.
    """

    name = "class-mean"
    classifies = True
    needs_labels = True

    def __init__(self, output: str = "scored") -> None:
        _check_output(output)
        self.output = output

    def _fit(self, x, y) -> None:
        t = _rows(x, "x")
        yt, C = _check_labels_fit(y, t.shape[0], t.device)
        counts = torch.bincount(yt, minlength=C)
        means = torch.zeros(C, t.shape[1], dtype=t.dtype, device=t.device)
        means.index_add_(0, yt, F.normalize(t, dim=1))
        self.means_ = F.normalize(means / counts[:, None].to(t.dtype), dim=1)

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        t = F.normalize(_rows(x, "x", self.means_.shape[1]), dim=1)
        cos = t @ self.means_.to(t.device, t.dtype).T  # (n, C)
        best = cos.amax(dim=1)
        return cos.argmax(dim=1), best
