"""Figures of the paper, rebuilt from plain arrays: projections, scores, failures, SEI.

Every function takes tensors / numpy arrays / DataFrames (never a model) and returns a
figure object: a plotly ``go.Figure`` for the interactive views, a matplotlib ``Figure``
for print. Nothing is shown or written; ``export(fig, path)`` writes PDF, SVG or PNG.

- ``project`` / ``projection_figure``: t-SNE or UMAP of embeddings (paper Figure 1).
- ``score_distribution``: histograms and densities of scores (Figure 5), with the 95%-TPR
  threshold and the AUROC.
- ``nearest_neighbours`` / ``failure_cases`` / ``failure_gallery``: Figure 4.
- ``sei_table`` / ``sei_figure``: SEI ablations, paper vs official variant (Tables 4, 5).
- ``comparison_table``: our numbers vs the published ones (re-exported from
  ``mclviz.paper_numbers``).
- ``PALETTE``, ``OOD_COLOR``, ``paper_rc()``, ``plotly_template()``: the house style.

Scores follow mclviz's direction: higher = more in-distribution (paper Eq. 14).

matplotlib figures are created through pyplot and closed at once: pyplot no longer holds
them, so they never auto-display at the end of a Jupyter cell (no double display) and
never accumulate; a notebook draws one when it is the cell's value.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure as MplFigure
from plotly.basedatatypes import BaseFigure
from plotly.subplots import make_subplots

from mclviz.paper_numbers import comparison_table

from ._io import atomic_write

__all__ = [
    "COLUMN_WIDTH",
    "OOD_COLOR",
    "PALETTE",
    "PAPER_RC",
    "TEXT_WIDTH",
    "comparison_table",
    "export",
    "failure_cases",
    "failure_gallery",
    "nearest_neighbours",
    "paper_rc",
    "plotly_template",
    "project",
    "projection_figure",
    "score_distribution",
    "sei_figure",
    "sei_table",
]

# ----------------------------------------------------------------------------- style

#: Class colours: Tableau 10 (matplotlib's "tab10") with its grey replaced by black, so
#: grey only ever means OOD. Class c gets ``PALETTE[c % 10]``.
PALETTE: tuple[str, ...] = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#000000",  # black (tab10's grey, reserved for OOD here)
    "#bcbd22",  # olive
    "#17becf",  # cyan
)
#: OOD points and OOD score histograms.
OOD_COLOR = "#9e9e9e"
_CORRECT_COLOR = PALETTE[0]
_WRONG_COLOR = PALETTE[3]

COLUMN_WIDTH = 3.3  # inches, one column of the IJCAI two-column layout
TEXT_WIDTH = 6.9  # inches, both columns

#: matplotlib rcParams for print figures (used by ``paper_rc`` and ``export``).
PAPER_RC: dict[str, object] = {
    "figure.figsize": (COLUMN_WIDTH, 2.4),
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "pdf.fonttype": 42,  # embed TrueType (Type 42), not Type 3: required by most venues
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # keep text as text in SVG (editable, searchable)
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


@contextlib.contextmanager
def paper_rc(rc: Mapping[str, object] | None = None) -> Iterator[None]:
    """Context manager applying ``PAPER_RC`` (3.3 in wide, 8 pt, TrueType fonts), plus ``rc``.

    Wrap the creation of a matplotlib figure (font sizes are read when artists are
    created) and its saving (``pdf.fonttype`` is read when saving); ``export`` already
    does the latter. The global rcParams are restored on exit.

    >>> with paper_rc({"figure.figsize": (TEXT_WIDTH, 2.0)}):
    ...     fig = MplFigure()
    >>> fig.get_size_inches().tolist()
    [6.9, 2.0]
    """
    params = dict(PAPER_RC)
    params.update(rc or {})
    with mpl.rc_context(params):
        yield


@functools.lru_cache(maxsize=1)
def _template() -> go.layout.Template:
    import plotly.io as pio

    t = go.layout.Template(pio.templates["plotly_white"])
    t.layout.update(
        font=dict(family="Arial, Helvetica, sans-serif", size=14, color="#222222"),
        title=dict(font=dict(size=17), x=0.02, xanchor="left"),
        legend=dict(font=dict(size=13), itemsizing="constant"),
        hoverlabel=dict(font=dict(size=13)),
        colorway=list(PALETTE),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=60, r=20, t=70, b=55),
    )
    axis = dict(
        showline=True,
        linecolor="#444444",
        ticks="outside",
        tickfont=dict(size=12),
        title=dict(font=dict(size=14)),
        zeroline=False,
    )
    t.layout.xaxis.update(axis)
    t.layout.yaxis.update(axis)
    return t


def plotly_template() -> go.layout.Template:
    """The plotly template of every mclviz figure: plotly_white, 12-17 px fonts, ``PALETTE``.

    Not registered in ``plotly.io.templates`` (no global side effect); apply it with
    ``fig.update_layout(template=plotly_template())``.
    """
    return go.layout.Template(_template())


def _styled(fig: go.Figure) -> go.Figure:
    fig.update_layout(template=_template())
    return fig


# ----------------------------------------------------------------------------- inputs


def _numpy(x, name: str, *, ndim: int | tuple[int, ...] | None = None, dtype=None) -> np.ndarray:
    """numpy array from a numpy array, a list or a (any-device) torch tensor, shape-checked."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in allowed:
            raise ValueError(
                f"{name} has shape {a.shape}; expected {' or '.join(f'{d}-D' for d in allowed)}"
            )
    if dtype is not None:
        if dtype is bool:
            if a.dtype != bool and not (
                np.issubdtype(a.dtype, np.integer) and np.isin(a, (0, 1)).all()
            ):
                raise TypeError(f"{name} must be boolean (or 0/1), got dtype {a.dtype}")
            a = a.astype(bool)
        else:
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
            a = a.astype(dtype)
    return a


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0])
        raise ValueError(
            f"{name} holds NaN or infinite values (first in row {bad}); fix or drop them"
        )
    return a


def _images(x, name: str) -> np.ndarray:
    a = _numpy(x, name)
    if a.ndim < 3 or a.shape[-3] != 3:
        raise ValueError(f"{name} has shape {a.shape}; expected uint8 images (..., 3, H, W)")
    if a.dtype != np.uint8:
        raise TypeError(
            f"{name} has dtype {a.dtype}; expected uint8 images in 0..255 (mclviz.data)"
        )
    return a


def _hwc(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(img, -3, -1))  # (3, H, W) -> (H, W, 3)


def _mpl_figure(**kwargs) -> MplFigure:
    """A matplotlib Figure that pyplot does not manage (never auto-shown, never leaked).

    Created through pyplot and closed at once: in Jupyter, pyplot loads the inline
    backend, which teaches IPython to draw a Figure returned as a cell's value.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(**kwargs)
    plt.close(fig)
    return fig


def _png_data_uri(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_hwc(img)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ----------------------------------------------------------------------------- projections

_METHODS = ("tsne", "umap")
_CACHE_VERSION = "v2"  # bump when the projection parameters below change


def _cache_key(z: np.ndarray, method: str, seed: int) -> str:
    h = hashlib.sha256()
    h.update(f"{_CACHE_VERSION}|{z.dtype.str}|{z.shape}|".encode())
    h.update(z.tobytes())
    return f"{method}-seed{seed}-{h.hexdigest()[:32]}.npy"


#: below this many points umap finds exact neighbours; project() hands it scikit-learn's
_UMAP_EXACT_KNN = 4096


def _exact_knn(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest points, itself first at distance exactly 0, as umap's exact
    path has them (umap takes the first non-zero distance as the local connectivity, so a
    rounding error of 1e-7 on the self distance would change its graph).

    Returns:
        indices (n, k) int64 and euclidean distances (n, k) float32.
    """
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k - 1).fit(a).kneighbors()  # (n, k-1), no self
    n = a.shape[0]
    idx = np.concatenate([np.arange(n)[:, None], idx], axis=1)
    dist = np.concatenate([np.zeros((n, 1)), dist], axis=1).astype(np.float32)
    return idx, dist


def project(
    z, method: str = "tsne", *, seed: int = 0, cache_dir: str | os.PathLike | None = None
) -> np.ndarray:
    """2-D projection of embeddings with t-SNE or UMAP (paper Figure 1).

    t-SNE: scikit-learn ``TSNE(init="pca", learning_rate="auto", random_state=seed)``
    with perplexity ``min(30, (n - 1) / 3)``, on one OpenMP thread. UMAP: umap-learn ``UMAP(random_state=seed,
    n_neighbors=min(15, n - 1))`` (imported only here; a fixed seed makes it run on one
    thread, and numba compiles it on the first call of a process). Below 4,096 points,
    where umap would compute exact neighbours itself, they come from scikit-learn's
    ``NearestNeighbors`` instead (``precomputed_knn``): the same neighbours, and a first
    call that skips compiling umap's own kernels for them (2,000 points: 17 s -> 10 s).

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

    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, (n - 1) / 3.0))
        # One OpenMP thread: sklearn's Barnes-Hut gradient opens a parallel region per
        # iteration, and on a shared or busy CPU the thread barriers cost more than they
        # save (2,000 points: 16 s on one thread vs 46 s on two contended cores).
        with threadpool_limits(limits=1):
            y = TSNE(
                n_components=2,
                perplexity=perplexity,
                init="pca",
                learning_rate="auto",
                random_state=seed,
            ).fit_transform(a)
    else:
        try:
            import umap
        except ImportError as err:
            raise ImportError(
                "project(method='umap') needs umap-learn: pip install umap-learn "
                "(or use method='tsne')"
            ) from err
        k = min(15, n - 1)
        kw = {}
        if n < _UMAP_EXACT_KNN:
            # the exact neighbours umap computes itself below 4,096 points (the point
            # itself first), from scikit-learn: umap's own path compiles numba kernels
            # for it, about 7 of the 17 s of a first call on 2,000 points
            kw["precomputed_knn"] = (*_exact_knn(a, k), None)
        # n_jobs=1: a fixed random_state makes umap single-threaded anyway (and warn)
        with warnings.catch_warnings():
            # "... not an NNDescent object: transform unavailable": project never transforms
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
            y = umap.UMAP(
                n_components=2, n_neighbors=k, random_state=seed, n_jobs=1, **kw
            ).fit_transform(a)
    y = np.ascontiguousarray(y, dtype=np.float32)

    if path is not None:  # atomic: a parallel reader never sees half a file
        atomic_write(path, lambda tmp: np.save(tmp, y, allow_pickle=False))
    return y


def _class_name(c: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return f"class {c}"


def projection_figure(
    embeddings: Mapping[str, object],
    labels,
    *,
    method: str = "tsne",
    ood_mask=None,
    class_names: Sequence[str] | None = None,
    images=None,
    sample: int | None = 2000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> go.Figure:
    """Side-by-side 2-D projections of several models' embeddings (paper Figure 1).

    One column per model, all on the *same* points: when n > ``sample``, ``sample`` rows
    are drawn once without replacement (``np.random.default_rng(seed)``, sorted) and used
    for every panel; the title says how many of how many. Each panel has one trace per
    class present in the sample (named by ``class_names``, coloured ``PALETTE[c % 10]``,
    legend entry only in the first panel, legend groups link the panels) and, when there
    are OOD points, one grey trace named "OOD" drawn on top.

    Every trace's ``customdata`` rows are ``[i, class name, thumbnail]``: ``i`` the row
    index in the caller's arrays, thumbnail a ``data:image/png;base64,...`` URI of
    ``images[i]`` (empty string without ``images``). Plotly's hover box cannot draw
    images, so the thumbnail is there for a ``go.FigureWidget`` hover callback; it costs
    about 2-3 kB per point and panel for 32x32 images.

    Args:
        embeddings: {model name: (n, d) embeddings}, same n and row order for all.
        labels: (n,) int class labels; -1 marks OOD (mclviz convention).
        method: "tsne" or "umap" (see ``project``).
        ood_mask: optional (n,) bool, True for OOD; OR-ed with ``labels < 0``.
        class_names: optional names indexed by class label.
        images: optional (n, 3, H, W) uint8 images for the hover thumbnails.
        sample: number of points drawn (None: all).
        seed: seed of the sample and of the projection.
        cache_dir: passed to ``project``.

    Returns:
        plotly Figure; ``fig.layout.meta`` holds {"method", "seed", "sample_idx"}.
    """
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

    if sample is None or n <= int(sample):
        idx = np.arange(n)
    else:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=int(sample), replace=False))

    y_s, ood_s = y[idx], ood[idx]
    names_s = np.array(
        [
            ("OOD" if o else _class_name(int(c), class_names))
            for c, o in zip(y_s, ood_s, strict=True)
        ],
        dtype=object,
    )
    thumbs = (
        np.array([_png_data_uri(imgs[i]) for i in idx], dtype=object)
        if imgs is not None
        else np.full(len(idx), "", dtype=object)
    )
    custom = np.empty((len(idx), 3), dtype=object)
    custom[:, 0], custom[:, 1], custom[:, 2] = idx, names_s, thumbs
    classes = np.unique(y_s[~ood_s])

    titles = list(zs)
    fig = make_subplots(rows=1, cols=len(zs), subplot_titles=titles, horizontal_spacing=0.03)
    for col, (model, z) in enumerate(zs.items(), start=1):
        hover = "%{customdata[1]}<br>index %{customdata[0]}<extra>" + model + "</extra>"
        xy = project(z[idx], method, seed=seed, cache_dir=cache_dir)
        groups = [(int(c), (y_s == c) & ~ood_s) for c in classes]
        if ood_s.any():
            groups.append((None, ood_s))
        for c, sel in groups:
            is_ood = c is None
            name = "OOD" if is_ood else _class_name(c, class_names)
            fig.add_trace(
                go.Scatter(
                    x=xy[sel, 0],
                    y=xy[sel, 1],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=(col == 1),
                    marker=dict(
                        size=4 if not is_ood else 5,
                        opacity=0.8 if not is_ood else 0.6,
                        color=OOD_COLOR if is_ood else PALETTE[c % len(PALETTE)],
                        symbol="circle-open" if is_ood else "circle",
                    ),
                    customdata=custom[sel],
                    hovertemplate=hover,
                ),
                row=1,
                col=col,
            )
    label = {"tsne": "t-SNE", "umap": "UMAP"}[method]
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False)
    fig.update_yaxes(showticklabels=False, ticks="", showgrid=False)
    fig.update_layout(
        title=f"{label} of {len(idx):,} / {n:,} points (seed {seed})",
        width=max(420, 380 * len(zs)),
        height=460,
        legend=dict(itemsizing="constant"),
        meta={"method": method, "seed": int(seed), "sample_idx": idx.tolist()},
    )
    return _styled(fig)


# ----------------------------------------------------------------------------- scores


def _kde(x: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Gaussian KDE density on grid, or None when it is undefined (< 2 points or no spread)."""
    from scipy.stats import gaussian_kde

    if len(x) < 2 or np.ptp(x) == 0:
        return None
    return gaussian_kde(x)(grid)


def score_distribution(
    score_in,
    correct,
    score_out,
    *,
    ood_name: str = "OOD",
    backend: str = "plotly",
    bins: int = 50,
):
    """Histograms and densities of scores: IND correct, IND wrong and OOD (paper Figure 5).

    Three groups: in-distribution samples the model classifies correctly, those it
    misclassifies, and the OOD set. Each group gets a density-normalised histogram (bins
    shared by all groups) and a Gaussian KDE curve (``scipy.stats.gaussian_kde``; left out
    for a group with fewer than 2 distinct values). A vertical dashed line marks the
    threshold that keeps 95% TPR on IND: the 5th percentile of *all* IND scores
    (``np.percentile(score_in, 5)``, linear interpolation). The AUROC (IND positive,
    ``sklearn.metrics.roc_auc_score``) is printed in the OOD legend entry and the title.

    Args:
        score_in: (n_in,) IND scores, higher = more in-distribution (paper Eq. 14).
        correct: (n_in,) bool, True where the IND sample is classified correctly.
        score_out: (n_out,) OOD scores.
        ood_name: name of the OOD set in the legend.
        backend: "plotly" (go.Figure) or "matplotlib" (matplotlib Figure, paper style).
        bins: number of histogram bins over the range of all scores.

    Returns:
        The figure. Legend names: "IND correct (n=...)", "IND wrong (n=...)",
        "<ood_name> (n=..., AUROC=xx.xx%)", KDE curves the same name + " KDE", and
        "95% TPR threshold = ...". Plotly figures also carry
        ``fig.layout.meta = {"threshold", "auroc", "fpr_at_threshold"}``.
    """
    from sklearn.metrics import roc_auc_score

    if backend not in ("plotly", "matplotlib"):
        raise ValueError(f"backend={backend!r} is not supported; use 'plotly' or 'matplotlib'")
    if int(bins) < 1:
        raise ValueError(f"bins={bins} must be a positive number of bins")
    s_in = _finite(_numpy(score_in, "score_in", ndim=1, dtype=np.float64), "score_in")
    s_out = _finite(_numpy(score_out, "score_out", ndim=1, dtype=np.float64), "score_out")
    ok = _numpy(correct, "correct", ndim=1, dtype=bool)
    if len(ok) != len(s_in):
        raise ValueError(f"correct has {len(ok)} entries but score_in has {len(s_in)}")
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError(
            f"score_in has {len(s_in)} and score_out {len(s_out)} samples; both need at least one"
        )

    threshold = float(np.percentile(s_in, 5))
    auroc = float(
        roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out])
    )
    fpr = float(np.mean(s_out >= threshold))
    allv = np.r_[s_in, s_out]
    lo, hi = float(allv.min()), float(allv.max())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)
    pad = 0.05 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 512)

    groups = [
        (f"IND correct (n={int(ok.sum())})", s_in[ok], _CORRECT_COLOR),
        (f"IND wrong (n={int((~ok).sum())})", s_in[~ok], _WRONG_COLOR),
        (f"{ood_name} (n={len(s_out)}, AUROC={100 * auroc:.2f}%)", s_out, OOD_COLOR),
    ]
    groups = [g for g in groups if len(g[1])]
    thr_name = f"95% TPR threshold = {threshold:.4g}"
    title = (
        f"Scores: IND vs {ood_name}, AUROC = {100 * auroc:.2f}%, FPR at 95% TPR = {100 * fpr:.1f}%"
    )

    ymax = 0.0
    curves = []
    for name, x, color in groups:
        hist, _ = np.histogram(x, bins=edges, density=True)
        dens = _kde(x, grid)
        ymax = max(ymax, float(hist.max()), float(dens.max()) if dens is not None else 0.0)
        curves.append((name, x, color, dens))

    if backend == "plotly":
        fig = go.Figure()
        for name, x, color, dens in curves:
            fig.add_trace(
                go.Histogram(
                    x=x,
                    name=name,
                    legendgroup=name,
                    histnorm="probability density",
                    xbins=dict(start=edges[0], end=edges[-1], size=edges[1] - edges[0]),
                    autobinx=False,
                    marker=dict(color=color, line=dict(width=0)),
                    opacity=0.45,
                )
            )
            if dens is not None:
                fig.add_trace(
                    go.Scatter(
                        x=grid,
                        y=dens,
                        mode="lines",
                        name=f"{name} KDE",
                        legendgroup=name,
                        showlegend=False,
                        line=dict(color=color, width=2),
                    )
                )
        fig.add_trace(
            go.Scatter(
                x=[threshold, threshold],
                y=[0, 1.05 * ymax],
                mode="lines",
                name=thr_name,
                line=dict(color="#222222", width=1.5, dash="dash"),
            )
        )
        fig.update_layout(
            barmode="overlay",
            title=title,
            xaxis_title="score (higher = more in-distribution)",
            yaxis_title="density",
            width=820,
            height=440,
            meta={"threshold": threshold, "auroc": auroc, "fpr_at_threshold": fpr},
        )
        return _styled(fig)

    with paper_rc({"figure.figsize": (COLUMN_WIDTH, 2.9)}):
        fig = _mpl_figure(layout="constrained")
        ax = fig.add_subplot()
        for name, x, color, dens in curves:
            ax.hist(x, bins=edges, density=True, color=color, alpha=0.4, label=name, linewidth=0)
            if dens is not None:
                ax.plot(grid, dens, color=color, label=f"{name} KDE")
        ax.axvline(threshold, color="#222222", linestyle="--", linewidth=0.8, label=thr_name)
        ax.set_xlabel("score (higher = more in-distribution)")
        ax.set_ylabel("density")
        ax.set_title(f"IND vs {ood_name}: AUROC = {100 * auroc:.2f}%")
        handles, names = ax.get_legend_handles_labels()
        keep = [i for i, t in enumerate(names) if not t.endswith(" KDE")]  # one entry per group
        # below the axes: above them it would hide the OOD peak or the IND peak
        fig.legend(
            [handles[i] for i in keep],
            [names[i] for i in keep],
            loc="outside lower center",
            ncol=2,
            handlelength=1.5,
            columnspacing=1.0,
        )
    return fig


# ----------------------------------------------------------------------------- failures


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
        matplotlib Figure (paper style, 0.62 in per image), axes row-major: row i holds
        ``fig.axes[i * (k + 1) : (i + 1) * (k + 1)]``.
    """
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

    cell = 0.62
    with paper_rc({"figure.figsize": (cell * (k + 1) + 0.1, (cell + 0.28) * q)}):
        fig = _mpl_figure(layout="constrained")
        axes = fig.subplots(q, k + 1, squeeze=False)
        for i in range(q):
            ax = axes[i, 0]
            ax.imshow(_hwc(qi[i]), interpolation="nearest")
            ax.set_title(str(titles[i]), fontsize=6, color=_WRONG_COLOR)
            for s in ax.spines.values():
                s.set_visible(True)
                s.set_color(_WRONG_COLOR)
                s.set_linewidth(1.2)
            for j in range(k):
                ax = axes[i, j + 1]
                ax.imshow(_hwc(ni[i, j]), interpolation="nearest")
                ax.set_title(
                    f"{_class_name(int(lab[i, j]), class_names)}\nd={dist[i, j]:.3f}", fontsize=6
                )
                for s in ax.spines.values():
                    s.set_visible(False)
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
    return fig


# ----------------------------------------------------------------------------- SEI

_SEI_COLUMNS = (
    "method",
    "detector",
    "ways",
    "aggregation",
    "variant",
    "accuracy",
    "ood",
    "auroc",
    "aupr_in",
    "aupr_out",
    "fpr95",
)
_AGGREGATIONS = ("none", "avg", "max", "w-avg")
_VARIANTS = ("paper", "official")


def _sei_rows(df: pd.DataFrame, ood: str | None) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in _SEI_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks the columns {missing}; the SEI frame has {list(_SEI_COLUMNS)}")
    bad = sorted(set(df["aggregation"]) - set(_AGGREGATIONS))
    if bad:
        raise ValueError(f"aggregation values {bad} are unknown; use {list(_AGGREGATIONS)}")
    bad = sorted(set(df["variant"]) - set(_VARIANTS))
    if bad:
        raise ValueError(f"variant values {bad} are unknown; use {list(_VARIANTS)}")
    oods = list(pd.unique(df["ood"]))
    if ood is None:
        if len(oods) > 1:
            raise ValueError(
                f"df holds several OOD sets {oods}; pick one with ood=..., e.g. ood={oods[0]!r}"
            )
    elif ood not in oods:
        raise ValueError(f"ood={ood!r} is not in df; its OOD sets are {oods}")
    else:
        df = df[df["ood"] == ood]
    keys = ["method", "detector", "ways", "aggregation", "variant"]
    dup = df[df.duplicated(keys, keep=False)]
    if len(dup):
        raise ValueError(
            f"df has {len(dup)} rows for the same setting, e.g. "
            f"{dup.iloc[0][keys].to_dict()}; keep one row per setting and OOD set"
        )
    return df


def sei_table(df: pd.DataFrame, ood: str | None = None) -> pd.DataFrame:
    """SEI ablation, paper vs official variant side by side (paper Tables 4 and 5).

    Args:
        df: tidy frame, one row per setting and OOD set, with columns ``method, detector,
            ways, aggregation, variant, accuracy, ood, auroc, aupr_in, aupr_out, fpr95``;
            ``aggregation`` in {"none", "avg", "max", "w-avg"}, ``variant`` in
            {"paper", "official"}.
        ood: the OOD set to show; None is allowed when df holds only one.

    Returns:
        DataFrame indexed by (ways, aggregation), sorted by ways then none/avg/max/w-avg;
        "method" and "detector" levels are prepended when df holds more than one of them.
        Columns ``acc_paper, acc_official, acc_diff, auroc_paper, auroc_official,
        auroc_diff`` with diff = paper - official, values in df's units (NaN where a
        variant is missing).
    """
    rows = _sei_rows(df, ood)
    levels = [c for c in ("method", "detector") if rows[c].nunique() > 1] + ["ways", "aggregation"]
    # rows are unique per (method, detector, ways, aggregation, variant): unstack is exact
    wide = rows.set_index([*levels, "variant"])[["accuracy", "auroc"]].unstack("variant")
    out = pd.DataFrame(index=wide.index)
    for metric, short in (("accuracy", "acc"), ("auroc", "auroc")):
        for v in _VARIANTS:
            col = (metric, v)
            out[f"{short}_{v}"] = wide[col].astype(np.float64) if col in wide.columns else np.nan
        out[f"{short}_diff"] = out[f"{short}_paper"] - out[f"{short}_official"]
    keys = out.index.to_frame(index=False)
    keys["_agg"] = keys["aggregation"].map(_AGGREGATIONS.index)
    order = keys.sort_values([*levels[:-1], "_agg"], kind="stable").index
    return out.iloc[order]


def _sei_label(key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    *head, ways, agg = key
    setting = "no SEI" if int(ways) == 1 and agg == "none" else f"{int(ways)}-way {agg}"
    return " / ".join([*map(str, head), setting])


def sei_figure(df: pd.DataFrame, ood: str | None = None) -> go.Figure:
    """Grouped bars of ``sei_table``: accuracy and AUROC, paper vs official variant.

    Two panels (accuracy, AUROC); x holds one group per (ways, aggregation) setting
    labelled like "8-way w-avg" ("no SEI" for ways 1 / none); one bar trace per variant
    and panel, named "paper" / "official" (legend once). Values as in the table.
    """
    table = sei_table(df, ood)
    labels = [_sei_label(k) for k in table.index]
    colors = {"paper": PALETTE[0], "official": PALETTE[1]}
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("accuracy", "AUROC"), horizontal_spacing=0.08
    )
    for col, short in enumerate(("acc", "auroc"), start=1):
        for v in _VARIANTS:
            vals = table[f"{short}_{v}"].to_numpy()
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=vals,
                    name=v,
                    legendgroup=v,
                    showlegend=(col == 1),
                    marker_color=colors[v],
                    text=[f"{x:.4g}" if np.isfinite(x) else "" for x in vals],
                    textposition="outside",
                    cliponaxis=False,
                ),
                row=1,
                col=col,
            )
    finite = table[[c for c in table.columns if not c.endswith("_diff")]].to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite):  # start the bars near the data, not at 0: differences are small
        lo, hi = float(finite.min()), float(finite.max())
        span = max(hi - lo, 1e-3 * max(abs(hi), 1.0))
        fig.update_yaxes(range=[lo - 0.6 * span, hi + 0.3 * span])
    name = ood if ood is not None else df["ood"].iloc[0]
    fig.update_layout(
        barmode="group",
        title=f"SEI ablation (OOD: {name}), paper vs official",
        width=max(700, 200 + 140 * len(labels)),
        height=440,
    )
    return _styled(fig)


# ----------------------------------------------------------------------------- export

_SUFFIXES = (".pdf", ".svg", ".png")


def export_many(items, *, scale: float = 2) -> list[Path]:
    """Export several ``(figure, path)`` pairs; the plotly ones through one kaleido session
    (``plotly.io.write_images``, about 3x faster than one browser start per figure)."""
    items = [(fig, Path(path)) for fig, path in items]
    plotly_items = [(f, p) for f, p in items if isinstance(f, BaseFigure)]
    if len(plotly_items) > 1:
        import plotly.io as pio

        for _, p in plotly_items:
            if p.suffix.lower() not in _SUFFIXES:
                raise ValueError(f"cannot export to {p.name!r}: use one of {list(_SUFFIXES)}")
            p.parent.mkdir(parents=True, exist_ok=True)
        pio.write_images(
            [f for f, _ in plotly_items],
            [p for _, p in plotly_items],
            format=[p.suffix.lower()[1:] for _, p in plotly_items],
            scale=scale,
        )
    done = {id(f) for f, _ in plotly_items} if len(plotly_items) > 1 else set()
    return [p if id(f) in done else export(f, p, scale=scale) for f, p in items]


def export(
    fig,
    path: str | os.PathLike,
    *,
    width: float | None = None,
    height: float | None = None,
    scale: float = 2,
) -> Path:
    """Write a plotly or matplotlib figure to PDF, SVG or PNG, chosen by the path's suffix.

    plotly: ``fig.write_image`` through kaleido (needs Chrome/Chromium); ``width`` and
    ``height`` in layout pixels (default: the figure's), ``scale`` multiplies the pixels.
    matplotlib: ``fig.savefig(bbox_inches="tight")`` inside ``paper_rc()`` (TrueType
    fonts in PDF, text kept as text in SVG); ``width``/``height`` in inches for this file
    only (the figure is restored), PNG at ``150 * scale`` dpi. The parent folder is
    created.

    Returns:
        The path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot export to {path.name!r}: suffix {suffix!r} is not one of {list(_SUFFIXES)}"
        )
    if float(scale) <= 0:
        raise ValueError(f"scale={scale} must be positive")
    if isinstance(fig, BaseFigure):  # go.Figure and go.FigureWidget
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fig.write_image(path, format=suffix[1:], width=width, height=height, scale=scale)
        except RuntimeError as err:
            if "chrome" in str(err).lower():
                raise RuntimeError(
                    "static export of plotly figures needs Chrome or Chromium for kaleido, and none "
                    "was found: install it with `apt-get install chromium` (Debian/Ubuntu), or run "
                    "`plotly_get_chrome`, or point BROWSER_PATH at a Chrome binary; or export a "
                    "matplotlib figure instead"
                ) from err
            raise
        return path
    if isinstance(fig, MplFigure):
        path.parent.mkdir(parents=True, exist_ok=True)
        old = fig.get_size_inches().copy()
        try:
            if width is not None or height is not None:
                fig.set_size_inches(
                    width if width is not None else old[0], height if height is not None else old[1]
                )
            with paper_rc():
                fig.savefig(path, format=suffix[1:], bbox_inches="tight", dpi=150 * float(scale))
        finally:
            fig.set_size_inches(old)
        return path
    raise TypeError(
        f"fig is a {type(fig).__module__}.{type(fig).__name__}; export takes a plotly "
        "go.Figure or a matplotlib Figure"
    )
