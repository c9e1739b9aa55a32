"""Benchmark: first (decoding) and second (cached) load of all 60,000 CIFAR-10 images.

Run: ``MCLVIZ_DATA=/path/to/data python benchmarks/bench_data.py [--root R] [--cache-dir D]``.
Without ``--cache-dir`` the cache goes to a temporary folder that is deleted at the end, so the
first load really decodes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mclviz.data import data_root, load_images  # noqa: E402


def _load_all(
    root: Path, cache_dir: Path
) -> tuple[float, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    start = time.perf_counter()
    out = {
        split: load_images("cifar10", split, root=root, cache_dir=cache_dir)
        for split in ("train", "test")
    }
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--root", default=None, help="data root (default: $MCLVIZ_DATA, then ./data)"
    )
    parser.add_argument("--cache-dir", default=None, help="cache folder (default: a temporary one)")
    args = parser.parse_args()
    root = data_root(args.root)
    with tempfile.TemporaryDirectory(prefix="mclviz-bench-") as tmp:
        cache = Path(args.cache_dir) if args.cache_dir else Path(tmp)
        first, sets = _load_all(root, cache)
        second, again = _load_all(root, cache)
        x_test, y_test = sets["test"]
        same = all(
            torch.equal(sets[s][0], again[s][0]) and torch.equal(sets[s][1], again[s][1])
            for s in sets
        )
        size_mb = sum(p.stat().st_size for p in cache.glob("cifar10*.npy")) / 2**20
        print(
            f"data root: {root}  cache: {cache} ({size_mb:.0f} MB)  torch threads: {torch.get_num_threads()}"
        )
        print(
            f"train {tuple(sets['train'][0].shape)}  test {tuple(x_test.shape)}  "
            f"test images per label: {torch.bincount(y_test).tolist()}"
        )
        print(f"first load (decode 60,000 JPEGs): {first:8.2f} s")
        print(
            f"second load (cache):              {second:8.2f} s  (ratio first/second {first / second:.0f}x)"
        )
        print(f"identical arrays on both loads: {same}")


if __name__ == "__main__":
    main()
