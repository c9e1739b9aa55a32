"""The one-class CIFAR-10 table of Reiss & Hoshen: kNN before and after mean-shifted fine-tuning.

For each normal class: the kNN (k = 2) AUROC on the starting backbone, the AUROC after
mean-shifted fine-tuning (``mclviz.training.fine_tune``), and optionally an MCL
checkpoint's single-Gaussian Mahalanobis AUROC as a reference, side by side, with the
backbone named and the wall time.

The authors' recipe (``MSC_RECIPE``: lr 1e-5, no momentum, 20 epochs) is meant for
ImageNet ResNets at 224 pixels on a GPU. On a CPU, start from an mclviz checkpoint and use
subsets, e.g.::

    python -m mclviz train --method simclr --preset small --out runs/simclr-small
    python benchmarks/bench_one_class.py --pretrained runs/simclr-small/checkpoint.safetensors \\
        --train-subset 1000 --test-subset 2000 --epochs 5

With torchvision's ImageNet weights in the torch cache: ``--pretrained imagenet``
(``--arch tv-resnet18`` by default).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.config import Config  # noqa: E402
from mclviz.evaluation import one_class_table  # noqa: E402
from mclviz.training import MSC_RECIPE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", required=True, help="'imagenet' or a checkpoint path")
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--epochs", type=int, default=MSC_RECIPE["epochs"])
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--lr", type=float, default=MSC_RECIPE["msc_lr"])
    p.add_argument("--momentum", type=float, default=MSC_RECIPE["momentum"])
    p.add_argument("--batch-size", type=int, default=MSC_RECIPE["batch_size"])
    p.add_argument("--angular", type=float, default=0.0, help="msc_angular weight")
    p.add_argument("--arch", default="tv-resnet18", help="with --pretrained imagenet")
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mcl-checkpoint", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--csv", default=None, help="write the table here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = Config.preset(
        "paper",
        method="msc",
        normal_class=0,
        arch=args.arch,
        **{
            **MSC_RECIPE,
            "msc_lr": args.lr,
            "momentum": args.momentum,
            "batch_size": args.batch_size,
        },
        msc_angular=args.angular,
        precision=args.precision,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    df = one_class_table(
        [int(c) for c in args.classes.split(",")],
        pretrained=args.pretrained,
        epochs=args.epochs,
        data_root=args.data_root,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        mcl_checkpoint=args.mcl_checkpoint,
        config=config,
        progress=False,
    )
    seconds = time.perf_counter() - t0
    print(f"backbone: {df['backbone'].iloc[0]}")
    print(
        f"epochs {args.epochs}, lr {args.lr:g}, momentum {args.momentum:g}, batch "
        f"{args.batch_size}, train_subset {args.train_subset}, test images {df.attrs['n_test']}"
    )
    print(df.drop(columns="backbone").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"msc - knn_pretrained (mean AUROC): {df['msc'].iloc[-1] - df['knn_pretrained'].iloc[-1]:+.3f}"
    )
    print(f"{seconds:.0f} s")
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
