"""Notebook 05's slider: seconds from a slider move to new figures, fast mode vs full mode.

    OMP_NUM_THREADS=1 python benchmarks/bench_retrain.py [--checkpoint PATH] [--train 1000]
        [--test 500] [--views 4] [--epochs 8] [--moves 4] [--projection tsne] [--points 300]

A quick check that it runs: ``--train 200 --test 50 --views 2 --epochs 1 --moves 1
--projection none --points 50`` (fewer training images than classes + the projection's
dimensions, 10 + 128 for the shipped model, leave the Gaussians' covariance singular).

The model: ``--checkpoint``, else the shipped ``mcl`` checkpoint, else a ``tiny`` MCL run
trained here. The data: CIFAR-10 subsets ($MCLVIZ_DATA), Tiny ImageNet (resize) and
Gaussian noise as OOD sets, as notebook 05 loads them.

Prints, measured side by side in one run:
  (1) the feature cache build (once per notebook session);
  (2) fast mode: the median over ``--moves`` alpha slider moves of a ``RetrainPanel``
      (retrain the head, rescore, recompute the projection and the score figure), split
      into retraining + scoring and drawing; target: under 10 s;
  (3) full mode: one epoch of the whole network on the same images (``retrain_full``),
      and the ratio full epoch / fast slider move.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="model to freeze (default: shipped mcl)")
    ap.add_argument("--train", type=int, default=1000, help="training images cached")
    ap.add_argument("--test", type=int, default=500, help="test and OOD images")
    ap.add_argument("--views", type=int, default=4, help="augmented views per image")
    ap.add_argument("--epochs", type=int, default=8, help="head epochs per slider move")
    ap.add_argument("--moves", type=int, default=4, help="slider moves measured")
    ap.add_argument("--projection", default="tsne", choices=("tsne", "umap", "none"))
    ap.add_argument("--points", type=int, default=300, help="points in the projection")
    args = ap.parse_args()

    from mclviz.checkpoint import load
    from mclviz.evaluation import load_eval_data, retrain_full
    from mclviz.widgets import RetrainPanel
    from mclviz.zoo import load_or_train

    t0 = time.perf_counter()
    if args.checkpoint:
        ck = load(args.checkpoint)
    else:
        ck = load_or_train("mcl", preset="tiny", out="runs/bench-retrain-tiny", progress=False)
    print(
        f"model: {ck.config.method} {ck.config.arch} x {ck.config.width} "
        f"(feat {ck.model.feat_dim}, proj {ck.config.proj_dim}) from {ck.path} "
        f"[{time.perf_counter() - t0:.1f} s]"
    )
    print(
        f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    data = load_eval_data(
        ck.config.dataset,
        ood=("tinyimagenet-resize", "gaussian"),
        train_subset=args.train,
        test_subset=args.test,
    )

    t0 = time.perf_counter()
    panel = RetrainPanel.from_data(
        ck.model,
        data,
        config=ck.config.replace(epochs=1, precision="fp32"),
        views=args.views,
        fast_epochs=args.epochs,
        projection=args.projection,
        sample=args.points,
        method="mcl" if ck.config.method == "mcl" else "mcl-noaux",
    )
    build = time.perf_counter() - t0
    print(f"\n(1) feature cache: {panel.cache}  -> {build:.1f} s (once)")

    panel.run()  # warm-up: first t-SNE / KDE / plotly imports
    moves, retrain = [], []
    alphas = [0.1, 0.5, 1.0, 2.0, 0.2, 0.8, 1.5, 3.0][: args.moves]
    for a in alphas:
        t = time.perf_counter()
        panel.alpha.value = a  # what a slider move does: retrain, rescore, redraw
        moves.append(time.perf_counter() - t)
        r = panel.result
        retrain.append(r.seconds["train"] + r.seconds["score"])
        print(
            f"    alpha={a:<4g} {moves[-1]:5.1f} s  ({retrain[-1]:.1f} s retrain + score)  "
            f"acc {100 * r.accuracy:.1f}%  AUROC "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in r.auroc.items())
        )
    fast = statistics.median(moves)
    fast_retrain = statistics.median(retrain)
    verdict = "meets" if fast < 10 else "MISSES"
    print(
        f"(2) fast mode slider move: median {fast:.1f} s = {fast_retrain:.1f} s retrain + "
        f"score + {fast - fast_retrain:.1f} s figures ({args.projection}, {args.points} "
        f"points); {verdict} the 10 s target"
    )

    t = time.perf_counter()
    cfg = ck.config.replace(epochs=1, alpha=0.5, precision="fp32")
    full = retrain_full(cfg, *data.train, test=data.test, ood=data.ood)
    full_s = time.perf_counter() - t
    print(
        f"(3) full mode, 1 epoch of the whole network on the same {args.train} images: "
        f"{full_s:.1f} s ({full.seconds['train']:.1f} s training)"
    )
    print(
        f"\nratio full epoch / fast slider move: {full_s / fast:.1f}x; "
        f"cache build / fast slider move: {build / fast:.1f}x"
    )


if __name__ == "__main__":
    main()
