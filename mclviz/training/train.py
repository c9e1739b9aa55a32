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


class _Run:
    """One training run's state: the model, its optimizer and weight average, the schedule,
    the step function and the checkpoint writer (``train`` wires them into ``optimize``)."""

    def __init__(self, config: Config, data, out, resume: bool) -> None:
        self.t0 = time.perf_counter()
        self.entry = config.method_entry
        self.device = device = resolve_device(config.device)
        self.distributed = dist_utils.init_from_env(device)
        self.rank, self.world = dist_utils.rank(), dist_utils.world_size()
        self.prec = resolve_precision(config.precision, device, config.channels_last)
        self.images, self.labels = data if data is not None else prepare_data(config)
        if self.entry.needs_classifier(config) and config.num_classes is None:
            config = config.replace(num_classes=int(self.labels.max()) + 1)
        self.config = config
        self.model = _build(config, self.images, device, self.prec)
        self.optimizer = torch.optim.SGD(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay else None
        self._schedule(len(self.labels))
        self.path = Path(out) / CHECKPOINT_NAME if out is not None else None
        if resume and self.path is not None and self.path.exists():
            start = _Resumed.read(
                self.path, config, self.model, self.optimizer, self.average, device
            )
        else:
            start = _Resumed()
        self.state, self.seconds_before = start.state, start.seconds
        self.context = methods.StepContext(config, state=start.method_state)
        if self.entry.setup is not None and not self.context.state:
            self.context.state.update(
                self.entry.setup(config, self.model, self.images, device, self.prec)
            )
        self.net: torch.nn.Module = self.model
        if self.distributed:  # forward through DDP so that gradients are all-reduced
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=_unused_heads(self.entry, config),
            )
        self.augment = methods.Augmenters(config)
        self.backbone = describe_pretrained(config)
        self._orders: dict[int, torch.Tensor] = {}

    def _schedule(self, n: int) -> None:
        cfg = self.config
        self.n, self.batch = n, min(cfg.batch_size, n)
        if self.batch % self.world:
            raise ValueError(
                f"batch_size={self.batch} must be divisible by the {self.world} processes"
            )
        self.steps_per_epoch = max(1, n // self.batch)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))

    def lr(self, step: int) -> float:
        c = self.config
        return lr_at(step, self.total_steps, c.learning_rate, self.warmup, c.lr_schedule)

    def forward(self, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        with self.prec.autocast():
            outputs = self.net(self.prec.prepare(x), output=names)
        return {k: v.float() for k, v in outputs.items()}

    def step_terms(self, step: int) -> dict[str, torch.Tensor]:
        """The loss terms of global step ``step`` (its batch and draws depend on it alone)."""
        cfg, dev = self.config, self.device
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch not in self._orders:
            self._orders.clear()
            g = torch.Generator().manual_seed(seed_of(cfg.seed, epoch))
            self._orders[epoch] = torch.randperm(self.n, generator=g)
        share = self.batch // self.world
        idx = self._orders[epoch][i * self.batch : (i + 1) * self.batch]
        idx = idx[self.rank * share : (self.rank + 1) * share]
        x, y = self.images[idx].to(dev), self.labels[idx].to(dev)
        gen = torch.Generator(device=dev).manual_seed(seed_of(cfg.seed, step, self.rank, 1))
        self.context.generator = torch.Generator(device=dev).manual_seed(seed_of(cfg.seed, step, 2))
        views = self.entry.make_views(x, y, self.augment, cfg, gen)
        gather = _gather if self.distributed else None
        return methods.step(self.entry, self.forward, views, self.context, gather)

    def after_step(self) -> None:
        if self.average is not None:
            self.average.update_parameters(self.model)

    def metrics(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "history": self.state.history,
            "partial": self.state.partial,
            "precision": self.prec.name,
            "device": str(self.device),
            "world_size": self.world,
            "seconds": self.seconds_before + time.perf_counter() - self.t0,
        }
        if self.average is not None:
            m["ema_updates"] = int(self.average.n_averaged)
        if self.config.pretrained:
            m["backbone"] = self.backbone
        m.update({k: v.tolist() for k, v in self.context.state.items()})
        return m

    def save(self, epochs_done: int) -> None:
        if self.path is None or self.rank != 0:
            return
        save(
            self.path,
            self.average.module if self.average is not None else self.model,
            self.config,
            epoch=epochs_done,
            step=self.state.step,
            optimizer=self.optimizer,
            live=self.model if self.average is not None else None,
            scheduler_state={
                "name": self.config.lr_schedule,
                "total_steps": self.total_steps,
                "warmup_steps": self.warmup,
                "base_lr": self.config.learning_rate,
            },
            metrics=self.metrics(),
        )

    def trained_model(self) -> MCLModel:
        model = self.average.module if self.average is not None else self.model
        return model.eval()


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
    run = _Run(config, data, out, resume)
    run.model.train()
    if run.entry.freeze_bn:
        freeze_batch_norm(run.model)
    run.state, stopped = optimize(
        run.step_terms,
        run.optimizer,
        total_steps=run.total_steps,
        steps_per_epoch=run.steps_per_epoch,
        lr=run.lr,
        state=run.state,
        scaler=run.prec.grad_scaler(),
        after_step=run.after_step,
        save=run.save,
        save_every=run.config.save_every,
        callbacks=callbacks,
        should_stop=should_stop,
        progress=progress and run.rank == 0,
        desc=run.config.method,
    )
    return TrainResult(
        model=run.trained_model(),
        config=run.config,
        history=run.state.history,
        checkpoint=run.path,
        stopped_early=stopped,
        seconds=time.perf_counter() - run.t0,
        precision=run.prec.name,
    )
