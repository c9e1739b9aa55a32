"""2-D projections of embeddings, t-SNE or UMAP, side by side for several models (Figure 1).

- ``project``: the (n, 2) projection of one (n, d) array, optionally cached on disk.
- ``projection_figure``: one panel per model on the same sampled points, coloured by
  class, OOD in grey, panels in a grid that fits a notebook column, with image
  thumbnails for a hover callback.
- ``exact_knn``: each point's exact nearest neighbours in umap's ``precomputed_knn``
  format, which ``project`` hands umap below 4,096 points.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .._io import atomic_write
from ._arrays import _finite, _hwc, _images, _numpy
from .style import _LINE_PX, OOD_COLOR, PALETTE, _lines, _styled, _title, class_name, wrap_label

__all__ = ["exact_knn", "project", "projection_figure"]

_METHODS = ("tsne", "umap")
_CACHE_VERSION = "v2"  # bump when the projection parameters below change
#: below this many points umap finds exact neighbours; project() hands it scikit-learn's
_UMAP_EXACT_KNN = 4096


def _cache_key(z: np.ndarray, method: str, seed: int) -> str:
    h = hashlib.sha256()
    h.update(f"{_CACHE_VERSION}|{z.dtype.str}|{z.shape}|".encode())
    h.update(z.tobytes())
    return f"{method}-seed{seed}-{h.hexdigest()[:32]}.npy"


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to a name
        np.save(fh, arr, allow_pickle=False)


def exact_knn(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest points, itself first at distance exactly 0, as umap's exact
    path has them (umap takes the first non-zero distance as the local connectivity, so a
    rounding error of 1e-7 on the self distance would change its graph).

    Args:
        a: (n, d) float32 points.
        k: neighbours per point, the point itself included (umap's ``n_neighbors``).

    Returns:
        indices (n, k) int64 and euclidean distances (n, k) float32, ascending along each
        row: ``umap.UMAP(precomputed_knn=(*exact_knn(a, k), None))``.
    """
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k - 1).fit(a).kneighbors()  # (n, k-1), no self
    n = a.shape[0]
    idx = np.concatenate([np.arange(n)[:, None], idx], axis=1)
    dist = np.concatenate([np.zeros((n, 1)), dist], axis=1).astype(np.float32)
    return idx, dist


def _tsne(a: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, (a.shape[0] - 1) / 3.0))
    # One OpenMP thread: sklearn's Barnes-Hut gradient opens a parallel region per
    # iteration, and on a shared or busy CPU the thread barriers cost more than they
    # save (2,000 points: 16 s on one thread vs 46 s on two contended cores).
    with threadpool_limits(limits=1):
        return TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            learning_rate="auto",
            random_state=seed,
        ).fit_transform(a)


def _umap(a: np.ndarray, seed: int) -> np.ndarray:
    try:
        import umap
    except ImportError as err:
        raise ImportError(
            "project(method='umap') needs umap-learn: pip install umap-learn (or use method='tsne')"
        ) from err
    n = a.shape[0]
    k = min(15, n - 1)
    kw = {}
    if n < _UMAP_EXACT_KNN:
        # the exact neighbours umap computes itself below 4,096 points (the point
        # itself first), from scikit-learn: umap's own path compiles numba kernels
        # for it, about 7 of the 17 s of a first call on 2,000 points
        kw["precomputed_knn"] = (*exact_knn(a, k), None)
    # n_jobs=1: a fixed random_state makes umap single-threaded anyway (and warn)
    with warnings.catch_warnings():
        # "... not an NNDescent object: transform unavailable": project never transforms
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        return umap.UMAP(
            n_components=2, n_neighbors=k, random_state=seed, n_jobs=1, **kw
        ).fit_transform(a)


def project(
    z, method: str = "tsne", *, seed: int = 0, cache_dir: str | os.PathLike | None = None
) -> np.ndarray:
    """2-D projection of embeddings with t-SNE or UMAP (paper Figure 1).

    t-SNE: scikit-learn ``TSNE(init="pca", learning_rate="auto", random_state=seed)``
    with perplexity ``min(30, (n - 1) / 3)``, on one OpenMP thread. UMAP: umap-learn ``UMAP(random_state=seed,
    n_neighbors=min(15, n - 1))`` (imported only here; a fixed seed makes it run on one
    thread, and numba compiles it on the first call of a process). Below 4,096 points,
    where umap would compute exact neighbours itself, they come from scikit-learn's
    ``NearestNeighbors`` instead (``precomputed_knn``, :func:`exact_knn`): the same
    neighbours, and a first call that skips compiling umap's own kernels for them
    (2,000 points: 17 s -> 10 s).

    Args:
        z: (n, d) embeddings, numpy or torch (any device), n >= 3.
        method: "tsne" or "umap".
        seed: random seed; the same (z, method, seed) always gives the same projection.
        cache_dir: optional folder; the result is stored there as ``.npy`` (no pickle)
            keyed by a hash of the array bytes, method and seed, and read back next time.
            Nothing is written when it is None.

    Returns:
        (n, 2) float32 array.
    """
    if method not in _METHODS:
        raise ValueError(f"method={method!r} is not supported; use one of {_METHODS}")
    a = _finite(np.ascontiguousarray(_numpy(z, "z", ndim=2, dtype=np.float32)), "z")
    n = a.shape[0]
    if n < 3:
        raise ValueError(f"z has {n} rows; a 2-D projection needs at least 3 points")
    seed = int(seed)

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / _cache_key(a, method, seed)
        if path.exists():
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (n, 2):
                return cached
            # a file of the wrong shape (hash collision or truncation): recompute below

    y = _tsne(a, seed) if method == "tsne" else _umap(a, seed)
    y = np.ascontiguousarray(y, dtype=np.float32)

    if path is not None:  # atomic: a parallel reader never sees half a file
        atomic_write(path, lambda tmp: _save_npy(tmp, y))
    return y


def _png_data_uri(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_hwc(img)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _check_inputs(embeddings, labels, ood_mask, images, sample):
    """(labels (n,), {model: (n, d)}, OOD mask (n,), images or None), all checked."""
    if not isinstance(embeddings, Mapping) or not embeddings:
        raise ValueError("embeddings must be a non-empty dict {model name: (n, d) array}")
    y = _numpy(labels, "labels", ndim=1)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integer class labels, got dtype {y.dtype}")
    n = len(y)
    zs = {}
    for name, z in embeddings.items():
        a = _numpy(z, f"embeddings[{name!r}]", ndim=2)
        if a.shape[0] != n:
            raise ValueError(
                f"embeddings[{name!r}] has {a.shape[0]} rows but labels has {n}; "
                "every model must embed the same points in the same order"
            )
        zs[str(name)] = a
    ood = y < 0
    if ood_mask is not None:
        m = _numpy(ood_mask, "ood_mask", ndim=1, dtype=bool)
        if len(m) != n:
            raise ValueError(f"ood_mask has {len(m)} entries but labels has {n}")
        ood = ood | m
    imgs = None
    if images is not None:
        imgs = _images(images, "images")
        if imgs.ndim != 4 or len(imgs) != n:
            raise ValueError(f"images has shape {imgs.shape}; expected ({n}, 3, H, W) like labels")
    if sample is not None and int(sample) < 1:
        raise ValueError(f"sample={sample} must be a positive number of points or None (all)")
    return y, zs, ood, imgs


def _sample_idx(n: int, sample: int | None, seed: int) -> np.ndarray:
    """The rows drawn for every panel: all, or ``sample`` of them without replacement, sorted."""
    if sample is None or n <= int(sample):
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(sample), replace=False))


def _set_rows(ood: np.ndarray) -> np.ndarray:
    """Each row's index within its own set: the test rows counted apart from the OOD rows
    (the caller's arrays are test then OOD, each set in its order)."""
    return np.where(ood, np.cumsum(ood) - 1, np.cumsum(~ood) - 1)


def _customdata(idx, y, ood, imgs, class_names, ood_name) -> np.ndarray:
    """(len(idx), 5) object rows ``[i, name, thumbnail, j, where]`` of the sampled points.

    ``i`` the row in the caller's arrays, ``name`` the class (or the OOD set), ``thumbnail``
    a PNG data URI or "", ``j`` the index within its own set (test or OOD), ``where`` the
    hover line saying so ("test image #12 of 2,000", "OOD image #560 of 2,000").
    """
    y_s, ood_s = y[idx], ood[idx]
    within = _set_rows(ood)[idx]
    n_ood, n_test = int(ood.sum()), int((~ood).sum())
    names_s = np.array(
        [
            (ood_name if o else class_name(int(c), class_names))
            for c, o in zip(y_s, ood_s, strict=True)
        ],
        dtype=object,
    )
    where = np.array(
        [
            f"OOD image #{j:,} of {n_ood:,}" if o else f"test image #{j:,} of {n_test:,}"
            for j, o in zip(within, ood_s, strict=True)
        ],
        dtype=object,
    )
    thumbs = (
        np.array([_png_data_uri(imgs[i]) for i in idx], dtype=object)
        if imgs is not None
        else np.full(len(idx), "", dtype=object)
    )
    custom = np.empty((len(idx), 5), dtype=object)
    custom[:, 0], custom[:, 1], custom[:, 2] = idx, names_s, thumbs
    custom[:, 3], custom[:, 4] = within, where
    return custom


def _add_panel(fig, k: int, cols: int, model: str, xy, y_s, ood_s, custom, class_names, ood_name):
    """One trace per class of the sample (legend in the first panel only), OOD last."""
    hover = "%{customdata[1]}<br>%{customdata[4]}<extra>" + model + "</extra>"
    groups = [(int(c), (y_s == c) & ~ood_s) for c in np.unique(y_s[~ood_s])]
    if ood_s.any():
        groups.append((None, ood_s))
    for c, sel in groups:
        is_ood = c is None
        name = ood_name if is_ood else class_name(c, class_names)
        fig.add_trace(
            go.Scatter(
                x=xy[sel, 0],
                y=xy[sel, 1],
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=(k == 0),
                marker=dict(
                    size=4 if not is_ood else 5,
                    opacity=0.8 if not is_ood else 0.6,
                    color=OOD_COLOR if is_ood else PALETTE[c % len(PALETTE)],
                    symbol="circle-open" if is_ood else "circle",
                ),
                customdata=custom[sel],
                hovertemplate=hover,
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )


#: on screen and in print: the height of a row of panels, the width of a panel in print,
#: and room for the legend (class names and the OOD set) at the right
_PANEL_HEIGHT, _PANEL_WIDTH, _LEGEND_WIDTH = 380, 420, 200


def _panels(fig, titles: list[str], cols: int) -> None:
    """Panel titles, wrapped so each fits over its panel in print."""
    for annotation, title in zip(fig.layout.annotations, titles, strict=True):
        annotation.text = wrap_label(title, _PANEL_WIDTH - 20)


def _progress(progress, total: int, desc: str):
    """A tqdm.auto bar (``progress=True``) or a no-op one."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="panel", disable=not progress, leave=False)


def projection_figure(
    embeddings: Mapping[str, object],
    labels,
    *,
    method: str = "tsne",
    ood_mask=None,
    ood_name: str = "OOD",
    class_names: Sequence[str] | None = None,
    images=None,
    sample: int | None = 2000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    cols: int | None = None,
    progress: bool | Callable[[int, int, str], None] = False,
) -> go.Figure:
    """2-D projections of several models' embeddings, one panel each (paper Figure 1).

    All panels show the *same* points: when n > ``sample``, ``sample`` rows are drawn once
    without replacement (``np.random.default_rng(seed)``, sorted) and used for every panel;
    the title says how many of how many, test and OOD. Each panel has one trace per class
    present in the sample (named by ``class_names``, coloured ``PALETTE[c % 10]``, legend
    entry only in the first panel, legend groups link the panels) and, when there are OOD
    points, one grey trace named ``ood_name`` drawn on top.

    The panels wrap into a grid of ``cols`` columns (default: 2), so each stays legible in
    a notebook column; the figure takes its container's width on screen and is exported at
    ``_PANEL_WIDTH`` px a panel (``layout.meta["export_size"]``).

    Every trace's ``customdata`` rows are ``[i, name, thumbnail, j, where]``: ``i`` the row
    in the caller's arrays, ``name`` the class or OOD set, thumbnail a
    ``data:image/png;base64,...`` URI of ``images[i]`` (empty string without ``images``),
    ``j`` the index within the point's own set (the test rows and the OOD rows counted
    apart: the caller's arrays are test then OOD), ``where`` the hover line ("OOD image
    #560 of 2,000"). Plotly's hover box cannot draw images, so the thumbnail is there for a
    ``go.FigureWidget`` hover callback; it costs about 2-3 kB per point and panel for 32x32
    images.

    Args:
        embeddings: {model name: (n, d) embeddings}, same n and row order for all.
        labels: (n,) int class labels; -1 marks OOD (mclviz convention).
        method: "tsne" or "umap" (see ``project``).
        ood_mask: optional (n,) bool, True for OOD; OR-ed with ``labels < 0``.
        ood_name: the OOD set's name in the legend and the hover box
            (``mclviz.names.dataset_name(key)``).
        class_names: optional names indexed by class label.
        images: optional (n, 3, H, W) uint8 images for the hover thumbnails.
        sample: number of points drawn (None: all).
        seed: seed of the sample and of the projection.
        cache_dir: passed to ``project``.
        cols: panels per row (default ``min(len(embeddings), 2)``).
        progress: True shows a tqdm.auto bar over the panels (each projection takes
            seconds); a callable is called as ``progress(done, total, model)`` before each.

    Returns:
        plotly Figure; ``fig.layout.meta`` holds {"method", "seed", "sample_idx",
        "export_size"}.
    """
    y, zs, ood, imgs = _check_inputs(embeddings, labels, ood_mask, images, sample)
    n = len(y)
    cols = min(len(zs), 2) if cols is None else int(cols)
    if cols < 1:
        raise ValueError(f"cols={cols} must be a positive number of panels per row")
    rows = -(-len(zs) // cols)
    idx = _sample_idx(n, sample, seed)
    y_s, ood_s = y[idx], ood[idx]
    custom = _customdata(idx, y, ood, imgs, class_names, ood_name)

    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=list(zs),
        horizontal_spacing=0.04,
        vertical_spacing=0.12 / rows if rows > 1 else 0.0,
    )
    label = {"tsne": "t-SNE", "umap": "UMAP"}[method]
    with _progress(progress is True, len(zs), label) as bar:
        for k, (model, z) in enumerate(zs.items()):
            if callable(progress):
                progress(k, len(zs), model)
            bar.set_postfix_str(model)
            xy = project(z[idx], method, seed=seed, cache_dir=cache_dir)
            _add_panel(fig, k, cols, model, xy, y_s, ood_s, custom, class_names, ood_name)
            bar.update(1)
    _panels(fig, list(zs), cols)
    frame = dict(showticklabels=False, ticks="", showgrid=False, mirror=True, linecolor="#bbbbbb")
    fig.update_xaxes(**frame)
    fig.update_yaxes(**frame)
    n_out = int(ood_s.sum())
    shown = f"{len(idx) - n_out:,} test" + (f" and {n_out:,} {ood_name}" if n_out else "")
    of = f", drawn from {n:,}" if len(idx) < n else ""
    width = cols * _PANEL_WIDTH + _LEGEND_WIDTH
    panel_lines = max(_lines(a.text) for a in fig.layout.annotations)
    title, top = _title(
        wrap_label(f"{label}, seed {seed}: {shown} images{of}", width - _LEGEND_WIDTH),
        below=panel_lines,
    )
    height = rows * _PANEL_HEIGHT + top + 20 + (rows - 1) * _LINE_PX * panel_lines
    fig.update_layout(
        title=title,
        legend=dict(itemsizing="constant", yanchor="top", y=1, tracegroupgap=2),
        margin=dict(l=20, r=20, t=top, b=20),
        meta={"method": method, "seed": int(seed), "sample_idx": idx.tolist()},
    )
    return _styled(fig, height=height, export_size=(width, height))
