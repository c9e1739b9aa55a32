"""Benchmark of the contrastive losses (forward + backward), run on demand.

    .venv/bin/python benchmarks/bench_losses.py [--n2 2048] [--dim 128] [--repeats 15]

Times ``nt_xent`` and ``mcl`` (with ``y_aux``, sample and expected SPA modes) side by side in
one run: the calls are interleaved round-robin, so load from other processes hits all of them
alike, and the median over the repeats is reported with the ratio to ``nt_xent``.
Target (brief): ``mcl`` with ``y_aux`` at 2N = 2048, d = 128 under 60 ms on 2 CPU cores and
within 2x of ``nt_xent``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.losses import ccm, mcl, nt_xent, spa, supcon  # noqa: E402


def _step(loss_fn: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor) -> tuple[float, float]:
    """One forward + backward: (wall seconds, process CPU seconds)."""
    z = z0.detach().clone().requires_grad_(True)
    wall, cpu = time.perf_counter(), time.process_time()
    loss_fn(z).backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n2", type=int, default=2048, help="batch rows 2N (even)")
    parser.add_argument("--dim", type=int, default=128, help="feature dimension d")
    parser.add_argument("--classes", type=int, default=10, help="number of main labels")
    parser.add_argument("--aux", type=int, default=4, help="number of auxiliary labels")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per loss")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    n_img = args.n2 // 2
    z0 = torch.randn(args.n2, args.dim, generator=g)
    y = torch.randint(0, args.classes, (n_img,), generator=g).repeat_interleave(2)  # (2N,)
    y_aux = torch.randint(0, args.aux, (n_img,), generator=g).repeat_interleave(2)  # rotation

    cases: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "nt_xent": lambda z: nt_xent(z),
        "supcon": lambda z: supcon(z, y),
        "ccm (y_aux)": lambda z: ccm(z, y, y_aux),
        "spa sample (y_aux)": lambda z: spa(z, y, y_aux, generator=g),
        "mcl sample (y_aux)": lambda z: mcl(z, y, y_aux, generator=g),
        "mcl expected (y_aux)": lambda z: mcl(z, y, y_aux, mode="expected"),
        "mcl sample, official": lambda z: mcl(z, y, y_aux, generator=g, variant="official"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(2):  # warm-up
        for fn in cases.values():
            _step(fn, z0)
    for _ in range(args.repeats):
        for name, fn in cases.items():
            wall, used = _step(fn, z0)
            times[name].append(wall)
            cpu[name].append(used)

    med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    best = {name: min(ts) * 1e3 for name, ts in times.items()}
    used = {name: statistics.median(ts) * 1e3 for name, ts in cpu.items()}
    print(
        f"2N={args.n2} d={args.dim} classes={args.classes} aux={args.aux} "
        f"threads={torch.get_num_threads()} repeats={args.repeats} (forward + backward)"
    )
    print(
        f"  {'loss':<24s} {'median':>9s} {'ratio':>6s} {'min':>9s} {'ratio':>6s}"
        f" {'cpu':>9s} {'ratio':>6s}"
    )
    for name in cases:
        print(
            f"  {name:<24s} {med[name]:6.1f} ms {med[name] / med['nt_xent']:6.2f} "
            f"{best[name]:6.1f} ms {best[name] / best['nt_xent']:6.2f} "
            f"{used[name]:6.1f} ms {used[name] / used['nt_xent']:6.2f}"
        )
    target, base = med["mcl sample (y_aux)"], med["nt_xent"]
    print(
        f"median: mcl (y_aux) {target:.1f} ms, nt_xent {base:.1f} ms, ratio {target / base:.2f} "
        "(target: < 60 ms and ratio < 2)"
    )
    print(
        "wall times: median and min; cpu: median process CPU time (all threads). On a shared "
        "machine the gap between median and min shows the load from other processes."
    )


if __name__ == "__main__":
    main()
