"""Retrain a model quickly to see what alpha, beta, lambda and tau do (notebook 05).

Two speeds, both returning a :class:`RetrainResult` (embeddings, scores, accuracy, AUROC,
loss history), so the figures and widgets treat them alike:

* **Fast mode** (:func:`retrain_head`): the backbone ``f`` is frozen. :class:`FeatureCache`
  runs it once on ``V`` augmented views of every training image (in the 4 rotations of the
  auxiliary task, Eq. 11, when asked) and on the plain train / test / OOD images. A fresh
  projection head ``g`` (Linear-ReLU-Linear, as :class:`mclviz.models.MCLModel`'s) is then
  trained with the chosen loss of :mod:`mclviz.losses` on pairs of cached views, and the
  Gaussians of Eq. 12 (per rotation for SEI, Eq. 15) are fitted on ``g(f(x))``. Seconds on a
  CPU; only the head learns, so it shows how the loss shapes the projection of *these*
  features, not what a whole network would learn.
* **Full mode** (:func:`retrain_full`): a small run of the whole network with
  :func:`mclviz.train.train` (progress callbacks, ``should_stop``), then the same scoring.

Batch layout: as :func:`mclviz.train.train`: rows 2k and 2k+1 are two views of image k; with
the rotation auxiliary (``method="mcl"``) the batch holds the 4 rotations one block after
the other, ``y_aux`` the rotation index.

Everything is deterministic for a given ``seed`` (all draws come from seeded
``torch.Generator`` objects; torch's global RNG is not touched). Nothing is written to disk.

Example (``model`` from ``mclviz.zoo.load_or_train(...).model``)::

    cache = FeatureCache.build(model, x_train, y_train, views=4, test=(x_te, y_te),
                               ood={"gaussian": x_noise})          # once, the slow step
    result = retrain_head(cache, method="mcl", alpha=0.1, epochs=8, seed=0)  # seconds
    result.accuracy, result.auroc, result.summary()
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from . import losses
from .metrics import accuracy, ood_metrics
from .scoring import aggregate, fit_sei_gaussians, sei_scores
from .transforms import SimCLRAugment, rotate

__all__ = [
    "MODE_LABELS",
    "RETRAIN_METHODS",
    "FeatureCache",
    "RetrainResult",
    "check_hyperparameters",
    "default_ways",
    "loss_terms",
    "retrain_full",
    "retrain_head",
    "score_embeddings",
    "score_model",
]

#: Methods the retraining supports: the contrastive ones (the head is a projection head).
RETRAIN_METHODS = ("simclr", "supclr", "ccm", "mcl-noaux", "mcl")
_AGGREGATIONS = ("avg", "max", "w-avg")
#: How each mode is named on screen, so nobody mistakes one for the other.
MODE_LABELS = {
    "fast": "Fast mode: projection head only, backbone frozen",
    "full": "Full mode: whole network",
    "model": "Trained model as loaded",
}


# ----------------------------------------------------------------------------- helpers


def _check_method(method: str) -> str:
    if method not in RETRAIN_METHODS:
        raise ValueError(
            f"method={method!r} cannot be retrained here; choose one of {RETRAIN_METHODS} "
            "(the contrastive methods, whose head is a projection head)"
        )
    return method


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r} must be an int >= {low}")
    return value


def check_hyperparameters(
    method: str, *, tau: float, alpha: float, beta: float, lam: float
) -> None:
    """Raise ``ValueError`` naming the bad value before any work (the losses check again).

    tau > 0; for ``ccm`` / ``mcl-noaux`` / ``mcl``, alpha and beta in (0, 1/tau] (Eq. 3, 11's
    masks must not exceed the plain 1/tau); lam >= 0.
    """
    _check_method(method)
    if not (isinstance(tau, int | float) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau={tau!r} must be > 0 (the paper uses 0.2)")
    if method in ("ccm", "mcl-noaux", "mcl"):
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not 0 < value <= 1 / tau * (1 + 1e-12):
                raise ValueError(
                    f"{name}={value:g} is outside (0, 1/tau] = (0, {1 / tau:g}] for tau={tau:g}; "
                    f"lower {name} or tau (the paper: alpha=0.05, beta=2.5, tau=0.2)"
                )
        if not lam >= 0:
            raise ValueError(f"lam={lam!r} must be >= 0 (the paper uses 1)")


def default_ways(method: str, available: int) -> int:
    """SEI views used when ``ways=None``: 4 for ``mcl`` (trained with rotations), else 1.

    Args:
        method: a method of :data:`RETRAIN_METHODS`.
        available: how many SEI views of the test images are at hand.
    """
    return min(4, available) if method == "mcl" else 1


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _to_float(x: Tensor) -> Tensor:
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def _features(model: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    """(n, 3, H, W) uint8 or [0, 1] float -> (n, f) float32 CPU backbone features, eval mode."""
    dev = _device(model)
    out = [
        model.features(_to_float(images[i : i + batch_size].to(dev))).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def _sei(x: Tensor, m: int) -> Tensor:
    """SEI view m (CONVENTIONS.md): flip horizontally first when m >= 4, then rot90 by m % 4."""
    return rotate(x.flip(-1) if m >= 4 else x, m % 4)


def _sei_features(model: nn.Module, images: Tensor, views: int, batch_size: int) -> Tensor:
    """(n, W, f) features of SEI views 0..W-1."""
    return torch.stack([_features(model, _sei(images, m), batch_size) for m in range(views)], 1)


# ----------------------------------------------------------------------------- the cache


@dataclass
class FeatureCache:
    """Frozen-backbone features for fast head retraining, computed once.

    Attributes:
        views: (N, R, V, f) float32 features ``f(rotate(t_v(x), r))`` of V independently
            augmented views t_v (SimCLR's family) of each training image x in each of the R
            rotations r (R = 4 with ``rotations=True``, else 1: the image as it is).
        labels: (N,) int64 training labels 0..C-1.
        train: (N, R, f) features of the plain training images in rotations 0..R-1 (the
            Gaussians of Eq. 12 / 15 are fitted on their projections).
        test: (n, W, f) features of the test images in SEI views 0..W-1, or None.
        test_labels: (n,) int64, or None.
        ood: {name: (n_o, W, f)} features of the OOD sets in the same SEI views.
        hidden: hidden width of the projection head to train (the model's).
        proj_dim: output width of the projection head (the model's).
        seconds: time the build took.
        info: what was cached (model arch / width, number of views, seed).
    """

    views: Tensor
    labels: Tensor
    train: Tensor
    test: Tensor | None = None
    test_labels: Tensor | None = None
    ood: dict[str, Tensor] = field(default_factory=dict)
    hidden: int = 128
    proj_dim: int = 128
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def rotations(self) -> int:
        """R, the number of rotations cached per training image (4 or 1)."""
        return int(self.views.shape[1])

    @property
    def n_views(self) -> int:
        """V, the number of augmented views per image and rotation."""
        return int(self.views.shape[2])

    @property
    def feat_dim(self) -> int:
        return int(self.views.shape[3])

    @property
    def sei_views(self) -> int:
        """W, the number of SEI views cached for the test and OOD images (0 without test)."""
        return 0 if self.test is None else int(self.test.shape[1])

    def __repr__(self) -> str:
        n, r, v, f = self.views.shape
        n_test = 0 if self.test is None else len(self.test)
        ood = {k: len(t) for k, t in self.ood.items()}
        return (
            f"FeatureCache(train={n} images x {r} rotations x {v} views, feat_dim={f}, "
            f"test={n_test} x {self.sei_views} SEI views, ood={ood}, "
            f"built in {self.seconds:.1f} s)"
        )

    @classmethod
    def build(
        cls,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        *,
        views: int = 4,
        rotations: bool = True,
        test: tuple[Tensor, Tensor] | None = None,
        ood: Mapping[str, Tensor] | None = None,
        sei_views: int | None = None,
        augment: Callable[..., Tensor] | None = None,
        generator: torch.Generator | None = None,
        batch_size: int = 512,
    ) -> FeatureCache:
        """Run the backbone once over everything fast mode needs.

        Args:
            model: a model with ``features(x)`` and a Linear-ReLU-Linear ``head``
                (:class:`mclviz.models.MCLModel`); used in eval mode without gradients, its
                training flags are restored. Runs on the model's device; features are
                kept on the CPU.
            images: (N, 3, H, W) uint8 training images (H == W for rotations).
            labels: (N,) int labels 0..C-1.
            views: V >= 2 augmented views per image (and rotation): each step draws a pair.
            rotations: cache the 4 rotations (needed for ``method="mcl"``'s auxiliary
                task and for SEI); False caches the images as they are (R = 1).
            test: (images, labels) of the test set, scored after each retraining.
            ood: {name: images} OOD sets.
            sei_views: SEI views W of the test / OOD images (default 4 with rotations,
                else 1; up to 8).
            augment: ``augment(x, generator=...)``; default SimCLR's family with the paper's
                strength 0.5 (:class:`mclviz.transforms.SimCLRAugment`).
            generator: CPU generator for the augmentations (default seeded with 0).
            batch_size: images per forward pass.
        """
        t0 = time.perf_counter()
        if not hasattr(model, "features") or not isinstance(
            getattr(model, "head", None), nn.Sequential
        ):
            raise TypeError(
                f"model is a {type(model).__name__}; FeatureCache needs an mclviz MCLModel "
                "(model.features(x) and a Linear-ReLU-Linear model.head), e.g. "
                "mclviz.zoo.load_or_train(...).model"
            )
        views = _check_int("views", views, 2)
        batch_size = _check_int("batch_size", batch_size, 1)
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be a (N, 3, H, W) tensor, got "
                f"{getattr(images, 'shape', type(images).__name__)}"
            )
        labels = torch.as_tensor(labels).long()
        if labels.shape != (len(images),):
            raise ValueError(f"labels has shape {tuple(labels.shape)}; expected ({len(images)},)")
        if len(labels) < 2:
            raise ValueError(f"images holds {len(labels)} image(s); pass at least 2")
        if int(labels.min()) < 0:
            raise ValueError("labels holds -1 (OOD); pass in-distribution training images only")
        r = 4 if rotations else 1
        w = sei_views if sei_views is not None else r
        if not 1 <= int(w) <= 8:
            raise ValueError(f"sei_views={sei_views!r} must be in 1..8")
        augment = augment or SimCLRAugment()
        gen = generator or torch.Generator().manual_seed(0)
        with _eval_mode(model):
            per_view = []  # (N, R, f) per view
            for _v in range(views):
                rots = []
                for k in range(r):
                    aug = augment(images, generator=gen)  # (N, 3, H, W) float in [0, 1]
                    rots.append(_features(model, rotate(aug, k), batch_size))  # (N, f)
                per_view.append(torch.stack(rots, 1))  # (N, R, f)
            feats = torch.stack(per_view, 2)  # (N, R, V, f)
            plain = _sei_features(model, images, r, batch_size)  # (N, R, f)
            te = te_y = None
            if test is not None:
                te = _sei_features(model, test[0], int(w), batch_size)
                te_y = torch.as_tensor(test[1]).long()
            ood_f = {
                name: _sei_features(model, x, int(w), batch_size) for name, x in (ood or {}).items()
            }
        head = model.head
        linears = [m for m in head if isinstance(m, nn.Linear)]
        info = {
            "views": views,
            "rotations": r,
            "sei_views": int(w) if test is not None else 0,
            "arch": getattr(model, "arch", type(model).__name__),
            "width": getattr(model, "width", None),
            "augment": repr(augment),
        }
        return cls(
            views=feats,
            labels=labels,
            train=plain,
            test=te,
            test_labels=te_y,
            ood=ood_f,
            hidden=linears[0].out_features,
            proj_dim=linears[-1].out_features,
            seconds=time.perf_counter() - t0,
            info=info,
        )


# ----------------------------------------------------------------------------- scoring


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
        z_train: (N, R, d) projections of the plain training images per rotation.
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


def _pick_covariance(covariance: str, labels: Tensor, dim: int) -> str:
    if covariance not in ("auto", "class", "tied"):
        raise ValueError(f"covariance={covariance!r}: choose 'auto', 'class' or 'tied'")
    if covariance != "auto":
        return covariance
    smallest = int(torch.bincount(labels).min())
    return "class" if smallest > dim else "tied"


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
    if aggregation not in _AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r}: choose one of {_AGGREGATIONS}")
    if not 1 <= ways <= z_test.shape[1]:
        raise ValueError(
            f"ways={ways} but z_test holds {z_test.shape[1]} SEI view(s); "
            f"use ways <= {z_test.shape[1]} or cache more views"
        )
    need = min(ways, 4)
    if z_train.shape[1] < need:
        raise ValueError(
            f"ways={ways} needs training projections in {need} rotations, but "
            f"z_train has {z_train.shape[1]}; build the cache with rotations=True"
        )
    cov = _pick_covariance(covariance, train_labels, z_train.shape[-1])
    gaussians = fit_sei_gaussians(z_train[:, :need], train_labels, covariance=cov)
    method = aggregation if ways > 1 else "avg"

    def scores(z: Tensor) -> tuple[Tensor, Tensor]:
        return aggregate(sei_scores(z[:, :ways], gaussians), method=method, variant=variant)

    pred, s_in = scores(z_test)
    out = {name: scores(z) for name, z in z_ood.items()}
    s_out = {name: s for name, (_, s) in out.items()}
    return {
        "pred": pred,
        "score_in": s_in,
        "score_out": s_out,
        "pred_out": {name: p for name, (p, _) in out.items()},
        "accuracy": accuracy(pred, test_labels),
        "metrics": {name: ood_metrics(s_in, s) for name, s in s_out.items()},
        "covariance": cov,
    }


# ----------------------------------------------------------------------------- fast mode


def _scored_result(
    mode: str,
    method: str,
    model: nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    z_ood: dict[str, Tensor],
    *,
    ways: int,
    aggregation: str,
    variant: str,
    covariance: str,
    started: float,
    seconds: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    history: list | None = None,
    stopped_early: bool = False,
) -> RetrainResult:
    """Score projections with :func:`score_embeddings` and wrap them as a
    :class:`RetrainResult`; ``seconds["score"]`` is the time since ``started``."""
    (z_train, train_labels), (z_test, test_labels) = train, test
    scored = score_embeddings(
        z_train,
        train_labels,
        z_test,
        test_labels,
        z_ood,
        ways=ways,
        aggregation=aggregation,
        variant=variant,
        covariance=covariance,
    )
    return RetrainResult(
        mode=mode,
        method=method,
        params=dict(params or {}),
        history=list(history or []),
        model=model,
        z_train=z_train,
        train_labels=train_labels,
        z_test=z_test,
        test_labels=test_labels,
        z_ood=z_ood,
        pred=scored["pred"],
        score_in=scored["score_in"],
        score_out=scored["score_out"],
        accuracy=scored["accuracy"],
        metrics=scored["metrics"],
        ways=ways,
        aggregation=aggregation if ways > 1 else "none",
        variant=variant,
        covariance=scored["covariance"],
        seconds={**(seconds or {}), "score": time.perf_counter() - started},
        stopped_early=stopped_early,
        pred_out=scored["pred_out"],
    )


def loss_terms(
    method: str,
    z: Tensor,
    y: Tensor,
    y_aux: Tensor | None,
    *,
    tau: float,
    alpha: float,
    beta: float,
    lam: float,
    spa_mode: str = "sample",
    variant: str = "paper",
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """The loss of ``method`` on one batch, as :func:`mclviz.train.train` computes it.

    Args:
        method: one of :data:`RETRAIN_METHODS`.
        z: (2M, d) projections, rows 2k and 2k+1 the two views of image k.
        y: (2M,) labels; y_aux: (2M,) rotation labels (``mcl`` only) or None.
        tau, alpha, beta, lam: Eq. 2-11 (alpha and beta only for ccm / mcl, lam for mcl).

    Returns:
        {"loss": scalar with gradient, and for MCL the detached terms "ccm", "spa"}.
    """
    if method == "simclr":
        return {"loss": losses.nt_xent(z, tau=tau)}
    if method == "supclr":
        return {"loss": losses.supcon(z, y, tau=tau)}
    if method == "ccm":
        return {"loss": losses.ccm(z, y, None, tau=tau, alpha=alpha, beta=beta, variant=variant)}
    t = losses.mcl_terms(
        z,
        y,
        y_aux,
        tau=tau,
        alpha=alpha,
        beta=beta,
        lam=lam,
        mode=spa_mode,
        generator=generator,
        variant=variant,
    )
    return {"loss": t["loss"], "ccm": t["ccm"].detach(), "spa": t["spa"].detach()}


def _fresh_head(f: int, hidden: int, d: int, generator: torch.Generator) -> nn.Sequential:
    """Linear-ReLU-Linear with torch's default Linear init, drawn from ``generator``."""
    head = nn.Sequential(nn.Linear(f, hidden), nn.ReLU(), nn.Linear(hidden, d))
    with torch.no_grad():
        for lin in (head[0], head[2]):
            bound = 1.0 / math.sqrt(
                lin.in_features
            )  # kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))
            lin.weight.uniform_(-bound, bound, generator=generator)
            lin.bias.uniform_(-bound, bound, generator=generator)
    return head


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

    Each epoch visits the training images in a seeded random order, ``batch_size`` at a
    time; for every image (and every rotation, for ``mcl``) two different cached views are
    drawn, projected by the head and fed to the loss of ``method`` (Eq. 2 SimCLR, SupCLR,
    Eq. 6 CCM, Eq. 10 MCL without and Eq. 11 with the rotation auxiliary). Adam with a cosine
    learning-rate decay. Then the Gaussians of Eq. 12 (per rotation, Eq. 15) are fitted on the
    head's projections of the plain training images and the test / OOD sets are scored.

    Args:
        cache: from :meth:`FeatureCache.build` with a test set.
        method: one of :data:`RETRAIN_METHODS`; ``mcl`` needs a cache with rotations.
        tau, alpha, beta, lam: the loss hyperparameters (paper: 0.2, 0.05, 2.5, 1);
            alpha and beta must lie in (0, 1/tau].
        epochs: passes over the cached training images.
        batch_size: images per step (each contributes 2 views, 8 with rotations).
        lr: Adam's initial learning rate.
        seed: seeds the head's initialisation, the order, the view pairs and SPA's draws.
        hidden, proj_dim: the head's widths (default: the cached model's head).
        ways: SEI views for scoring; None -> :func:`default_ways`.
        aggregation, variant, covariance: see :func:`score_embeddings`.
        spa_mode: SPA's "sample" (Eq. 9) or "expected".
        callback: called after every epoch with ``{"kind": "epoch", "epoch", "loss", ...}``.
        should_stop: polled after every step; True ends the training early.

    Returns:
        A :class:`RetrainResult` with ``mode="fast"``.
    """
    method = _check_method(method)
    if cache.test is None or cache.test_labels is None:
        raise ValueError("cache has no test set; build it with test=(images, labels)")
    if method == "mcl" and cache.rotations != 4:
        raise ValueError(
            "method='mcl' trains the rotation auxiliary (Eq. 11) and needs a cache "
            "built with rotations=True; or pick method='mcl-noaux'"
        )
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be > 0")
    check_hyperparameters(method, tau=tau, alpha=alpha, beta=beta, lam=lam)
    ways = default_ways(method, cache.sei_views) if ways is None else int(ways)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    head = _fresh_head(cache.feat_dim, hidden or cache.hidden, proj_dim or cache.proj_dim, gen)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    n = len(cache.labels)
    batch = min(batch_size, n)
    steps_per_epoch = max(1, n // batch)
    total = steps_per_epoch * epochs
    rots = 4 if method == "mcl" else 1
    feats = cache.views[:, :rots]  # (N, R', V, f)
    v = cache.n_views
    history: list[dict[str, float]] = []
    step = 0
    stopped = False
    head.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        count = 0
        for i in range(steps_per_epoch):
            idx = order[i * batch : (i + 1) * batch]  # (b,)
            b = len(idx)
            first = torch.randint(v, (b, rots), generator=gen)
            second = (first + torch.randint(1, v, (b, rots), generator=gen)) % v  # != first
            pick = torch.stack([first, second], -1)  # (b, R', 2)
            x = feats[idx]  # (b, R', V, f)
            x = x.gather(2, pick[..., None].expand(b, rots, 2, x.shape[-1]))  # (b, R', 2, f)
            x = x.permute(1, 0, 2, 3).reshape(rots * b * 2, -1)  # rotation blocks, rows 2k, 2k+1
            yv = cache.labels[idx].repeat_interleave(2).repeat(rots)  # (2 b R',)
            y_aux = torch.arange(rots).repeat_interleave(2 * b) if method == "mcl" else None
            for g in opt.param_groups:  # cosine decay, no warm-up (as the paper's schedule)
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            terms = loss_terms(
                method,
                head(x),
                yv,
                y_aux,
                tau=tau,
                alpha=alpha,
                beta=beta,
                lam=lam,
                spa_mode=spa_mode,
                variant=variant,
                generator=gen,
            )
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            step += 1
            count += 1
            for k, t in terms.items():
                sums[k] = sums.get(k, 0.0) + float(t.detach())
            if should_stop is not None and should_stop():
                stopped = True
                break
        row = {"epoch": float(epoch + 1), **{k: s / count for k, s in sums.items()}}
        history.append(row)
        if callback is not None:
            callback({"kind": "epoch", **row})
        if stopped:
            break
    head.eval()
    t1 = time.perf_counter()
    with torch.no_grad():
        z_train = head(cache.train)  # (N, R, d)
        z_test = head(cache.test)  # (n, W, d)
        z_ood = {name: head(f) for name, f in cache.ood.items()}
    params = {
        "tau": tau,
        "alpha": alpha,
        "beta": beta,
        "lam": lam,
        "epochs": epochs,
        "batch_size": batch,
        "lr": lr,
        "seed": seed,
        "views": v,
        "spa_mode": spa_mode,
    }
    return _scored_result(
        "fast",
        method,
        head,
        (z_train, cache.labels),
        (z_test, cache.test_labels),
        z_ood,
        ways=ways,
        aggregation=aggregation,
        variant=variant,
        covariance=covariance,
        started=t1,
        seconds={"train": t1 - t0},
        params=params,
        history=history,
        stopped_early=stopped,
    )


# ----------------------------------------------------------------------------- full mode


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
    """Train the whole network with :func:`mclviz.train.train`, then score (full mode).

    Args:
        config: a :class:`mclviz.config.Config` of a method in :data:`RETRAIN_METHODS`
            (e.g. ``Config.preset("tiny", method="mcl", alpha=0.1, epochs=3)``).
        images, labels: the training images (uint8 (N, 3, H, W)) and labels 0..C-1.
        test: (images, labels) of the test set; ood: {name: images}.
        ways: SEI views for scoring; None -> :func:`default_ways`.
        aggregation, variant, covariance: see :func:`score_embeddings`.
        callbacks, should_stop, progress: passed to :func:`mclviz.train.train` (a live
            loss curve is a callback; a Stop button sets ``should_stop``).
        batch_size: images per forward pass when embedding.

    Returns:
        A :class:`RetrainResult` with ``mode="full"``; ``model`` is the trained network,
        ``history`` the per-epoch loss rows of ``train``.
    """
    from .train import train

    method = _check_method(config.method)
    t0 = time.perf_counter()
    res = train(
        config,
        data=(images, labels),
        callbacks=callbacks,
        should_stop=should_stop,
        progress=progress,
    )
    result = score_model(
        res.model,
        (images, labels),
        test,
        ood,
        method=method,
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
    result.history = list(res.history)
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
) -> RetrainResult:
    """Embed and score a trained model as it is (``mode="model"``), e.g. a loaded checkpoint.

    The same result type as the retrainings, so the same figures and the failure viewer
    apply: projections ``z = g(f(x))`` of the training images (in 4 rotations when
    ``ways > 1``), of the test and OOD images in SEI views 0..ways-1, then
    :func:`score_embeddings`.

    Args:
        model: a contrastive model (``model(x)`` is the projection of Eq. 12).
        train, test: (images, labels); ood: {name: images}.
        method: the model's method (a label; ``ways=None`` picks 4 SEI views for ``mcl``).
        ways, aggregation, variant, covariance: see :func:`score_embeddings`.
        batch_size: images per forward pass.
    """
    from .embed import embed

    ways = default_ways(method, 8) if ways is None else int(ways)
    t0 = time.perf_counter()

    def z(x: Tensor, w: int) -> Tensor:
        return embed(model, x, views=w, batch_size=batch_size, progress=False)  # (n, w, d)

    train_labels = torch.as_tensor(train[1]).long()
    test_labels = torch.as_tensor(test[1]).long()
    z_train, z_test = z(train[0], 4 if ways > 1 else 1), z(test[0], ways)
    z_ood = {name: z(x, ways) for name, x in ood.items()}
    return _scored_result(
        "model",
        method,
        model,
        (z_train, train_labels),
        (z_test, test_labels),
        z_ood,
        ways=ways,
        aggregation=aggregation,
        variant=variant,
        covariance=covariance,
        started=t0,
    )
