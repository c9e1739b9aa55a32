"""The learning-rate schedule and the weight average, shared by every training loop."""

from __future__ import annotations

import math

import torch

__all__ = ["WeightAverage", "lr_at"]


def lr_at(
    step: int, total_steps: int, base_lr: float, warmup_steps: int = 0, schedule: str = "cosine"
) -> float:
    """The learning rate of ``step``: optional linear warm-up, then cosine annealing to 0
    (the paper, without warm-up) or a linear decay to 0 (``schedule="linear"``, the fast
    records' shape) over the remaining steps."""
    if schedule not in ("cosine", "linear"):
        raise ValueError(f"schedule={schedule!r}: choose 'cosine' or 'linear'")
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return base_lr * (1.0 - t)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))


class WeightAverage(torch.optim.swa_utils.AveragedModel):
    """An exponential moving average of the weights and batch-norm statistics
    (``torch.optim.swa_utils.AveragedModel`` with an EMA update).

    ``decay_t = min(decay, (1 + t) / (10 + t))`` after t updates: the average forgets its
    random start quickly, then settles at ``decay`` (the usual warm-up of weight EMAs).
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay={decay!r} must lie in (0, 1), e.g. 0.99")

        def ema(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            if not averaged.is_floating_point():
                return current  # num_batches_tracked
            d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
            return averaged + (current - averaged) * (1.0 - d)

        super().__init__(model, avg_fn=ema, use_buffers=True)
