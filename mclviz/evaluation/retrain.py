"""Retrain a model quickly to see what alpha, beta, lambda and tau do (notebook 05).

Two speeds, both returning a :class:`RetrainResult` (embeddings, scores, accuracy, AUROC,
loss history), so the figures and widgets treat them alike:

* **Fast mode** (:func:`retrain_head`): a fresh projection head on the frozen backbone's
  cached features (:func:`mclviz.training.train_head`, the same training step as full
  training), then scored.
* **Full mode** (:func:`retrain_full`): a small run of the whole network with
  :func:`mclviz.training.train` (progress callbacks, ``should_stop``), then scored.
* :func:`score_model` scores a trained model as it is (``mode="model"``).

Scoring is the evaluation pipeline's (:func:`~.pipeline.score`) with one
:class:`~mclviz.scoring.ClassGaussians` detector: Gaussians of Eq. 12 fitted on the
training projections (per rotation for SEI, Eq. 15), the test and OOD sets scored in
``ways`` SEI views.

Example (``model`` from ``mclviz.zoo.load_or_train(...).model``)::

    cache = FeatureCache.build(model, x_train, y_train, views=4, test=(x_te, y_te),
                               ood={"gaussian": x_noise})          # once, the slow step
    result = retrain_head(cache, method="mcl", alpha=0.1, epochs=8, seed=0)  # seconds
    result.accuracy, result.auroc, result.summary()
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from .. import methods
from ..config import Config
from ..scoring import AGGREGATIONS, ClassGaussians
from ..training import FeatureCache, train, train_head
from .data import EvalData
from .outputs import Outputs, ood_split
from .pipeline import pick_detector, score

__all__ = [
    "MODE_LABELS",
    "RETRAIN_METHODS",
    "RetrainResult",
    "check_hyperparameters",
    "default_ways",
    "retrain_full",
    "retrain_head",
    "score_embeddings",
    "score_model",
]

#: Methods the sliders retrain: the contrastive ones (their loss reads only the projection).
RETRAIN_METHODS = tuple(m for m in methods.names() if methods.get(m).contrastive)
#: How each mode is named on screen, so nobody mistakes one for the other.
MODE_LABELS = {
    "fast": "Fast mode: projection head only, backbone frozen",
    "full": "Full mode: whole network",
    "model": "Trained model as loaded",
}


def _check_method(method: str) -> methods.Method:
    entry = methods.get(method)
    if not entry.contrastive:
        raise ValueError(
            f"method={method!r} cannot be retrained here; choose one of "
            f"{[m for m in methods.names() if methods.get(m).contrastive]} "
            "(the contrastive methods, whose head is a projection head)"
        )
    return entry


def check_hyperparameters(
    method: str, *, tau: float, alpha: float, beta: float, lam: float
) -> None:
    """Raise ``ValueError`` naming the bad value before any work (the losses check again).

    tau > 0; for methods whose loss reads alpha and beta (CCM, MCL), alpha and beta in
    (0, 1/tau] (Eq. 3, 11's masks must not exceed the plain 1/tau); lam >= 0.
    """
    entry = _check_method(method)
    if not (isinstance(tau, int | float) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau={tau!r} must be > 0 (the paper uses 0.2)")
    for name, value in (("alpha", alpha), ("beta", beta)):
        if name in entry.hyperparameters and not 0 < value <= 1 / tau * (1 + 1e-12):
            raise ValueError(
                f"{name}={value:g} is outside (0, 1/tau] = (0, {1 / tau:g}] for tau={tau:g}; "
                f"lower {name} or tau (the paper: alpha=0.05, beta=2.5, tau=0.2)"
            )
    if "lam" in entry.hyperparameters and not lam >= 0:
        raise ValueError(f"lam={lam!r} must be >= 0 (the paper uses 1)")


def default_ways(method: str, available: int) -> int:
    """SEI views used when ``ways=None``: 4 for methods trained with rotation labels, else 1."""
    return min(4, available) if methods.get(method).rotation_labels else 1


@dataclass
class RetrainResult:
    """What one retraining produced: embeddings, scores, metrics and the loss history.

    Attributes:
        mode: ``"fast"`` (projection head only, backbone frozen), ``"full"`` (whole
            network) or ``"model"`` (a trained model scored as it is, :func:`score_model`).
        method: the loss (``RETRAIN_METHODS``).
        params: the hyperparameters used (tau, alpha, beta, lam, epochs, seed, ...).
        history: one dict per epoch: ``epoch`` and the mean loss terms (``loss`` and,
            for MCL, ``ccm`` and ``spa``).
        model: the trained head (fast) or the whole model (full).
        z_train: (N, R, d) projections of the plain training images per rotation (the
            output scored: encoder features for a classifier's evaluation).
        train_labels: (N,).
        z_test: (n, W, d) projections of the test images in SEI views 0..W-1.
        test_labels: (n,).
        z_ood: {name: (n_o, W, d)}.
        pred: (n,) predicted test labels; score_in: (n,) test scores; score_out:
            {name: (n_o,)} (higher = more in-distribution, Eq. 14).
        accuracy: test accuracy in [0, 1].
        metrics: {ood name: {"auroc", "aupr_in", "aupr_out", "fpr95"}}.
        ways, aggregation, variant, covariance: how the scores were computed.
        seconds: {"train": ..., "score": ...}.
        stopped_early: a full run stopped by ``should_stop``.
        pred_out: {name: (n_o,)} the class each OOD image is taken for (Figure 4).
    """

    mode: str
    method: str
    params: dict[str, Any]
    history: list[dict[str, float]]
    model: nn.Module
    z_train: Tensor
    train_labels: Tensor
    z_test: Tensor
    test_labels: Tensor
    z_ood: dict[str, Tensor]
    pred: Tensor
    score_in: Tensor
    score_out: dict[str, Tensor]
    accuracy: float
    metrics: dict[str, dict[str, float]]
    ways: int
    aggregation: str
    variant: str
    covariance: str
    seconds: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    pred_out: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def from_scores(cls, scores, detector=None, *, method: str | None = None) -> RetrainResult:
        """The result view (``mode="model"``) of one detector of an evaluation's
        :class:`~mclviz.evaluation.Scores` (``evaluate(..., return_scores=True)``), so the
        figures and the failure viewer show exactly what the evaluation's table reports.

        Args:
            scores: the evaluation's scores.
            detector: a detector (or its key) of ``scores`` that scores the projection
                with class Gaussians; default :func:`~.pipeline.pick_detector`'s choice
                among them (the method's recommended Gaussians when scored).
            method: a label (default the evaluation's).
        """
        if detector is None:
            detector = pick_detector(scores, gaussians_only=True)
        r = scores[detector]
        d = r.detector
        ways = getattr(d, "views", 1)
        scored = {
            "pred": r.pred,
            "score_in": r.score_in,
            "score_out": r.score_out,
            "pred_out": r.pred_out,
            "accuracy": r.accuracy,
            "metrics": r.metrics,
            "covariance": getattr(d, "covariance_", getattr(d, "covariance", "")),
        }
        return _result(
            "model",
            scores.method if method is None else method,
            scores.outputs.model,
            scored,
            scores.outputs,
            ways=ways,
            aggregation=getattr(d, "aggregation", "none"),
            variant=getattr(d, "variant", "paper"),
            started=time.perf_counter(),
            output=d.output,
        )

    @property
    def auroc(self) -> dict[str, float]:
        """{ood name: AUROC} in [0, 1]."""
        return {k: v["auroc"] for k, v in self.metrics.items()}

    @property
    def correct(self) -> Tensor:
        """(n,) bool, test image classified correctly."""
        return self.pred == self.test_labels

    def table(self) -> pd.DataFrame:
        """One row per OOD set: mode, method, hyperparameters, accuracy and OOD metrics."""
        keys = ("tau", "alpha", "beta", "lam", "epochs", "seed")
        rows = [
            {
                "mode": self.mode,
                "method": self.method,
                **{k: self.params.get(k) for k in keys},
                "ways": self.ways,
                "aggregation": self.aggregation,
                "accuracy": self.accuracy,
                "ood": name,
                **m,
            }
            for name, m in self.metrics.items()
        ]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """One line: mode, method, accuracy and AUROC per OOD set (in percent)."""
        label = MODE_LABELS.get(self.mode, self.mode)
        au = ", ".join(f"{k} {100 * v:.2f}" for k, v in self.auroc.items())
        return (
            f"{label}; {self.method}: accuracy {100 * self.accuracy:.2f}%, AUROC {au} "
            f"[{self.ways}-way SEI, {self.seconds.get('train', 0):.1f} s train + "
            f"{self.seconds.get('score', 0):.1f} s score]"
        )


def _gaussians(ways: int, aggregation: str, variant: str, covariance: str) -> ClassGaussians:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r}: choose one of {AGGREGATIONS}")
    return ClassGaussians(
        views=ways,
        aggregation=aggregation if ways > 1 else "avg",
        variant=variant,
        covariance=covariance,
        output="z",
    )


def _score(
    outputs: Outputs, *, ways: int, aggregation: str, variant: str, covariance: str
) -> dict[str, Any]:
    """The pipeline with one ClassGaussians detector, as the retrain results need it."""
    det = _gaussians(ways, aggregation, variant, covariance)
    r = score(outputs, [det])[det]
    return {
        "pred": r.pred,
        "score_in": r.score_in,
        "score_out": r.score_out,
        "pred_out": r.pred_out,
        "accuracy": r.accuracy,
        "metrics": r.metrics,
        "covariance": det.covariance_,
    }


def score_embeddings(
    z_train: Tensor,
    train_labels: Tensor,
    z_test: Tensor,
    test_labels: Tensor,
    z_ood: Mapping[str, Tensor],
    *,
    ways: int = 1,
    aggregation: str = "w-avg",
    variant: str = "paper",
    covariance: str = "auto",
) -> dict[str, Any]:
    """Gaussians on the training projections, then SEI scores, accuracy and OOD metrics.

    Args:
        z_train: (N, R, d) training projections in rotations 0..R-1 (R >= min(ways, 4)).
        train_labels: (N,) labels 0..C-1.
        z_test: (n, W, d) test projections in SEI views 0..W-1 (W >= ways).
        test_labels: (n,).
        z_ood: {name: (n_o, W, d)}.
        ways: SEI views to aggregate (1 = plain Mahalanobis, Eq. 12-14; 4 or 8, Eq. 15-20).
        aggregation: "avg", "max" or "w-avg" (used when ways > 1).
        variant: "paper" or "official" (see :func:`mclviz.scoring.aggregate`).
        covariance: "class" (the paper), "tied", or "auto": "class" when every class has
            more samples than the projection has dimensions, else "tied" (the per-class
            covariance would be singular). The choice is returned.

    Returns:
        {"pred", "score_in", "score_out", "pred_out" (the OOD images' predicted classes),
        "accuracy", "metrics", "covariance"}.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r}: choose one of {AGGREGATIONS}")
    if not 1 <= ways <= z_test.shape[1]:
        raise ValueError(
            f"ways={ways} but z_test holds {z_test.shape[1]} SEI view(s); "
            f"use ways <= {z_test.shape[1]} or cache more views"
        )
    if z_train.shape[1] < min(ways, 4):
        raise ValueError(
            f"ways={ways} needs training projections in {min(ways, 4)} rotations, but "
            f"z_train has {z_train.shape[1]}; build the cache with rotations=True"
        )
    data = EvalData((z_train, train_labels), (z_test, test_labels), dict(z_ood))
    tensors = {("z", "train"): z_train, ("z", "test"): z_test}
    tensors.update({("z", ood_split(name)): z for name, z in z_ood.items()})
    outputs = Outputs.from_tensors(tensors, data)
    return _score(
        outputs, ways=ways, aggregation=aggregation, variant=variant, covariance=covariance
    )


def _result(
    mode: str,
    method: str,
    model: nn.Module,
    scored: dict[str, Any],
    outputs: Outputs,
    *,
    ways: int,
    aggregation: str,
    variant: str,
    started: float,
    **extra,
) -> RetrainResult:
    """A :class:`RetrainResult` from :func:`_score`'s output; ``seconds["score"]`` since ``started``."""
    seconds = {**extra.pop("seconds", {}), "score": time.perf_counter() - started}
    out = extra.pop("output", "z")
    # the views kept: by default those scored; fast mode keeps every cached view
    train_views = extra.pop("train_views", min(ways, 4) if ways > 1 else 1)
    scored_views = extra.pop("scored_views", ways)
    return RetrainResult(
        mode=mode,
        method=method,
        params=dict(extra.pop("params", {})),
        history=list(extra.pop("history", [])),
        model=model,
        z_train=outputs.get(out, "train", train_views),
        train_labels=outputs.data.train[1],
        z_test=outputs.get(out, "test", scored_views),
        test_labels=outputs.data.test[1],
        z_ood={name: outputs.get(out, ood_split(name), scored_views) for name in outputs.data.ood},
        pred=scored["pred"],
        score_in=scored["score_in"],
        score_out=scored["score_out"],
        accuracy=scored["accuracy"],
        metrics=scored["metrics"],
        ways=ways,
        aggregation=aggregation if ways > 1 else "none",
        variant=variant,
        covariance=scored["covariance"],
        seconds=seconds,
        stopped_early=extra.pop("stopped_early", False),
        pred_out=scored["pred_out"],
    )


def _history(rows: list[dict], events: list[dict], stopped: bool) -> list[dict[str, float]]:
    """The finished epochs' rows and, for a run stopped mid-epoch, its partial epoch (a
    fractional ``epoch``, the last ``kind="epoch"`` event the callbacks saw).

    The training loop keeps finished epochs only (what a resumed run continues); a
    retraining's loss curve also shows the partial one, so a run stopped in its first
    epoch still has a row.
    """
    out = [dict(r) for r in rows]
    if stopped and events:
        last = {k: v for k, v in events[-1].items() if k != "kind"}
        if not out or last != out[-1]:
            out.append(last)
    return out


def retrain_head(
    cache: FeatureCache,
    *,
    method: str = "mcl",
    tau: float = 0.2,
    alpha: float = 0.05,
    beta: float = 2.5,
    lam: float = 1.0,
    epochs: int = 15,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    hidden: int | None = None,
    proj_dim: int | None = None,
    ways: int | None = None,
    aggregation: str = "w-avg",
    variant: str = "paper",
    covariance: str = "auto",
    spa_mode: str = "sample",
    callback: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RetrainResult:
    """Train a fresh projection head on cached backbone features, then score (fast mode).

    Training: :func:`mclviz.training.train_head` (the method's loss, Adam, cosine decay).
    Scoring: the Gaussians of Eq. 12 (per rotation, Eq. 15) fitted on the head's
    projections of the plain training images; the test / OOD sets scored in ``ways`` SEI
    views (None -> :func:`default_ways`).

    Args:
        cache: from :meth:`FeatureCache.build` with a test set.
        method: one of :data:`RETRAIN_METHODS`; methods with rotation labels need a cache
            with rotations.
        tau, alpha, beta, lam: the loss hyperparameters (paper: 0.2, 0.05, 2.5, 1);
            alpha and beta must lie in (0, 1/tau].
        epochs, batch_size, lr, seed, hidden, proj_dim, callback, should_stop: see
            :func:`mclviz.training.train_head`.
        ways, aggregation, variant, covariance: see :func:`score_embeddings`.
        spa_mode: SPA's "sample" (Eq. 9) or "expected".

    Returns:
        A :class:`RetrainResult` with ``mode="fast"``. Its projections keep every view the
        cache holds (``z_train`` all R cached rotations, ``z_test`` / ``z_ood`` all W cached
        SEI views, even when ``ways`` scores fewer), so a figure can show any of them
        without retraining; ``history`` ends with the partial epoch of a stopped run.
    """
    _check_method(method)
    if cache.test is None or cache.test_labels is None:
        raise ValueError("cache has no test set; build it with test=(images, labels)")
    check_hyperparameters(method, tau=tau, alpha=alpha, beta=beta, lam=lam)
    config = Config(
        method=method, tau=tau, alpha=alpha, beta=beta, lam=lam, spa_mode=spa_mode, variant=variant
    )
    ways = default_ways(method, cache.sei_views) if ways is None else int(ways)
    epoch_events: list[dict[str, Any]] = []

    def on_epoch(event: dict[str, Any]) -> None:
        epoch_events.append(event)
        if callback is not None:
            callback(event)

    run = train_head(
        cache,
        config,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        hidden=hidden,
        proj_dim=proj_dim,
        callback=on_epoch,
        should_stop=should_stop,
    )
    t1 = time.perf_counter()
    with torch.no_grad():
        tensors = {("z", "train"): run.head(cache.train), ("z", "test"): run.head(cache.test)}
        tensors.update({("z", ood_split(n)): run.head(f) for n, f in cache.ood.items()})
    data = EvalData((cache.train, cache.labels), (cache.test, cache.test_labels), dict(cache.ood))
    outputs = Outputs.from_tensors(tensors, data)
    scored = _score(
        outputs, ways=ways, aggregation=aggregation, variant=variant, covariance=covariance
    )
    return _result(
        "fast",
        method,
        run.head,
        scored,
        outputs,
        ways=ways,
        aggregation=aggregation,
        variant=variant,
        started=t1,
        seconds={"train": run.seconds},
        params=run.params,
        history=_history(run.history, epoch_events, run.stopped_early),
        stopped_early=run.stopped_early,
        train_views=cache.train.shape[1],
        scored_views=cache.test.shape[1],
    )


def retrain_full(
    config: Any,
    images: Tensor,
    labels: Tensor,
    *,
    test: tuple[Tensor, Tensor],
    ood: Mapping[str, Tensor],
    ways: int | None = None,
    aggregation: str = "w-avg",
    variant: str = "paper",
    covariance: str = "auto",
    callbacks: Iterable[Callable[[dict[str, Any]], None]] = (),
    should_stop: Callable[[], bool] | None = None,
    progress: bool = False,
    batch_size: int = 512,
) -> RetrainResult:
    """Train the whole network with :func:`mclviz.training.train`, then score (full mode).

    Args:
        config: a :class:`mclviz.config.Config` of a method in :data:`RETRAIN_METHODS`
            (e.g. ``Config.preset("tiny", method="mcl", alpha=0.1, epochs=3)``).
        images, labels: the training images (uint8 (N, 3, H, W)) and labels 0..C-1.
        test: (images, labels) of the test set; ood: {name: images}.
        ways, aggregation, variant, covariance: see :func:`score_embeddings`.
        callbacks, should_stop, progress: passed to :func:`mclviz.training.train` (a live
            loss curve is a callback; a Stop button sets ``should_stop``).
        batch_size: images per forward pass when embedding.

    Returns:
        A :class:`RetrainResult` with ``mode="full"``; ``model`` is the trained network,
        ``history`` the per-epoch loss rows of ``train`` (and the partial epoch of a
        stopped run).
    """
    _check_method(config.method)
    t0 = time.perf_counter()
    epoch_events: list[dict[str, Any]] = []
    res = train(
        config,
        data=(images, labels),
        callbacks=[*callbacks, lambda e: epoch_events.append(e) if e["kind"] == "epoch" else None],
        should_stop=should_stop,
        progress=progress,
    )
    result = score_model(
        res.model,
        (images, labels),
        test,
        ood,
        method=config.method,
        ways=ways,
        aggregation=aggregation,
        variant=variant,
        covariance=covariance,
        batch_size=batch_size,
    )
    result.mode = "full"
    result.params = {
        k: getattr(config, k)
        for k in ("tau", "alpha", "beta", "lam", "epochs", "seed", "batch_size", "arch", "width")
    }
    result.history = _history(res.history, epoch_events, res.stopped_early)
    result.seconds = {
        "train": res.seconds,
        "score": result.seconds["score"],
        "total": time.perf_counter() - t0,
    }
    result.stopped_early = res.stopped_early
    return result


def score_model(
    model: nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    ood: Mapping[str, Tensor],
    *,
    method: str = "",
    ways: int | None = None,
    aggregation: str = "w-avg",
    variant: str = "paper",
    covariance: str = "auto",
    batch_size: int = 512,
    precision: str = "fp32",
    progress: bool = False,
) -> RetrainResult:
    """Embed and score a trained model as it is (``mode="model"``), e.g. a loaded checkpoint.

    The same result type as the retrainings, so the same figures and the failure viewer
    apply: projections ``z = g(f(x))`` of the training images (in 4 rotations when
    ``ways > 1``), of the test and OOD images in SEI views 0..ways-1, then the pipeline.

    Args:
        model: a contrastive model (``model(x)`` is the projection of Eq. 12).
        train, test: (images, labels); ood: {name: images}.
        method: the model's method (``ways=None`` picks 4 SEI views for methods trained
            with rotation labels).
        ways, aggregation, variant, covariance: see :func:`score_embeddings`.
        batch_size: images per forward pass.
        precision: of the embeddings (``mclviz.device``; ``"auto"``: bf16 where fast).
        progress: tqdm.auto bars while embedding.
    """
    ways = (default_ways(method, 8) if method else 1) if ways is None else int(ways)
    t0 = time.perf_counter()
    data = EvalData(
        (train[0], torch.as_tensor(train[1]).long()),
        (test[0], torch.as_tensor(test[1]).long()),
        dict(ood),
    )
    outputs = Outputs(
        model, data, scored_on="z", precision=precision, batch_size=batch_size, progress=progress
    )
    scored = _score(
        outputs, ways=ways, aggregation=aggregation, variant=variant, covariance=covariance
    )
    return _result(
        "model",
        method,
        model,
        scored,
        outputs,
        ways=ways,
        aggregation=aggregation,
        variant=variant,
        started=t0,
    )
