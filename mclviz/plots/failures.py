"""A model's worst mistakes and their nearest training images (paper Figure 4).

- ``nearest_neighbours``: the k nearest reference embeddings by cosine distance.
- ``failure_cases``: the OOD images scored most in-distribution, and the misclassified
  IND images with the highest scores.
- ``failure_gallery``: each failure beside its nearest training images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ._arrays import _finite, _hwc, _images, _numpy
from .style import _WRONG_COLOR, FONT_PT, _mpl_figure, class_name, paper_rc, text_width

__all__ = ["failure_cases", "failure_gallery", "nearest_neighbours"]


def nearest_neighbours(z_query, z_ref, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """k nearest reference embeddings of each query by cosine distance (paper Figure 4).

    Args:
        z_query: (q, d) query embeddings.
        z_ref: (n, d) reference (e.g. training) embeddings, n >= k.
        k: number of neighbours.

    Returns:
        dist: (q, k) float64 cosine distances ``1 - cos(z_query[i], z_ref[idx[i, j]])``,
            ascending along each row.
        idx: (q, k) int64 row indices into z_ref; ``train_images[idx]`` is (q, k, 3, H, W).
    """
    from sklearn.neighbors import NearestNeighbors

    q = _finite(_numpy(z_query, "z_query", ndim=2, dtype=np.float64), "z_query")
    r = _finite(_numpy(z_ref, "z_ref", ndim=2, dtype=np.float64), "z_ref")
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"z_query has dimension {q.shape[1]} but z_ref has {r.shape[1]}; embed both with the same model"
        )
    if not 1 <= int(k) <= len(r):
        raise ValueError(f"k={k} must be between 1 and the number of reference rows ({len(r)})")
    nn = NearestNeighbors(n_neighbors=int(k), metric="cosine", algorithm="brute").fit(r)
    dist, idx = nn.kneighbors(q)
    return dist.astype(np.float64), idx.astype(np.int64)


def failure_cases(scores_in, pred_in, y_in, scores_out, *, n: int = 8) -> dict[str, np.ndarray]:
    """The model's worst mistakes (paper Figure 4).

    Args:
        scores_in: (n_in,) IND scores (higher = more in-distribution).
        pred_in: (n_in,) predicted labels.
        y_in: (n_in,) true labels.
        scores_out: (n_out,) OOD scores.
        n: how many of each kind.

    Returns:
        {"ood_idx": indices into the OOD set of the n OOD samples with the *highest*
        scores (most confidently in-distribution), "misclassified_idx": indices into the
        IND set of the n misclassified samples (pred != y) with the highest scores}. Both
        int64, highest score first, ties broken by the lower index; shorter when fewer
        exist.
    """
    if int(n) < 1:
        raise ValueError(f"n={n} must be a positive number of cases")
    s_in = _finite(_numpy(scores_in, "scores_in", ndim=1, dtype=np.float64), "scores_in")
    s_out = _finite(_numpy(scores_out, "scores_out", ndim=1, dtype=np.float64), "scores_out")
    p = _numpy(pred_in, "pred_in", ndim=1)
    t = _numpy(y_in, "y_in", ndim=1)
    if not (len(p) == len(t) == len(s_in)):
        raise ValueError(
            f"scores_in, pred_in and y_in have {len(s_in)}, {len(p)} and {len(t)} "
            "entries; they must describe the same IND samples"
        )
    ood_idx = np.argsort(-s_out, kind="stable")[: int(n)]
    wrong = np.flatnonzero(p != t)
    mis_idx = wrong[np.argsort(-s_in[wrong], kind="stable")][: int(n)]
    return {"ood_idx": ood_idx.astype(np.int64), "misclassified_idx": mis_idx.astype(np.int64)}


def _check_gallery(query_images, query_titles, nn_images, nn_labels, nn_dist):
    """The gallery's inputs as arrays: (q, 3, H, W), titles, (q, k, 3, H, W), (q, k) x 2."""
    qi = _images(query_images, "query_images")
    ni = _images(nn_images, "nn_images")
    lab = _numpy(nn_labels, "nn_labels", ndim=2)
    dist = _numpy(nn_dist, "nn_dist", ndim=2, dtype=np.float64)
    if qi.ndim != 4:
        raise ValueError(f"query_images has shape {qi.shape}; expected (q, 3, H, W)")
    q = len(qi)
    if ni.ndim != 5 or len(ni) != q:
        raise ValueError(
            f"nn_images has shape {ni.shape}; expected ({q}, k, 3, H, W), e.g. train_images[idx]"
        )
    k = ni.shape[1]
    if lab.shape != (q, k) or dist.shape != (q, k):
        raise ValueError(
            f"nn_labels {lab.shape} and nn_dist {dist.shape} must both be ({q}, {k}) like nn_images"
        )
    titles = list(query_titles)
    if len(titles) != q:
        raise ValueError(f"query_titles has {len(titles)} entries for {q} query images")
    if q == 0:
        raise ValueError("query_images is empty; pass at least one failure case")
    return qi, titles, ni, lab, dist


def failure_gallery(
    query_images,
    query_titles: Sequence[str],
    nn_images,
    nn_labels,
    nn_dist,
    *,
    class_names: Sequence[str] | None = None,
) -> MplFigure:
    """Grid of failure cases and their nearest training images (paper Figure 4).

    Row i shows ``query_images[i]`` titled ``query_titles[i]`` (framed in red), then its k
    nearest training images titled with their class and cosine distance ("dog\\nd=0.123").

    Args:
        query_images: (q, 3, H, W) uint8.
        query_titles: q strings, e.g. "OOD: bear\\npred dog" or "GT cat\\npred dog".
        nn_images: (q, k, 3, H, W) uint8, e.g. ``train_images[idx]`` from ``nearest_neighbours``.
        nn_labels: (q, k) int class labels of the neighbours.
        nn_dist: (q, k) distances from ``nearest_neighbours``.
        class_names: optional names indexed by class label.

    Returns:
        matplotlib Figure (paper style, one font size), axes row-major: row i holds
        ``fig.axes[i * (k + 1) : (i + 1) * (k + 1)]``. Each image is at least 0.62 in
        wide, wider when a title line would not fit over it (titles are never shrunk).
    """
    qi, titles, ni, lab, dist = _check_gallery(
        query_images, query_titles, nn_images, nn_labels, nn_dist
    )
    q, k = ni.shape[:2]
    nn_titles = [
        [f"{class_name(int(lab[i, j]), class_names)}\nd={dist[i, j]:.3f}" for j in range(k)]
        for i in range(q)
    ]
    lines = [ln for t in [*titles, *sum(nn_titles, [])] for ln in str(t).split("\n")]
    n_lines = max(str(t).count("\n") + 1 for t in [*titles, *sum(nn_titles, [])])
    cell = max(0.62, max(text_width(ln, FONT_PT) for ln in lines) / 72 + 0.08)
    title_in = n_lines * FONT_PT * 1.25 / 72
    with paper_rc({"figure.figsize": (cell * (k + 1) + 0.1, (cell + title_in + 0.08) * q)}):
        fig = _mpl_figure(layout="constrained")
        axes = fig.subplots(q, k + 1, squeeze=False)
        for i in range(q):
            ax = axes[i, 0]
            ax.imshow(_hwc(qi[i]), interpolation="nearest")
            ax.set_title(str(titles[i]), color=_WRONG_COLOR)
            for s in ax.spines.values():
                s.set_visible(True)
                s.set_color(_WRONG_COLOR)
                s.set_linewidth(1.2)
            for j in range(k):
                ax = axes[i, j + 1]
                ax.imshow(_hwc(ni[i, j]), interpolation="nearest")
                ax.set_title(nn_titles[i][j])
                for s in ax.spines.values():
                    s.set_visible(False)
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
    return fig
