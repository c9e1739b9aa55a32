"""The sliders' fast mode: a fresh projection head trained on cached backbone features.

:class:`FeatureCache` runs a frozen backbone ``f`` once on ``V`` augmented views of every
training image (in the 4 rotations of the auxiliary task, Eq. 11, when asked) and on the
plain train / test / OOD images. :func:`train_head` then trains a fresh projection head
``g`` with the method's loss (:mod:`mclviz.methods`, the same step as full training) on
pairs of cached views, with the same optimisation loop (:func:`~.loop.optimize`). Seconds
on a CPU; only the head learns, so it shows how the loss shapes the projection of *these*
features, not what a whole network would learn.

Batch layout: as full training: rows 2k and 2k+1 are two views of image k; with the
rotation auxiliary the batch holds the 4 rotations one block after the other, ``y_aux``
the rotation index.

Everything is deterministic for a given ``seed`` (all draws come from one seeded
``torch.Generator``; torch's global RNG is not touched). Nothing is written to disk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .. import methods
from ..embed import embed
from ..transforms import SimCLRAugment, rotate
from .loop import LoopState, optimize
from .schedule import lr_at

__all__ = ["FeatureCache", "HeadRun", "fresh_head", "train_head"]


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r} must be an int >= {low}")
    return value


def _features(
    model: nn.Module, images: Tensor, views, batch_size: int, progress: bool = False
) -> Tensor:
    """(n, W, f) float32 CPU backbone features of SEI views ``views`` (eval mode, fp32)."""
    return embed(
        model, images, views=views, output="features", batch_size=batch_size, progress=progress
    )


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
        head_norm: the model's head has batch norm (a fresh head is built alike).
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
    head_norm: bool = False
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
        progress: bool = False,
    ) -> FeatureCache:
        """Run the backbone once over everything fast mode needs.

        Args:
            model: a model with ``features(x)`` and a projection ``head``
                (:class:`mclviz.models.MCLModel`); used in eval mode without gradients, its
                training flags are restored. Runs on the model's device; features are
                kept on the CPU.
            images: (N, 3, H, W) uint8 training images (H == W for rotations).
            labels: (N,) int labels 0..C-1.
            views: V >= 2 augmented views per image (and rotation): each step draws a pair.
            rotations: cache the 4 rotations (needed for methods with rotation labels and
                for SEI); False caches the images as they are (R = 1).
            test: (images, labels) of the test set, scored after each retraining.
            ood: {name: images} OOD sets.
            sei_views: SEI views W of the test / OOD images (default 4 with rotations,
                else 1; up to 8).
            augment: ``augment(x, generator=...)``; default SimCLR's family with the paper's
                strength 0.5 (:class:`mclviz.transforms.SimCLRAugment`).
            generator: CPU generator for the augmentations (default seeded with 0).
            batch_size: images per forward pass.
            progress: a tqdm.auto bar per pass over the images.
        """
        t0 = time.perf_counter()
        if not hasattr(model, "features") or not isinstance(
            getattr(model, "head", None), nn.Sequential
        ):
            raise TypeError(
                f"model is a {type(model).__name__}; FeatureCache needs an mclviz MCLModel "
                "(model.features(x) and a projection head model.head), e.g. "
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
        per_view = []  # (N, R, f) per view
        for _v in range(views):
            rots = []
            for k in range(r):
                aug = augment(images, generator=gen)  # (N, 3, H, W) float in [0, 1]
                rots.append(
                    _features(model, rotate(aug, k), 1, batch_size, progress)[:, 0]
                )  # (N, f)
            per_view.append(torch.stack(rots, 1))  # (N, R, f)
        feats = torch.stack(per_view, 2)  # (N, R, V, f)
        plain = _features(model, images, r, batch_size, progress)  # (N, R, f)
        te = te_y = None
        if test is not None:
            te = _features(model, test[0], int(w), batch_size, progress)
            te_y = torch.as_tensor(test[1]).long()
        ood_f = {
            name: _features(model, x, int(w), batch_size, progress)
            for name, x in (ood or {}).items()
        }
        linears = [m for m in model.head if isinstance(m, nn.Linear)]
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
            head_norm=any(isinstance(m, nn.BatchNorm1d) for m in model.head),
            seconds=time.perf_counter() - t0,
            info=info,
        )


def fresh_head(
    feat_dim: int, hidden: int, proj_dim: int, generator: torch.Generator, *, norm: bool = False
) -> nn.Sequential:
    """A projection head as :func:`mclviz.models.projection_head` builds it, with its Linear
    layers initialised as torch does by default (U(+-1/sqrt(fan_in))) from ``generator``."""
    from ..models import projection_head

    head = projection_head(feat_dim, proj_dim, hidden, norm=norm)
    with torch.no_grad():
        for lin in (m for m in head if isinstance(m, nn.Linear)):
            bound = 1.0 / math.sqrt(lin.in_features)  # kaiming_uniform(a=sqrt(5))
            lin.weight.uniform_(-bound, bound, generator=generator)
            if lin.bias is not None:
                lin.bias.uniform_(-bound, bound, generator=generator)
    return head


@dataclass
class HeadRun:
    """What :func:`train_head` returns: the trained head, its loss history and timing."""

    head: nn.Sequential
    history: list[dict[str, float]]
    stopped_early: bool
    seconds: float
    params: dict[str, Any]


def _retrainable(config: Any, cache: FeatureCache):
    """``config``'s method entry, when its head can be retrained on ``cache``."""
    entry = config.method_entry
    if not entry.contrastive:
        raise ValueError(
            f"method={config.method!r} cannot be retrained head-only: its loss reads "
            f"{entry.outputs}, not the projections; choose a contrastive method"
        )
    if entry.rotation_labels and cache.rotations != 4:
        raise ValueError(
            f"method={config.method!r} trains the rotation auxiliary (Eq. 11) and needs a "
            "cache built with rotations=True; or pick a method without rotation labels"
        )
    return entry


def _two_views(x: Tensor, gen: torch.Generator) -> Tensor:
    """Two different cached views of every image and rotation: (b, R', V, f) ->
    (R' * b * 2, f), in rotation blocks, the views of image k in rows 2k and 2k + 1."""
    b, rots, v, f = x.shape
    first = torch.randint(v, (b, rots), generator=gen)
    second = (first + torch.randint(1, v, (b, rots), generator=gen)) % v  # != first
    pick = torch.stack([first, second], -1)  # (b, R', 2)
    x = x.gather(2, pick[..., None].expand(b, rots, 2, f))  # (b, R', 2, f)
    return x.permute(1, 0, 2, 3).reshape(rots * b * 2, f)


def train_head(
    cache: FeatureCache,
    config: Any,
    *,
    epochs: int = 15,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    hidden: int | None = None,
    proj_dim: int | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> HeadRun:
    """Train a fresh projection head on cached features with ``config.method``'s loss.

    Each epoch visits the training images in a seeded random order, ``batch_size`` at a
    time; for every image (and every rotation, for methods with rotation labels) two
    different cached views are drawn, projected by the head and fed to the method's loss
    through :func:`mclviz.methods.step`. Adam, cosine decay of the learning rate.

    Args:
        cache: from :meth:`FeatureCache.build`.
        config: a :class:`~mclviz.config.Config` naming a contrastive method and the loss
            hyperparameters (``tau``, ``alpha``, ``beta``, ``lam``, ``spa_mode``, ``variant``).
        epochs: passes over the cached training images.
        batch_size: images per step (each contributes 2 views, 8 with rotations).
        lr: Adam's initial learning rate.
        seed: seeds the head's initialisation, the order, the view pairs and SPA's draws.
        hidden, proj_dim: the head's widths (default: the cached model's head).
        callback: called after every epoch with ``{"kind": "epoch", "epoch", "loss", ...}``.
        should_stop: polled after every step; True ends the training early.
    """
    entry = _retrainable(config, cache)
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be > 0")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    head = fresh_head(
        cache.feat_dim,
        hidden or cache.hidden,
        proj_dim or cache.proj_dim,
        gen,
        norm=cache.head_norm,
    )
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    n = len(cache.labels)
    batch = min(batch_size, n)
    steps_per_epoch = max(1, n // batch)
    total = steps_per_epoch * epochs
    rots = 4 if entry.rotation_labels else 1
    feats = cache.views[:, :rots]  # (N, R', V, f)
    context = methods.StepContext(config, generator=gen)
    order: list[Tensor] = []

    def step_terms(step: int) -> dict[str, Tensor]:
        i = step % steps_per_epoch
        if i == 0:
            order[:] = [torch.randperm(n, generator=gen)]
        idx = order[0][i * batch : (i + 1) * batch]  # (b,)
        b = len(idx)
        x = _two_views(feats[idx], gen)
        yv = cache.labels[idx].repeat_interleave(2).repeat(rots)  # (2 b R',)
        y_aux = torch.arange(rots).repeat_interleave(2 * b) if entry.rotation_labels else None
        views = methods.Views(x, yv, y_aux)
        return methods.step(entry, lambda f, names: {"z": head(f)}, views, context)

    def on_event(event: dict[str, Any]) -> None:
        if callback is not None and event["kind"] == "epoch":
            callback(event)

    head.train()
    state, stopped = optimize(
        step_terms,
        optimizer,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        lr=lambda s: lr_at(s, total, lr),  # cosine decay, no warm-up (the paper's schedule)
        state=LoopState(),
        callbacks=[on_event],
        should_stop=should_stop,
        progress=False,
    )
    head.eval()
    params = {
        **{k: getattr(config, k) for k in entry.hyperparameters},
        "epochs": epochs,
        "batch_size": batch,
        "lr": lr,
        "seed": seed,
        "views": cache.n_views,
        "spa_mode": config.spa_mode,
    }
    return HeadRun(head, state.history, stopped, time.perf_counter() - t0, params)
