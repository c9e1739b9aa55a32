"""The registry entry of a method, and the context of one training step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ._views import Augmenters, Views

__all__ = ["MODEL_OUTPUTS", "Method", "StepContext"]

#: the model outputs a loss may read (MCLModel.forward(x, output=(...)))
MODEL_OUTPUTS = ("z", "features", "logits", "rot")


@dataclass
class StepContext:
    """What one training step needs besides the views.

    Attributes:
        config: the run's :class:`~mclviz.config.Config` (the loss reads its
            ``hyperparameters`` from it).
        generator: the step's source of randomness for the loss (SPA's draws, Eq. 9).
        state: state a method keeps over the run (e.g. the mean-shifted loss's center).
    """

    config: Any
    generator: torch.Generator | None = None
    state: dict[str, Any] = field(default_factory=dict)


LossFn = Callable[[dict[str, Tensor], Views, StepContext], dict[str, Tensor]]
ViewFn = Callable[[Tensor, Tensor, Augmenters, Any, torch.Generator | None], Views]


@dataclass(frozen=True)
class Method:
    """One training method: its views, heads, loss and scoring.

    Attributes:
        name: the ``Config.method`` value.
        description: one line, with the paper's equation or reference.
        make_views: ``(images uint8 (n, 3, H, W), labels (n,), augmenters, config,
            generator) -> Views``: the views one step trains on.
        outputs: the model outputs the loss reads, from one forward pass of the views:
            ``"z"`` (projection), ``"features"`` (f(x)), ``"logits"``, ``"rot"``
            (rotation logits).
        loss: ``(outputs, views, context) -> {"loss": scalar, other detached terms}``.
        scored_on: the output the class-conditional Gaussians score (Eq. 12 scores the
            projection ``z``; classifiers are scored on their ``features``).
        rotation_labels: trains with (class, rotation) labels (Eq. 11): SEI applies.
        classifier: the model needs a classifier head (``num_classes`` outputs).
        rot_head: the model needs a 4-way rotation head.
        hyperparameters: the config fields the loss reads (checked, and offered as
            sliders where they are loss weights).
        views_per_image: forward passes per training image per step, for a config.
        batch_loss: the loss couples the samples of a batch (contrastive): under
            ``torchrun`` the outputs are gathered over the processes first.
        one_class: trained on one normal class (mean-shifted fine-tuning).
        freeze_bn: batch-norm layers stay in eval mode during training.
        setup: ``(config, model, images, device, precision) -> state``, run once before
            training (the mean-shifted center); None for none.
        check: ``config -> None``, raising ``ValueError`` for a config the method cannot
            train (e.g. a missing ``normal_class``); None for none.
        default_lr: the learning rate when ``config.lr`` is None (default: the paper's
            ``0.3 x batch_size / 256``).
    """

    name: str
    description: str
    make_views: ViewFn
    outputs: tuple[str, ...]
    loss: LossFn
    scored_on: str = "z"
    rotation_labels: bool = False
    classifier: bool = False
    rot_head: bool = False
    hyperparameters: tuple[str, ...] = ()
    views_per_image: Callable[[Any], int] = lambda config: 2
    batch_loss: bool = True
    one_class: bool = False
    freeze_bn: bool = False
    setup: Callable[..., dict[str, Any]] | None = None
    check: Callable[[Any], None] | None = None
    default_lr: Callable[[Any], float] | None = None

    def __post_init__(self) -> None:
        bad = [o for o in self.outputs if o not in MODEL_OUTPUTS]
        if not self.outputs or bad:
            raise ValueError(
                f"Method {self.name!r}: outputs={self.outputs!r} must name model outputs "
                f"among {MODEL_OUTPUTS}"
            )
        if self.scored_on not in ("z", "features"):
            raise ValueError(
                f"Method {self.name!r}: scored_on={self.scored_on!r}: choose 'z' or 'features'"
            )

    @property
    def contrastive(self) -> bool:
        """Its loss reads only the projections ``z``: the sliders can retrain the head alone."""
        return self.outputs == ("z",)

    def outputs_for(self, config: Any) -> tuple[str, ...]:
        """The outputs a step computes: the loss's, plus logits for an auxiliary CE head."""
        if getattr(config, "aux_ce", 0) and "logits" not in self.outputs:
            return (*self.outputs, "logits")
        return self.outputs

    def needs_classifier(self, config: Any) -> bool:
        return self.classifier or bool(getattr(config, "aux_ce", 0))

    def learning_rate(self, config: Any) -> float:
        if config.lr is not None:
            return float(config.lr)
        if self.default_lr is not None:
            return float(self.default_lr(config))
        return 0.3 * config.batch_size / 256
