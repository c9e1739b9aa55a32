"""One training loop for every method of the paper's comparison.

``train(config)`` loads the data the config names, builds the model, and runs SGD with
the paper's cosine schedule, checkpointing atomically to ``out/checkpoint.safetensors``
every ``config.save_every`` steps and at every epoch end. ``resume=True`` continues from
that file and reaches the same weights as an uninterrupted run with the same seed (on
the CPU), because every random draw is a pure function of ``(seed, epoch, step)``:

* the epoch's image order: ``randperm`` seeded by ``(seed, epoch)``;
* the step's augmentations and SPA positives: a generator seeded by ``(seed, step)``.

Batch layout per method (``batch_size`` counts images):

* contrastive (``simclr``, ``supclr``, ``ccm``, ``mcl-noaux``): 2 views per image, rows
  2k / 2k+1 are the views of image k;
* ``mcl``: every image in its 4 rotations, each with 2 independently augmented views
  (8 views per image), labelled (class, rotation) for Eq. 11. The flip and crop are
  applied in the image's own frame *before* rotating, so the rotation label stays true
  (a horizontal flip after a 90-degree rotation would be a 270-degree rotation of the
  flipped image; the authors' code flips rotated images vertically for the same reason);
* ``ce``: one lightly augmented view per image (crop scale 0.5-1 and flip, no colour);
* ``rot``: ``ce`` on the upright view plus a 4-way rotation head on all 4 rotations
  (Hendrycks et al. 2019), weight ``rot_weight``;
* ``msc``: 2 views per image of one class, backbone features, mean-shifted loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed as dist_utils
from . import losses
from .checkpoint import build_model_from_config, load, save
from .config import Config
from .data import load_images, one_class, open_set_split
from .device import Precision, resolve_device, resolve_precision
from .models import MCLModel
from .transforms import SimCLRAugment, rotate, two_views

__all__ = ["TrainResult", "prepare_data", "train", "lr_at"]

CHECKPOINT_NAME = "checkpoint.safetensors"
Callback = Callable[[dict[str, Any]], None]


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


def lr_at(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0) -> float:
    """Cosine annealing to 0 over ``total_steps`` (paper: no warm-up), optional linear warm-up."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _seed(*parts: int) -> int:
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


def prepare_data(config: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images and labels the config asks for (subset / open-set / one-class)."""
    images, labels = load_images(config.dataset, "train", root=config.data_root)
    if config.known_classes:
        keep, relabel = open_set_split(labels, known=tuple(config.known_classes))
        images, labels = images[keep], relabel[keep]
    if config.normal_class is not None:
        keep = one_class(labels, normal=config.normal_class)
        if not bool(keep.any()):
            raise ValueError(f"normal_class={config.normal_class} has no training images")
        images, labels = images[keep], torch.zeros(int(keep.sum()), dtype=torch.long)
    if config.train_subset is not None and config.train_subset < len(labels):
        g = torch.Generator().manual_seed(_seed(config.seed, 7919))
        idx = torch.randperm(len(labels), generator=g)[: config.train_subset].sort().values
        images, labels = images[idx], labels[idx]
    return images, labels


class _Stepper:
    """Computes one method's loss terms for a batch of uint8 images."""

    def __init__(
        self, config: Config, model: MCLModel, precision: Precision, center: torch.Tensor | None
    ) -> None:
        self.cfg, self.model, self.prec, self.center = config, model, precision, center
        self.contrastive_aug = SimCLRAugment(
            size=32, scale=(config.crop_scale_min, 1.0), strength=config.jitter_strength
        )
        self.light_aug = SimCLRAugment(size=32, scale=(0.5, 1.0), p_jitter=0.0, p_gray=0.0)

    def _embed(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        x = self.prec.prepare(x)
        with self.prec.autocast():
            out = self.model(x, output="features" if features else "z")
        return out.float()

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, spa_gen: torch.Generator
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        m = cfg.method
        if m in ("ce", "rot"):
            view = self.light_aug(x, generator=gen)  # (n, 3, 32, 32)
            if m == "ce":
                with self.prec.autocast():
                    logits = self.model(self.prec.prepare(view), output="logits").float()
                loss = F.cross_entropy(logits, y)
                return {"loss": loss, "ce": loss.detach()}
            n = len(view)
            k = torch.arange(4, device=x.device).repeat_interleave(n)  # (4n,) rotation labels
            views4 = rotate(view.repeat(4, 1, 1, 1), k)  # (4n, 3, 32, 32), blocks by rotation
            with self.prec.autocast():
                logits, rot_logits = self.model(self.prec.prepare(views4), output="rot")
                logits, rot_logits = logits[:n].float(), rot_logits.float()
            ce, rl = F.cross_entropy(logits, y), F.cross_entropy(rot_logits, k)
            loss = ce + cfg.rot_weight * rl
            return {"loss": loss, "ce": ce.detach(), "rot": rl.detach()}
        if m == "mcl":
            n = len(x)
            k = torch.arange(4, device=x.device).repeat_interleave(2 * n)  # (8n,)
            views = two_views(x.repeat(4, 1, 1, 1), self.contrastive_aug, generator=gen)
            views = rotate(views, k)  # augment in the image's frame, then rotate
            yv, y_aux = y.repeat_interleave(2).repeat(4), k
        else:
            views = two_views(x, self.contrastive_aug, generator=gen)  # (2n, 3, 32, 32)
            yv, y_aux = y.repeat_interleave(2), None
        z = self._embed(views, features=(m == "msc"))
        z, yv = dist_utils.gather(z), dist_utils.gather(yv)
        if y_aux is not None:
            y_aux = dist_utils.gather(y_aux)
        if m == "simclr":
            loss = losses.nt_xent(z, tau=cfg.tau)
            return {"loss": loss}
        if m == "supclr":
            return {"loss": losses.supcon(z, yv, tau=cfg.tau)}
        if m == "ccm":
            loss = losses.ccm(
                z, yv, None, tau=cfg.tau, alpha=cfg.alpha, beta=cfg.beta, variant=cfg.variant
            )
            return {"loss": loss}
        if m in ("mcl", "mcl-noaux"):
            terms = losses.mcl_terms(
                z,
                yv,
                y_aux,
                tau=cfg.tau,
                alpha=cfg.alpha,
                beta=cfg.beta,
                lam=cfg.lam,
                mode=cfg.spa_mode,
                generator=spa_gen,
                variant=cfg.variant,
            )
            return {
                "loss": terms["loss"],
                "ccm": terms["ccm"].detach(),
                "spa": terms["spa"].detach(),
            }
        if m == "msc":
            # z: (2n, feat_dim) backbone features f(x) of the two views (no projection head,
            # as Reiss & Hoshen); batch norm runs in eval mode (``_freeze_bn``).
            center = self.center.to(device=z.device, dtype=z.dtype)  # (feat_dim,)
            loss = losses.mean_shifted(z, center, tau=cfg.msc_tau)
            out = {"loss": loss, "msc": loss.detach()}
            if cfg.msc_angular:
                # -mean cos(z_i, c). The authors' ``--angular`` adds sum over the two views of
                # mean ||z_i/|z_i| - c/|c| ||^2 = 4 + 4 * angular_center: msc_angular=4 gives
                # their gradient (they also shift by the normalised center in that mode).
                ang = losses.angular_center(z, center)
                out["loss"] = loss + cfg.msc_angular * ang
                out["angular"] = ang.detach()
            return out
        raise ValueError(f"method={m!r} has no training step")


def _freeze_bn(model: torch.nn.Module) -> None:
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.eval()


def _msc_start(
    config: Config, model: MCLModel, images: torch.Tensor, device: torch.device, prec: Precision
) -> torch.Tensor:
    """Load the starting backbone for mean-shifted fine-tuning; return the feature center.

    Reiss & Hoshen's recipe (their released code): the features are the backbone output
    ``f(x)`` (no projection head), L2-normalised; the center is the mean of the normalised
    features of the un-augmented normal training images, not renormalised, computed once
    before fine-tuning with the starting weights (in float32, batch norm in eval mode).

    ``config.pretrained``:

    * ``"imagenet"``: torchvision's ImageNet weights from the torch hub cache (never
      downloaded); ``config.arch`` must be a torchvision arch (``"tv-resnet18"``...).
    * a checkpoint path: its backbone weights; ``arch``, ``width`` and ``normalize_input``
      must match the checkpoint's (``mclviz.one_class.fine_tune`` copies them).
    * None: the random initialisation (an ablation; the method assumes a pretrained
      backbone).
    """
    from .models import TV_ARCHS

    if config.pretrained == "imagenet":
        if config.arch not in TV_ARCHS:
            raise ValueError(
                f"pretrained='imagenet' needs a torchvision arch, but arch={config.arch!r}; "
                f"set arch to one of {sorted(TV_ARCHS)} (and width=1.0)"
            )
        from .one_class import load_imagenet_backbone

        load_imagenet_backbone(model)
    elif config.pretrained:
        src = load(config.pretrained).model
        fields = ("arch", "width", "normalize_input")
        diff = {
            f: (getattr(src, f), getattr(model, f))
            for f in fields
            if getattr(src, f) != getattr(model, f)
        }
        if diff:
            have = ", ".join(f"{f}={a!r} (config: {b!r})" for f, (a, b) in diff.items())
            raise ValueError(
                f"pretrained={config.pretrained!r} holds a backbone with {have}; set those "
                "config fields to the checkpoint's values (mclviz.one_class.fine_tune does it)"
            )
        model.backbone.load_state_dict(src.backbone.state_dict())
    from .embed import embed

    # large inputs (torchvision archs resize to 224) take smaller batches
    side = getattr(model, "image_size", images.shape[-1])
    batch = max(16, 512 * images.shape[-1] ** 2 // side**2)
    feats = embed(
        model, images, output="features", batch_size=batch, progress=False, amp=False
    )  # (N, 1, feat_dim), eval mode, float32
    return F.normalize(feats[:, 0], dim=1).mean(0)  # (feat_dim,)


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
    device = resolve_device(config.device)
    distributed = dist_utils.init_from_env(device)
    rank, world = dist_utils.rank(), dist_utils.world_size()
    prec = resolve_precision(config.precision, device, config.channels_last)
    images, labels = data if data is not None else prepare_data(config)
    if config.method in ("ce", "rot"):
        n_cls = int(labels.max()) + 1
        config = config.replace(extra={**config.extra, "num_classes": n_cls})
    torch.manual_seed(config.seed)
    model = build_model_from_config(config).to(device)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    center = None
    if config.method == "msc":
        center = _msc_start(config, model, images, device, prec)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    n = len(labels)
    batch = min(config.batch_size, n)
    if batch % world:
        raise ValueError(f"batch_size={batch} must be divisible by the {world} processes")
    steps_per_epoch = max(1, n // batch)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    history: list[dict[str, float]] = []
    step = 0
    partial: dict[str, Any] = {"sums": {}, "count": 0}  # running sums of the current epoch
    seconds_before = 0.0  # training wall time of earlier sessions of a resumed run
    path = Path(out) / CHECKPOINT_NAME if out is not None else None
    if resume and path is not None and path.exists():
        ck = load(path, device=device)
        if ck.config.to_dict() != config.to_dict():
            diff = {
                k: (v, config.to_dict()[k])
                for k, v in ck.config.to_dict().items()
                if config.to_dict()[k] != v
            }
            raise ValueError(
                f"cannot resume {path}: its config differs in {diff}; "
                "resume with the same config or start a new --out folder"
            )
        model.load_state_dict(ck.model.state_dict())
        if ck.optimizer_state is not None:
            optimizer.load_state_dict(ck.optimizer_state)
        step = ck.step
        history = list(ck.metrics.get("history", []))
        partial = ck.metrics.get("partial", partial)
        seconds_before = float(ck.metrics.get("seconds", 0.0))
        if config.method == "msc" and "center" in ck.metrics:
            center = torch.tensor(ck.metrics["center"])
    ddp_model: torch.nn.Module = model
    if distributed:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # heads a method does not use (the projection head of ce / rot / msc) get no grad
            find_unused_parameters=config.method in ("ce", "rot", "msc"),
        )
    stepper = _Stepper(config, model, prec, center)
    if distributed:
        stepper.model = ddp_model  # forward through DDP so gradients are all-reduced
    scaler = prec.grad_scaler()

    def metrics() -> dict[str, Any]:
        m: dict[str, Any] = {
            "history": history,
            "partial": partial,
            "precision": prec.name,
            "device": str(device),
            "world_size": world,
            "seconds": seconds_before + time.perf_counter() - t0,
        }
        if center is not None:
            m["center"] = center.tolist()
        return m

    def checkpoint(epoch_done: int) -> None:
        if path is not None and rank == 0:
            save(
                path,
                model,
                config,
                epoch=epoch_done,
                step=step,
                optimizer=optimizer,
                scheduler_state={
                    "name": "cosine",
                    "total_steps": total_steps,
                    "warmup_steps": warmup,
                    "base_lr": config.learning_rate,
                },
                metrics=metrics(),
            )

    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not progress or rank != 0,
        desc=f"{config.method}",
        unit="step",
        dynamic_ncols=True,
    )
    stopped = False
    model.train()
    if config.method == "msc":
        _freeze_bn(model)
    while step < total_steps and not stopped:
        epoch = step // steps_per_epoch
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(_seed(config.seed, epoch))
        )
        sums: dict[str, float] = partial["sums"]
        count = partial["count"]
        for i in range(step % steps_per_epoch, steps_per_epoch):
            idx = order[i * batch : (i + 1) * batch]
            share = batch // world
            idx = idx[rank * share : (rank + 1) * share]
            x, y = images[idx].to(device), labels[idx].to(device)
            gen = torch.Generator(device=device).manual_seed(_seed(config.seed, step, rank, 1))
            spa_gen = torch.Generator(device=device).manual_seed(_seed(config.seed, step, 2))
            lr = lr_at(step, total_steps, config.learning_rate, warmup)
            for g in optimizer.param_groups:
                g["lr"] = lr
            terms = stepper(x, y, gen, spa_gen)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                checkpoint(epoch)
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {step} (lr={lr:.4g}); the last good "
                    f"state is in {path}. Lower lr or use precision='fp32'."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            count += 1
            row = {k: float(v.detach()) for k, v in terms.items()}
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v
            partial["count"] = count
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()}, refresh=False)
            event = {"kind": "step", "step": step, "epoch": epoch, "lr": lr, **row}
            for cb in callbacks:
                cb(event)
            if should_stop is not None and should_stop():
                stopped = True
                break
            if config.save_every and step % config.save_every == 0:
                checkpoint(epoch)
        if count:
            ep_row = {
                "epoch": epoch + 1 if not stopped else epoch + count / steps_per_epoch,
                "step": step,
                "lr": lr,
                **{k: v / count for k, v in sums.items()},
            }
            if step % steps_per_epoch == 0:
                history.append(ep_row)
                partial = {"sums": {}, "count": 0}
            for cb in callbacks:
                cb({"kind": "epoch", **ep_row})
        checkpoint(step // steps_per_epoch)
    bar.close()
    model.eval()
    return TrainResult(
        model=model,
        config=config,
        history=history,
        checkpoint=path,
        stopped_early=stopped,
        seconds=time.perf_counter() - t0,
        precision=prec.name,
    )
