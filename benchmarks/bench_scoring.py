"""Speed and memory of Mahalanobis SEI scoring, side by side with a per-image loop.

The work: 20,000 test images x 8 SEI views, each view scored against the 10 class
Gaussians of its rotation (40 Gaussians in all, d = 128), then the w-avg aggregation.
The authors' code does this one image, one view and one Gaussian at a time with
``np.dot(np.dot(delta, inv_cov), delta)``; the loop below is written the same way, timed
on a subset and extrapolated. Then the peak memory (ru_maxrss) of scoring 1,000,000
embeddings against 10 Gaussians, measured in a fresh child process.

Run: ``python benchmarks/bench_scoring.py`` (``--loop-images 200`` for a quicker loop).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.scoring import aggregate, fit_sei_gaussians, gaussian_scores, sei_scores  # noqa: E402

N_TEST, WAYS, ROT, C, D = 20_000, 8, 4, 10, 128


def _train(n_per_class: int = 400, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(ROT, C, D, generator=gen)
    y = torch.arange(n_per_class * C) % C
    z = centres[:, y].transpose(0, 1) + 0.5 * torch.randn(len(y), ROT, D, generator=gen)
    return z, y  # (n, R, d), (n,)


def naive_loop(z_test: np.ndarray, mnd) -> tuple[list[int], list[float]]:
    """Per image, per view, per Gaussian, as the authors' SEI_single (+ their 'wa')."""
    preds, scores = [], []
    for views in z_test:  # (W, d), one image
        pred = []
        for m, f in enumerate(views):
            r = m % 4
            row = []
            for c in range(C):
                mean, inv = mnd[r * C + c]
                delta = f - mean
                row.append(math.sqrt(np.dot(np.dot(delta, inv), delta)))
            pred.append(row)
        temp = []
        for c in range(C):
            num = [1 / pred[m][c] for m in range(len(views))]
            temp.append(sum(n_ * pred[m][c] for m, n_ in enumerate(num)) / sum(num))
        preds.append(temp.index(min(temp)))
        scores.append(-min(temp))
    return preds, scores


def bench_speed(loop_images: int, threads: list[int]) -> dict:
    ztr, ytr = _train()
    gs = fit_sei_gaussians(ztr, ytr)
    gen = torch.Generator().manual_seed(1)
    z_test = torch.randn(N_TEST, WAYS, D, generator=gen)  # float32, as embed() returns

    # the naive loop, on normalised float64 numpy rows (their features are numpy too)
    zn = torch.nn.functional.normalize(z_test[:loop_images].double(), dim=-1).numpy()
    mnd = [
        (g.means[c].numpy(), torch.linalg.inv(g.covariances[c]).numpy())
        for g in gs
        for c in range(C)
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    loop_pred, loop_score = naive_loop(zn, mnd)
    t_loop_subset = time.perf_counter() - t0
    cpu_loop = (time.process_time() - c0) * N_TEST / loop_images
    t_loop = t_loop_subset * N_TEST / loop_images

    times, cpu = {}, {}
    for nt in threads:
        torch.set_num_threads(nt)
        times[nt], cpu[nt] = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            pred, score = aggregate(sei_scores(z_test, gs), "w-avg", "official")
            times[nt].append(time.perf_counter() - t0)
            cpu[nt].append(time.process_time() - c0)
    best = min(min(t) for t in times.values())
    agree = np.mean(pred[:loop_images].numpy() == np.array(loop_pred))
    err = np.max(np.abs(score[:loop_images].double().numpy() - np.array(loop_score)))
    return {
        "loop_images": loop_images,
        "loop_subset_s": t_loop_subset,
        "loop_extrapolated_s": t_loop,
        "vectorised_s": times,
        "vectorised_s_best": best,
        "ratio": t_loop / best,
        "loop_cpu_s": cpu_loop,
        "vectorised_cpu_s": {nt: min(c) for nt, c in cpu.items()},
        "pred_agreement_on_subset": float(agree),
        "max_abs_score_diff_on_subset": float(err),
    }


def memory_child(n: int) -> None:
    """Run in a fresh process: peak RSS of scoring n x 128 embeddings against 10 Gaussians."""
    ztr, ytr = _train()
    g = fit_sei_gaussians(ztr[:, :1], ytr)[0]
    z = torch.randn(n, D, generator=torch.Generator().manual_seed(2))  # 512 MB at n = 1e6
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    s = gaussian_scores(z, g)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "n": n,
                "kib_before": before,
                "kib_peak": peak,
                "seconds": dt,
                "out_shape": list(s.shape),
            }
        )
    )


def bench_memory(n: int, threads: int) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n), "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--loop-images",
        type=int,
        default=500,
        help="images the naive loop runs on before extrapolating to 20,000",
    )
    ap.add_argument("--memory-n", type=int, default=1_000_000)
    ap.add_argument("--threads", default="2,1", help="torch thread counts to time, e.g. 2,1")
    ap.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        torch.set_num_threads(int(args.threads.split(",")[0]))
        memory_child(args.memory_child)
        return

    threads = [int(t) for t in args.threads.split(",")]
    load = os.getloadavg()[0]
    sp = bench_speed(args.loop_images, threads)
    print(
        f"SEI scoring, {N_TEST} images x {WAYS} views, {ROT * C} Gaussians, d={D} "
        f"({os.cpu_count()} CPUs, load average {load:.1f} at the start)"
    )
    print(
        f"  per-image loop : {sp['loop_subset_s']:.2f} s on {sp['loop_images']} images "
        f"-> {sp['loop_extrapolated_s']:.1f} s extrapolated to {N_TEST}"
    )
    for nt, ts in sp["vectorised_s"].items():
        print(
            f"  vectorised     : {min(ts):.3f} s best of 3 with {nt} thread(s) "
            f"(runs: {', '.join(f'{t:.3f}' for t in ts)}; CPU time "
            f"{sp['vectorised_cpu_s'][nt]:.3f} s)"
        )
    c1 = sp["vectorised_cpu_s"].get(1)
    if c1:
        print(
            f"  CPU time, one thread each (insensitive to other jobs on the machine): loop "
            f"{sp['loop_cpu_s']:.1f} s vs vectorised {c1:.3f} s = {sp['loop_cpu_s'] / c1:.0f}x"
        )
    print(f"  speed-up       : {sp['ratio']:.0f}x")
    print(
        f"  same predictions on the subset: {sp['pred_agreement_on_subset']:.1%}, "
        f"max |score diff| {sp['max_abs_score_diff_on_subset']:.2e} (float32 vs float64)"
    )

    mem = bench_memory(args.memory_n, threads[0])
    to_mib = 1 / 1024
    print(
        f"gaussian_scores on {mem['n']:,} x {D} against {C} Gaussians "
        f"(child process, {threads[0]} thread(s)):"
    )
    print(
        f"  {mem['seconds']:.2f} s; peak RSS {mem['kib_peak'] * to_mib:.0f} MiB "
        f"(input and fit alone {mem['kib_before'] * to_mib:.0f} MiB; "
        f"+{(mem['kib_peak'] - mem['kib_before']) * to_mib:.0f} MiB for scoring, "
        f"of which the (n, C) float32 result is {mem['n'] * C * 4 / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
