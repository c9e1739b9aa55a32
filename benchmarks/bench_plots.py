"""Projection timings: t-SNE vs UMAP (first and second call) vs the figure build, side by side.

Budget (issue 6): a projection of 2,000 points (d = 128) renders within 15 s on the CPU,
UMAP's numba compile included. Each step runs in a fresh subprocess where "first call"
matters, so one step's imports and compiled code do not flatter the next:

- ``tsne``: ``project(z, "tsne")`` (sklearn import excluded, timed separately).
- ``umap first`` / ``umap second``: two ``project(z, "umap")`` calls in one process; the
  first includes numba's compile, the second is the steady state.
- ``figure``: ``projection_figure`` of 3 models x 2,000 points from cached projections
  (``cache_dir``), i.e. the cost of the figure itself; and with 32x32 hover thumbnails.
- ``figure (tsne, cold)``: the same figure for one model with nothing cached.

Run: ``.venv/bin/python benchmarks/bench_plots.py`` (about 2-3 minutes on 2 busy cores).
Wall time depends on the machine's load; CPU time (process_time) is printed next to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

N, D = 2000, 128

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
from mclviz import plots
step, n, d, cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
centres = rng.normal(size=(10, d)) * 3
y = np.repeat(np.arange(10), n // 10)
out = {"import": time.perf_counter() - t0}

def timed(name, fn):
    t, c = time.perf_counter(), time.process_time()
    fn()
    out[name] = (time.perf_counter() - t, time.process_time() - c)

z = (centres[y] + rng.normal(size=(n, d))).astype(np.float32)
if step == "tsne":
    import sklearn.manifold  # noqa: F401  (import cost is not the projection's)
    timed("tsne", lambda: plots.project(z, "tsne"))
elif step == "umap":
    import umap  # noqa: F401
    timed("umap first", lambda: plots.project(z, "umap"))
    timed("umap second", lambda: plots.project(z + 1e-3, "umap"))
elif step == "figure":
    emb = {m: (centres[y] * s + rng.normal(size=(n, d))).astype(np.float32) for m, s in
           [("SimCLR", 0.5), ("SupCLR", 1.0), ("MCL", 2.0)]}
    for m in emb:  # fill the cache: the figure timing below excludes the projections
        plots.project(emb[m], "tsne", cache_dir=cache)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    plots.projection_figure(emb, y, cache_dir=cache)  # warm-up: plotly's first-use imports
    timed("figure (3 panels, cached)", lambda: plots.projection_figure(emb, y, cache_dir=cache))
    timed("figure + thumbnails", lambda: plots.projection_figure(emb, y, images=images, cache_dir=cache))
    fig = plots.projection_figure(emb, y, images=images, cache_dir=cache)
    out["figure json MB"] = len(fig.to_json()) / 1e6
elif step == "cold":
    import sklearn.manifold  # noqa: F401
    timed("figure (1 panel, tsne, cold)", lambda: plots.projection_figure({"MCL": z}, y))
print("RESULT" + json.dumps(out))
"""


def run(step: str, cache: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(N), str(D), cache],
        capture_output=True,
        text=True,
        env=env,
    )
    if p.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{p.stderr[-3000:]}")
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")][-1]
    res = json.loads(line[len("RESULT") :])
    res["process total"] = (time.perf_counter() - t, float("nan"))
    return res


def main() -> None:
    print(
        f"projection of {N} points, d = {D}, on {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    with tempfile.TemporaryDirectory() as cache:
        results = {step: run(step, cache) for step in ("tsne", "umap", "figure", "cold")}
    rows = []
    for res in results.values():
        for name, v in res.items():
            if name in ("import", "process total", "figure json MB"):
                continue
            rows.append((name, *v))
    budget = 15.0
    print(f"{'step':34s} {'wall s':>8s} {'cpu s':>8s}  vs 15 s budget")
    for name, wall, cpu in rows:
        print(f"{name:34s} {wall:8.2f} {cpu:8.2f}  {wall / budget:5.2f}x")
    t = results["tsne"]["tsne"][0]
    u1, u2 = results["umap"]["umap first"][0], results["umap"]["umap second"][0]
    f = results["figure"]["figure (3 panels, cached)"][0]
    print(
        f"ratios: umap first / second = {u1 / u2:.1f}x, tsne / umap second = {t / u2:.1f}x, "
        f"tsne / figure build = {t / f:.0f}x"
    )
    print(
        f"figure with thumbnails: {results['figure']['figure json MB']:.1f} MB of JSON (3 panels)"
    )
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
