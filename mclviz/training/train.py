"""``train(config)``: one full training run of any registered method.

``train`` loads the data the config names, builds the model the method needs, and runs
SGD (:func:`mclviz.training.loop.optimize`) with the config's schedule, checkpointing
atomically to ``out/checkpoint.safetensors`` every ``config.save_every`` steps and at every
epoch end. ``resume=True`` continues from that file and reaches the same weights as an
uninterrupted run with the same seed (on the CPU), because every random draw is a pure
function of ``(seed, epoch, step)``:

* the epoch's image order: ``randperm`` seeded by ``(seed, epoch)``;
* the step's augmentations and SPA positives: generators seeded by ``(seed, step)``.

What a step trains on and computes is the method's registry entry
(:mod:`mclviz.methods`): its views (``batch_size`` counts images; each becomes
``config.views_per_image`` forward passes), its outputs and its loss.

FastNet (``arch="fastnet"``) gets its whitening filters from 5,000 training images before
the first step. With ``ema_decay > 0`` the checkpoint's model is the weight average (what
is evaluated and shipped), and the weights being trained are stored beside it for resuming.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import methods
from ..checkpoint import build_model_from_config, load, save
from ..config import Config
from ..device import Precision, resolve_device, resolve_precision
from ..models import TV_ARCHS, MCLModel, describe_imagenet_weights, load_imagenet_backbone
from . import distributed as dist_utils
from .data import prepare_data, seed_of
from .loop import Callback, LoopState, optimize
from .schedule import WeightAverage, lr_at

__all__ = [
    "CHECKPOINT_NAME",
    "TrainResult",
    "describe_pretrained",
    "freeze_batch_norm",
    "load_pretrained",
    "train",
]

CHECKPOINT_NAME = "checkpoint.safetensors"


@dataclass
class TrainResult:
    """What ``train`` returns."""

    model: MCLModel
    config: Config
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    checkpoint: Path | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    precision: str = "fp32"


def freeze_batch_norm(model: torch.nn.Module) -> None:
    """Put every batch-norm layer in eval mode (running statistics frozen)."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.eval()


def load_pretrained(config: Config, model: MCLModel) -> None:
    """Load the backbone ``config.pretrained`` names into ``model`` (in place).

    * ``"imagenet"``: torchvision's ImageNet weights from the torch hub cache (never
      downloaded); ``config.arch`` must be a torchvision arch (``"tv-resnet18"``...).
    * a checkpoint path: its backbone weights; ``arch``, ``width`` and ``normalize_input``
      must match the checkpoint's (``mclviz.training.fine_tune`` copies them).
    """
    if config.pretrained == "imagenet":
        if config.arch not in TV_ARCHS:
            raise ValueError(
                f"pretrained='imagenet' needs a torchvision arch, but arch={config.arch!r}; "
                f"set arch to one of {sorted(TV_ARCHS)} (and width=1.0)"
            )
        load_imagenet_backbone(model)
        return
    src = load(config.pretrained).model
    fields = ("arch", "width", "normalize_input")
    diff = {f: (getattr(src, f), getattr(model, f)) for f in fields}
    diff = {f: ab for f, ab in diff.items() if ab[0] != ab[1]}
    if diff:
        have = ", ".join(f"{f}={a!r} (config: {b!r})" for f, (a, b) in diff.items())
        raise ValueError(
            f"pretrained={config.pretrained!r} holds a backbone with {have}; set those "
            "config fields to the checkpoint's values (mclviz.training.fine_tune does it)"
        )
    model.backbone.load_state_dict(src.backbone.state_dict())


def _describe_checkpoint(path: Path) -> str:
    ck = load(path)
    c = ck.config
    what = c.extra.get("source") or f"{c.method} checkpoint"
    return (
        f"{c.arch} width {c.width:g} from {what} {path.name} (epoch {ck.epoch}, "
        f"sha256 {(ck.sha256 or '')[:12]})"
    )


def describe_pretrained(config: Config) -> str:
    """One line naming the backbone ``config.pretrained`` starts from ("" for none)."""
    if not config.pretrained:
        return ""
    if config.pretrained == "imagenet":
        return describe_imagenet_weights(config.arch)
    return _describe_checkpoint(Path(config.pretrained))


def _build(config: Config, images: torch.Tensor, device: torch.device, prec: Precision):
    """The freshly initialised model of the run, on ``device`` in its memory format."""
    torch.manual_seed(config.seed)
    model = build_model_from_config(config).to(device)
    if hasattr(model.backbone, "init_whitening"):
        gen = torch.Generator().manual_seed(config.seed)
        pick = torch.randperm(len(images), generator=gen)[:5000]  # any 5,000 will do
        sample = images[pick].to(device).float().div_(255)
        model.backbone.init_whitening((sample - model.mean) / model.std)
    if config.pretrained:
        load_pretrained(config, model)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _unused_heads(entry: methods.Method, config: Config) -> bool:
    """True when the model has a head the method's loss never reads (DDP must know)."""
    used = entry.outputs_for(config)
    return (
        "z" not in used
        or (entry.needs_classifier(config) and "logits" not in used)
        or (entry.rot_head and "rot" not in used)
    )


def _gather(out: dict[str, torch.Tensor], views: methods.Views):
    """The outputs and labels of every process (rank order), for a loss over the batch."""
    y_aux = None if views.y_aux is None else dist_utils.gather(views.y_aux)
    gathered = {k: dist_utils.gather(v) for k, v in out.items()}
    return gathered, methods.Views(None, dist_utils.gather(views.y), y_aux)


class _Resumed:
    """What a checkpoint gives a resumed run (or a fresh run's empty start)."""

    def __init__(self) -> None:
        self.state = LoopState()
        self.seconds = 0.0
        self.method_state: dict[str, Any] = {}

    @classmethod
    def read(cls, path: Path, config: Config, model, optimizer, average, device) -> _Resumed:
        ck = load(path, device=device)
        mine, theirs = config.to_dict(), ck.config.to_dict()
        if mine != theirs:
            diff = {k: (v, mine[k]) for k, v in theirs.items() if mine.get(k) != v}
            raise ValueError(
                f"cannot resume {path}: its config differs in {diff}; "
                "resume with the same config or start a new --out folder"
            )
        model.load_state_dict(ck.live_state if ck.live_state is not None else ck.model.state_dict())
        if average is not None:
            average.module.load_state_dict(ck.model.state_dict())
            average.n_averaged.fill_(int(ck.metrics.get("ema_updates", ck.step)))
        if ck.optimizer_state is not None:
            optimizer.load_state_dict(ck.optimizer_state)
        out = cls()
        out.state = LoopState(
            ck.step,
            list(ck.metrics.get("history", [])),
            ck.metrics.get("partial", out.state.partial),
        )
        out.seconds = float(ck.metrics.get("seconds", 0.0))
        if "center" in ck.metrics:
            out.method_state["center"] = torch.tensor(ck.metrics["center"])
        return out


def train(
    config: Config,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config.method`` and return the model.

    Args:
        config: the run's config (see ``Config.preset``).
        out: folder for ``checkpoint.safetensors``; None keeps everything in memory.
        resume: continue from ``out/checkpoint.safetensors`` when it exists.
        data: ``(images uint8 (N, 3, 32, 32), labels (N,))`` to train on instead of
            loading ``config.dataset``.
        callbacks: called with a dict after every step (``kind="step"``) and epoch
            (``kind="epoch"``): step, epoch, lr and the loss terms. A notebook's live loss
            curve is one.
        should_stop: polled after every step; returning True saves and stops early.
        progress: show a tqdm.auto progress bar with the running loss terms.
    """
    t0 = time.perf_counter()
    entry = config.method_entry
    device = resolve_device(config.device)
    distributed = dist_utils.init_from_env(device)
    rank, world = dist_utils.rank(), dist_utils.world_size()
    prec = resolve_precision(config.precision, device, config.channels_last)
    images, labels = data if data is not None else prepare_data(config)
    if entry.needs_classifier(config) and config.num_classes is None:
        config = config.replace(num_classes=int(labels.max()) + 1)
    model = _build(config, images, device, prec)
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.nesterov,
    )
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    n = len(labels)
    batch = min(config.batch_size, n)
    if batch % world:
        raise ValueError(f"batch_size={batch} must be divisible by the {world} processes")
    steps_per_epoch = max(1, n // batch)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    path = Path(out) / CHECKPOINT_NAME if out is not None else None
    if resume and path is not None and path.exists():
        start = _Resumed.read(path, config, model, optimizer, average, device)
    else:
        start = _Resumed()
    context = methods.StepContext(config, state=start.method_state)
    if entry.setup is not None and not context.state:
        context.state.update(entry.setup(config, model, images, device, prec))
    net: torch.nn.Module = model
    if distributed:  # forward through DDP so that gradients are all-reduced
        net = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=_unused_heads(entry, config),
        )
    augment = methods.Augmenters(config)
    backbone = describe_pretrained(config)
    orders: dict[int, torch.Tensor] = {}

    def forward(x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        with prec.autocast():
            outputs = net(prec.prepare(x), output=names)
        return {k: v.float() for k, v in outputs.items()}

    def step_terms(step: int) -> dict[str, torch.Tensor]:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in orders:
            orders.clear()
            g = torch.Generator().manual_seed(seed_of(config.seed, epoch))
            orders[epoch] = torch.randperm(n, generator=g)
        share = batch // world
        idx = orders[epoch][i * batch : (i + 1) * batch][rank * share : (rank + 1) * share]
        x, y = images[idx].to(device), labels[idx].to(device)
        gen = torch.Generator(device=device).manual_seed(seed_of(config.seed, step, rank, 1))
        context.generator = torch.Generator(device=device).manual_seed(
            seed_of(config.seed, step, 2)
        )
        views = entry.make_views(x, y, augment, config, gen)
        return methods.step(entry, forward, views, context, _gather if distributed else None)

    def metrics() -> dict[str, Any]:
        m: dict[str, Any] = {
            "history": state.history,
            "partial": state.partial,
            "precision": prec.name,
            "device": str(device),
            "world_size": world,
            "seconds": start.seconds + time.perf_counter() - t0,
        }
        if average is not None:
            m["ema_updates"] = int(average.n_averaged)
        if config.pretrained:
            m["backbone"] = backbone
        m.update({k: v.tolist() for k, v in context.state.items()})
        return m

    def checkpoint(epochs_done: int) -> None:
        if path is not None and rank == 0:
            save(
                path,
                average.module if average is not None else model,
                config,
                epoch=epochs_done,
                step=state.step,
                optimizer=optimizer,
                live=model if average is not None else None,
                scheduler_state={
                    "name": config.lr_schedule,
                    "total_steps": total_steps,
                    "warmup_steps": warmup,
                    "base_lr": config.learning_rate,
                },
                metrics=metrics(),
            )

    state = start.state
    model.train()
    if entry.freeze_bn:
        freeze_batch_norm(model)
    state, stopped = optimize(
        step_terms,
        optimizer,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        lr=lambda s: lr_at(s, total_steps, config.learning_rate, warmup, config.lr_schedule),
        state=state,
        scaler=prec.grad_scaler(),
        after_step=(lambda: average.update_parameters(model)) if average is not None else None,
        save=checkpoint,
        save_every=config.save_every,
        callbacks=callbacks,
        should_stop=should_stop,
        progress=progress and rank == 0,
        desc=config.method,
    )
    result_model = average.module if average is not None else model
    result_model.eval()
    return TrainResult(
        model=result_model,
        config=config,
        history=state.history,
        checkpoint=path,
        stopped_early=stopped,
        seconds=time.perf_counter() - t0,
        precision=prec.name,
    )
