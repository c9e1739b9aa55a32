"""The one optimisation loop: full training and the sliders' head-only mode both run it.

``optimize`` takes a function from the global step to that step's loss terms and does
the rest: the learning rate of the schedule, backward and optimizer step (through a
gradient scaler for fp16), a weight average, per-epoch means of the terms, progress
(tqdm.auto), callbacks, an early stop, periodic saves, and a clear error (after a last
save) when the loss stops being finite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

__all__ = ["Callback", "LoopState", "optimize"]

Callback = Callable[[dict[str, Any]], None]


@dataclass
class LoopState:
    """Where a run is: steps taken, one history row per finished epoch, and the running
    sums of the current epoch (saved in checkpoints so that a resumed run continues them)."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    partial: dict[str, Any] = field(default_factory=lambda: {"sums": {}, "count": 0})


def optimize(
    step_terms: Callable[[int], dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    steps_per_epoch: int,
    lr: Callable[[int], float],
    state: LoopState | None = None,
    scaler: torch.amp.GradScaler | None = None,
    after_step: Callable[[], None] | None = None,
    save: Callable[[int], None] | None = None,
    save_every: int = 0,
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> tuple[LoopState, bool]:
    """Run steps ``state.step .. total_steps - 1``; returns (state, stopped early).

    Args:
        step_terms: ``step -> {"loss": scalar with gradient, other terms}``; draws its
            batch and randomness from the step number, so a resumed run repeats them.
        optimizer: its param groups' ``lr`` is set to ``lr(step)`` before every step.
        total_steps, steps_per_epoch: the schedule's length and an epoch's.
        state: where to start (a resumed run's); default a new run.
        scaler: a ``GradScaler`` (enabled for fp16 only); default a disabled one.
        after_step: called after every optimizer step (a weight average's update).
        save: ``save(epochs_done)`` writes a checkpoint: every ``save_every`` steps, at
            every epoch end, on an early stop, and before raising on a non-finite loss.
        callbacks: called with ``{"kind": "step", step, epoch, lr, terms...}`` after every
            step and ``{"kind": "epoch", epoch, step, lr, mean terms...}`` after every epoch
            (a partial epoch when stopped early).
        should_stop: polled after every step; True stops the run (after a save).
        progress: a tqdm.auto bar with the running terms.
        desc: the bar's label.
    """
    state = state or LoopState()
    scaler = scaler or torch.amp.GradScaler("cpu", enabled=False)
    callbacks = list(callbacks)
    bar = tqdm(
        total=total_steps,
        initial=state.step,
        disable=not progress,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
    )
    stopped = False
    rate = lr(state.step) if state.step < total_steps else 0.0
    try:
        while state.step < total_steps and not stopped:
            step = state.step
            epoch = step // steps_per_epoch
            rate = lr(step)
            for group in optimizer.param_groups:
                group["lr"] = rate
            terms = step_terms(step)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                if save is not None:
                    save(epoch)
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {step} (lr={rate:.4g}); the last good "
                    "state is saved (when the run has a folder). Lower lr or use precision='fp32'."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if after_step is not None:
                after_step()
            state.step += 1
            row = {k: float(v.detach()) for k, v in terms.items()}
            sums = state.partial["sums"]
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v
            state.partial["count"] += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()}, refresh=False)
            for cb in callbacks:
                cb({"kind": "step", "step": state.step, "epoch": epoch, "lr": rate, **row})
            stopped = should_stop is not None and bool(should_stop())
            epoch_done = state.step % steps_per_epoch == 0
            if epoch_done or stopped:
                _end_epoch(state, epoch, rate, steps_per_epoch, callbacks, complete=epoch_done)
            if save is not None and (
                epoch_done or stopped or (save_every and state.step % save_every == 0)
            ):
                save(state.step // steps_per_epoch)
    finally:
        bar.close()
    return state, stopped


def _end_epoch(
    state: LoopState,
    epoch: int,
    rate: float,
    steps_per_epoch: int,
    callbacks: list[Callback],
    *,
    complete: bool,
) -> None:
    count = state.partial["count"]
    if not count:
        return
    row = {
        "epoch": epoch + 1 if complete else epoch + count / steps_per_epoch,
        "step": state.step,
        "lr": rate,
        **{k: v / count for k, v in state.partial["sums"].items()},
    }
    if complete:
        state.history.append(row)
        state.partial = {"sums": {}, "count": 0}
    for cb in callbacks:
        cb({"kind": "epoch", **row})
