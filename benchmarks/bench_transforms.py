"""Benchmark: batched SimCLRAugment vs torchvision.transforms.v2 applied image by image.

Augments 2048 views of 32x32 images (random uint8 content) with both, measured side by side in
one run, and sets the cost against one forward/backward of a CIFAR ResNet-18 (3x3 stem, no
max-pool; timed on a batch of ``--resnet-batch`` and scaled to 2048 images).

Run: ``python benchmarks/bench_transforms.py [--views 2048] [--repeats 5] [--resnet-batch 64]
[--threads N]`` (``--resnet-batch 0`` skips the ResNet). On a shared, busy machine ``--threads 1``
avoids OpenMP threads waiting on each other; compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision.transforms.v2 as T

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.transforms import SimCLRAugment  # noqa: E402


def _time(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time in ms per function; calls interleaved round-robin after one warm-up each,
    so load from other processes hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def _cifar_resnet18() -> torch.nn.Module:
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resnet-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.views, 3, 32, 32), dtype=torch.uint8, generator=g)
    ours = SimCLRAugment()  # the paper's family: strength 0.5, p_jitter 0.8, p_gray 0.2
    theirs = T.Compose(
        [
            T.RandomResizedCrop(32, scale=(0.08, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.ToDtype(torch.float32, scale=True),
        ]
    )

    ms = _time(
        {
            "ours": lambda: ours(x, generator=g),
            "theirs": lambda: torch.stack([theirs(img) for img in x]),
        },
        args.repeats,
    )
    ms_ours, ms_theirs = ms["ours"], ms["theirs"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {load:.1f}")
    print(f"SimCLRAugment (batched), {args.views} views 32x32:      {ms_ours:9.1f} ms")
    print(f"torchvision v2 per image, {args.views} views 32x32:     {ms_theirs:9.1f} ms")
    print(f"speed-up batched / per-image:                    {ms_theirs / ms_ours:9.1f}x")

    if args.resnet_batch > 0:
        model = _cifar_resnet18()
        xb = torch.rand(args.resnet_batch, 3, 32, 32)
        yb = torch.randint(0, 10, (args.resnet_batch,))

        def step() -> None:
            model.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(xb), yb).backward()

        ms_step = _time({"step": step}, 2)["step"] * args.views / args.resnet_batch
        print(f"CIFAR ResNet-18 fwd+bwd, scaled to {args.views} images:  {ms_step:9.1f} ms")
        print(
            f"augmentation / fwd+bwd:                          {100 * ms_ours / ms_step:9.1f} % (target < 15 %)"
        )


if __name__ == "__main__":
    main()
