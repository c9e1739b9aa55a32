"""Slider moves of the OperatingPointExplorer: time per move beside the 0.3 s target.

The work (issue 17): a researcher drags the threshold slider of
:class:`mclviz.widgets.OperatingPointExplorer`; each move must update everything it shows
(the counts and rates, the histogram's threshold line and the two galleries) well within
0.3 s. A move is timed from ``explorer.slider.value = t`` until the observer returns,
which is when every output widget holds its new value (the updates are synchronous), in
this process, over 50 moves: random thresholds across the score range plus moves near
both ends where the galleries change. Printed: the median, the 90th percentile and the
slowest move, and the same for the counting alone (``explorer.metrics``), so the share of
the drawing is visible. The construction (sorting, thumbnails, nearest neighbours) is
timed once beside it; it is paid once per explorer, not per move.

Two inputs of 10,000 test + 10,000 OOD scores:

- ``random``: random scores with 5,000 random training embeddings (d = 128) and random
  images: the same sizes a full CIFAR-10 evaluation has;
- ``tiny model``: a ``tiny`` preset MCL model trained for this run (2 epochs on 256
  images, a temporary folder), scored by the evaluation pipeline on the 10,000 CIFAR-10
  test images and 10,000 Tiny ImageNet (resize) images (``--no-real`` skips it; it
  needs ``$MCLVIZ_DATA``).

Run: ``.venv/bin/python benchmarks/bench_operating_point.py`` (about a minute on 2 busy
cores, most of it embedding the real images).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.evaluation import DetectorScores, EvalData, Outputs, Scores  # noqa: E402
from mclviz.scoring import ClassGaussians  # noqa: E402
from mclviz.widgets import OperatingPointExplorer  # noqa: E402

TARGET = 0.3  # seconds per slider move


def random_scores(n_in: int, n_out: int, n_train: int, seed: int = 0) -> Scores:
    """Scores-like input of the given sizes: random scores, embeddings and images."""
    g = torch.Generator().manual_seed(seed)

    def images(n):
        return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)

    y_train, y_test = torch.arange(n_train) % 10, torch.arange(n_in) % 10
    data = EvalData((images(n_train), y_train), (images(n_in), y_test), {"noise": images(n_out)})
    tensors = {
        ("z", "train"): torch.randn(n_train, 1, 128, generator=g),
        ("z", "test"): torch.randn(n_in, 1, 128, generator=g),
        ("z", "ood:noise"): torch.randn(n_out, 1, 128, generator=g),
    }
    det = ClassGaussians(views=1)
    result = DetectorScores(
        det,
        torch.randn(n_in, generator=g) + 1.5,
        {"noise": torch.randn(n_out, generator=g)},
        torch.randint(0, 10, (n_in,), generator=g),
        {"noise": torch.randint(0, 10, (n_out,), generator=g)},
        0.9,
    )
    return Scores(Outputs.from_tensors(tensors, data), {det.key: result}, method="mcl")


def moves(ex: OperatingPointExplorer, n: int, seed: int = 0) -> list[float]:
    """n thresholds: random over the slider's range, a fifth near each end (the galleries
    change there), in a random order."""
    rng = np.random.default_rng(seed)
    lo, hi = ex.slider.min, ex.slider.max
    s_in, s_out = np.sort(ex.src.score_in), np.sort(ex.src.score_out)
    ends = [*rng.choice(s_in[:20], n // 5), *rng.choice(s_out[-20:], n // 5)]
    ts = [*ends, *rng.uniform(lo, hi, n - len(ends))]
    rng.shuffle(ts)
    return [float(t) for t in ts]


def report(name: str, build: float, ex: OperatingPointExplorer, n_moves: int) -> None:
    ts = moves(ex, n_moves)
    full, count, changed = [], [], 0
    for t in ts:
        before = (ex.gallery_ood.value, ex.gallery_in.value)
        c = time.perf_counter()
        ex.slider.value = t  # the observer redraws everything before this returns
        full.append(time.perf_counter() - c)
        changed += before != (ex.gallery_ood.value, ex.gallery_in.value)
    ex.slider.unobserve(ex._on_slider, names="value")  # the counting alone, no drawing
    for t in ts:
        ex.slider.value = t
        c = time.perf_counter()
        _ = ex.metrics
        count.append(time.perf_counter() - c)
    ex.slider.observe(ex._on_slider, names="value")
    preset = []
    for rate in [0.99, 0.95, 0.9] * 5:
        c = time.perf_counter()
        ex.set(tpr=rate)
        preset.append(time.perf_counter() - c)

    def row(label, xs):
        med, p90, worst = statistics.median(xs), float(np.quantile(xs, 0.9)), max(xs)
        return (
            f"  {label:<30} median {1e3 * med:7.2f} ms  p90 {1e3 * p90:7.2f} ms  "
            f"max {1e3 * worst:7.2f} ms  (target {1e3 * TARGET:.0f} ms: "
            f"{TARGET / med:,.0f}x under)"
        )

    n_in, n_out = len(ex.src.score_in), len(ex.src.score_out)
    print(f"{name}: {n_in:,} test + {n_out:,} OOD scores, {len(ex.src.z_train):,} training rows")
    print(f"  {'construction (once)':<30} {build:7.2f} s")
    print(row(f"slider move (x{len(full)})", full) + f", {changed} moves redrew a gallery")
    print(row("  counting alone (metrics)", count))
    print(row("set(tpr=...) (x15)", preset))


def real_scores(data_root: str | None, threads: int):
    from mclviz.evaluation import load_eval_data
    from mclviz.zoo import load_or_train

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ck = load_or_train(
            "mcl", use_shipped=False, preset="tiny", out=tmp, progress=False, data_root=data_root
        )
        train_s = time.perf_counter() - t
    data = load_eval_data(
        "cifar10", ood=["tinyimagenet-resize"], data_root=data_root, train_subset=5000
    )
    return ck, data, train_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="test and OOD scores (each)")
    ap.add_argument("--moves", type=int, default=50)
    ap.add_argument("--no-real", action="store_true", help="skip the tiny trained model")
    ap.add_argument("--data-root", default=None, help="default: $MCLVIZ_DATA")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the embedding")
    args = ap.parse_args()

    sc = random_scores(args.n, args.n, 5000)
    OperatingPointExplorer(random_scores(50, 50, 50, seed=1))  # warm-up: first-use imports
    t = time.perf_counter()
    ex = OperatingPointExplorer(sc)
    report("random", time.perf_counter() - t, ex, args.moves)

    if not args.no_real:
        from mclviz.evaluation import evaluate

        ck, data, train_s = real_scores(args.data_root, args.threads)
        t = time.perf_counter()
        _, scores = evaluate(
            ck, data=data, detectors=[ClassGaussians(views=1)], precision="fp32",
            progress=False, return_scores=True,
        )  # fmt: skip
        embed_s = time.perf_counter() - t
        print(
            f"(tiny model: trained in {train_s:.1f} s; embedded and scored "
            f"{len(data.train[1]) + len(data.test[1]) + args.n:,} images in {embed_s:.1f} s)"
        )
        t = time.perf_counter()
        ex = OperatingPointExplorer(scores)
        report("tiny model (mcl, tiny preset)", time.perf_counter() - t, ex, args.moves)


if __name__ == "__main__":
    main()
