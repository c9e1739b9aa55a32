"""Methods: one registry entry per training method, and the one training step they share.

A :class:`Method` holds everything mclviz needs to know about a method, in one place:
how a batch of images becomes training views and labels (``make_views``), which model
outputs its loss reads (``outputs``), the loss itself (``loss``, built on the pure
functions of :mod:`mclviz.losses`), the heads the model needs, whether it trains with
rotation labels (Eq. 11, so that self-ensemble inference applies), what its embeddings
are scored on (``scored_on``), the config fields its loss reads (``hyperparameters``, the
sliders of notebook 05) and the forward passes per image (``views_per_image``).

Training (full network, :func:`mclviz.training.train`) and the sliders' head-only mode
(:func:`mclviz.training.retrain_head`) both compute a step with :func:`step`; they differ
only in where the views come from (augmented images, or cached backbone features) and in
what ``forward`` runs (the model, or a fresh projection head).

Adding a method is one :func:`register` call with its loss function:

>>> import torch
>>> from mclviz import losses
>>> from mclviz.methods import Method, contrastive_views, register
>>> toy = Method(
...     name="toy-ntxent",
...     description="NT-Xent at half the temperature (a toy)",
...     make_views=contrastive_views,
...     outputs=("z",),
...     loss=lambda out, views, ctx: {"loss": losses.nt_xent(out["z"], tau=ctx.config.tau / 2)},
...     hyperparameters=("tau",),
... )
>>> register(toy) is toy
True
>>> unregister("toy-ntxent")
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

import torch.nn.functional as F
from torch import Tensor

from . import classifier, contrastive, mean_shifted
from ._base import MODEL_OUTPUTS, Method, StepContext
from ._views import Augmenters, Views, contrastive_views

__all__ = [
    "MODEL_OUTPUTS",
    "Augmenters",
    "Method",
    "StepContext",
    "Views",
    "contrastive_views",
    "get",
    "names",
    "register",
    "step",
    "unregister",
]

_REGISTRY: dict[str, Method] = {}


def register(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (``replace=True`` overwrites an entry); returns it."""
    if not isinstance(method, Method):
        raise TypeError(f"register() takes a Method, got {type(method).__name__}")
    if method.name in _REGISTRY and not replace:
        raise ValueError(
            f"a method named {method.name!r} is registered already; pick another name or "
            "pass replace=True"
        )
    _REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method (a test's toy method, say) from the registry."""
    _REGISTRY.pop(get(name).name)


def names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Method:
    """The registry entry of ``name``; an unknown name raises ``ValueError`` naming the choices."""
    if isinstance(name, Method):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"method={name!r} is not known{hint}; choose one of {list(_REGISTRY)}"
        ) from None


def step(
    method: Method,
    forward: Callable[[Tensor, tuple[str, ...]], dict[str, Tensor]],
    views: Views,
    context: StepContext,
    gather: Callable[[dict[str, Tensor], Views], tuple[dict[str, Tensor], Views]] | None = None,
) -> dict[str, Tensor]:
    """One training step's loss terms: run ``forward`` on the views, then the method's loss.

    Args:
        method: the registry entry.
        forward: ``(x, output names) -> {name: float32 tensor}``, one pass over the views
            (the whole model in training, a projection head on cached features in the
            sliders' head-only mode).
        views: from ``method.make_views`` (or the head-only cache).
        context: config, the loss's generator and the method's state.
        gather: under ``torchrun``, collects the outputs and labels of every process
            for a loss that couples the batch (``method.batch_loss``).

    Returns:
        ``{"loss": scalar with gradient, ...}`` plus detached terms for the progress bar;
        an auxiliary cross-entropy head (``config.aux_ce > 0``) adds ``"aux_ce"``.
    """
    out = forward(views.x, method.outputs_for(context.config))
    aux = None
    weight = float(getattr(context.config, "aux_ce", 0.0))
    if weight:  # computed per process: it couples nothing
        smoothing = float(getattr(context.config, "label_smoothing", 0.0))
        aux = F.cross_entropy(out["logits"], views.y, label_smoothing=smoothing)
    if gather is not None and method.batch_loss:
        out, views = gather(out, views)
    terms = method.loss(out, views, context)
    if aux is not None:
        terms = {**terms, "loss": terms["loss"] + weight * aux, "aux_ce": aux.detach()}
    return terms


def _register_all(entries: Iterable[Method]) -> None:
    for m in entries:
        register(m)


_register_all([*contrastive.METHODS, *classifier.METHODS, *mean_shifted.METHODS])
