"""End-to-end ``evaluate`` of the shipped ``mcl`` model: fp32 beside bf16, in one run.

The work (issue 5): embed 10,000 CIFAR-10 test images and 10,000 Tiny ImageNet (resize)
images in 8 SEI views, the training images (``--train-subset``, default 10,000) in 4
rotations for the Gaussians, then score every view and aggregation of both variants.
Target: under 90 s. Nothing is cached between the two runs (no ``cache_dir``), and the
data are decoded once before the clock starts (the decoded-image cache of
``mclviz.data``). The two runs are also compared number by number: the bf16 run is only
worth its speed if its accuracy and AUROC stay with fp32's.

Run: ``.venv/bin/python benchmarks/bench_evaluate.py`` (about 5 minutes on 2 quiet cores);
``--test-subset 2000`` for a quicker look, ``--train-subset 500 --test-subset 200`` to
check that it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.checkpoint import load  # noqa: E402
from mclviz.device import resolve_precision  # noqa: E402
from mclviz.evaluation import evaluate, load_eval_data  # noqa: E402
from mclviz.zoo import shipped_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped mcl checkpoint")
    ap.add_argument("--train-subset", type=int, default=10_000)
    ap.add_argument("--test-subset", type=int, default=None, help="default: all 10,000")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    path = args.checkpoint or shipped_checkpoint("mcl")
    if path is None:
        sys.exit("no shipped mcl checkpoint; pass --checkpoint PATH")
    ood = ["tinyimagenet-resize"]
    data = load_eval_data(
        "cifar10",
        ood=ood,
        data_root=args.data_root,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
    )
    load_avg = os.getloadavg()[0]
    runs = {}
    for precision in ("fp32", "bf16"):
        ck = load(path)  # a fresh model each time: nothing is shared between the runs
        t0, c0 = time.perf_counter(), time.process_time()
        table = evaluate(ck, data=data, ood=ood, sei=(1, 4, 8), precision=precision, progress=False)
        runs[precision] = (time.perf_counter() - t0, time.process_time() - c0, table)
    n_te, n_tr = len(data.test[1]), len(data.train[1])
    print(
        f"evaluate {Path(path).name}: {n_tr} train x 4 rotations, {n_te} test + "
        f"{len(data.ood[ood[0]])} OOD x 8 views, scoring 1/4/8 views x 3 aggregations x "
        f"2 variants ({torch.get_num_threads()} threads, load average {load_avg:.1f} at "
        "the start; bf16 resolves to "
        f"{resolve_precision('bf16', torch.device('cpu')).name} on the CPU)"
    )
    for precision, (wall, cpu, _) in runs.items():
        print(f"  {precision}: {wall:6.1f} s wall, {cpu:6.1f} s CPU   (target 90 s)")
    print(f"  bf16 / fp32 speed-up: {runs['fp32'][0] / runs['bf16'][0]:.2f}x")
    a = runs["fp32"][2].set_index(["key", "ood"])  # one row per detector and OOD set
    b = runs["bf16"][2].set_index(["key", "ood"])
    print("  accuracy and AUROC (%), fp32 -> bf16:")
    for idx in a.index:
        ra, rb = a.loc[idx], b.loc[idx]
        how = f"{ra['detector']} W={ra['ways']} {ra['aggregation']:5s} {ra['variant']:8s}"
        print(
            f"    {how}: acc {100 * ra['accuracy']:6.2f} -> {100 * rb['accuracy']:6.2f}   "
            f"AUROC {100 * ra['auroc']:6.2f} -> {100 * rb['auroc']:6.2f}"
        )
    d_acc = (a["accuracy"] - b["accuracy"]).abs().max()
    d_auc = (a["auroc"] - b["auroc"]).abs().max()
    print(
        f"  largest difference: accuracy {100 * d_acc:.2f} points, AUROC {100 * d_auc:.2f} points"
    )


if __name__ == "__main__":
    main()
