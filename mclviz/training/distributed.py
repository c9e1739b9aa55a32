"""Multi-process data-parallel helpers (torchrun + torch.distributed).

Contrastive losses need the *global* batch: every view must see every other view as a
negative. Each process embeds its share of the batch, :func:`gather` concatenates the
shares of all processes in rank order (with gradients flowing back to each share), and
every process computes the same loss on the global batch. With DDP averaging the
parameter gradients over processes, the result equals a single-process step on the same
global batch: the backward of the autograd-aware all-gather sums the identical
per-process gradients (a factor ``world``), which DDP's average divides out.

Launch: ``torchrun --nproc_per_node=2 -m mclviz train ...`` (gloo on the CPU, nccl on GPUs).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["gather", "init_from_env", "is_distributed", "rank", "shutdown", "world_size"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(device: torch.device) -> bool:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Returns True when running distributed. The backend is nccl for CUDA, gloo otherwise.
    """
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return True


def shutdown() -> None:
    """Leave the process group cleanly: wait for every rank, then destroy the group.

    The barrier keeps a fast rank from closing its connections while a slower one is
    still inside a collective. Call it once training is over (``python -m mclviz train``
    does); a no-op outside a process group.
    """
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward all-reduces (sums) the gradient.

    Every process computes the same loss on the gathered batch and back-propagates its
    own copy, so the all-reduce sums ``world`` identical gradients for this process's
    share; DDP's gradient average divides that factor out again (module docstring).
    """

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        ctx.n = t.shape[0]
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        r = dist.get_rank()
        return grad[r * ctx.n : (r + 1) * ctx.n]


def gather(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` from every process along dim 0, in rank order.

    Differentiable for tensors that require grad (the backward all-reduces the gradient
    and keeps this process's slice); labels are gathered without autograd. Shares must
    have equal sizes. A no-op outside a process group.
    """
    if not is_distributed():
        return t
    if t.requires_grad:
        return _GatherWithGrad.apply(t)
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=0)
