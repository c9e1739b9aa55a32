"""Score distributions: test images classified correctly, misclassified, and an OOD set,
with the 95%-TPR threshold (Figure 5).

- ``score_distribution``: the figure (plotly or matplotlib).
- ``drawn_range``: the score range drawn, without extreme outliers (the figure says how
  many it leaves out).

Scores follow mclviz's direction: higher = more in-distribution (paper Eq. 14).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from matplotlib.ticker import MaxNLocator

from ._arrays import _finite, _numpy
from .style import (
    _CORRECT_COLOR,
    _LINE_PX,
    _WRONG_COLOR,
    COLUMN_WIDTH,
    FONT_PT,
    OOD_COLOR,
    _lines,
    _mpl_figure,
    _styled,
    _title,
    paper_rc,
    text_width,
    wrap_label,
)

__all__ = ["drawn_range", "score_distribution"]

_XLABEL = "score (higher = more in-distribution)"
#: the drawn range ends this many interquartile ranges beyond the quartiles of all scores
#: (Tukey's far-out fences): scores further out are outliers, counted and not drawn
_FENCE = 3.0
#: print size of the plotly figure (layout px); on screen it takes its container's width,
#: down to _MIN_WIDTH (its labels are wrapped to fit that)
_EXPORT = (760, 480)
_MIN_WIDTH = 460


def _kde(x: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Gaussian KDE density on grid, or None when it is undefined (< 2 points or no spread)."""
    from scipy.stats import gaussian_kde

    if len(x) < 2 or np.ptp(x) == 0:
        return None
    return gaussian_kde(x)(grid)


@dataclass
class _Group:
    """One histogram: its name, all its scores, its colour, bar heights and KDE."""

    name: str
    x: np.ndarray  # every score of the group, drawn or not
    color: str
    hist: np.ndarray  # density over the shared bins, relative to the whole group
    dens: np.ndarray | None  # KDE on the grid, scaled like hist (None: undefined)


@dataclass
class _Distribution:
    """What both backends draw: the groups' histograms and densities, the threshold."""

    groups: list[_Group]
    edges: np.ndarray  # histogram bin edges shared by all groups
    grid: np.ndarray  # where the KDE curves are evaluated
    threshold: float  # the 95%-TPR threshold of Eq. 14 (metrics.threshold_at_tpr)
    auroc: float
    fpr: float  # OOD fraction at or above the threshold (the table's fpr95)
    ymax: float  # highest histogram bar or density
    ood_name: str
    below: int  # scores below the drawn range (outliers, not drawn)
    above: int
    lo: float
    hi: float

    @property
    def threshold_name(self) -> str:
        return f"95% TPR threshold ({self.threshold:.3g})"

    @property
    def title(self) -> str:
        return f"AUROC {100 * self.auroc:.1f}%, FPR at 95% TPR {100 * self.fpr:.1f}%"

    @property
    def clip_note(self) -> str:
        """Says which outliers the axis leaves out ("" when none)."""
        parts = []
        if self.below:
            parts.append(f"{self.below:,} below {self.lo:.3g}")
        if self.above:
            parts.append(f"{self.above:,} above {self.hi:.3g}")
        return f"not drawn: {' and '.join(parts)} (outliers)" if parts else ""

    @property
    def xlabel(self) -> str:
        return _XLABEL + (f"; {self.clip_note}" if self.clip_note else "")


def _check_scores(score_in, correct, score_out):
    s_in = _finite(_numpy(score_in, "score_in", ndim=1, dtype=np.float64), "score_in")
    s_out = _finite(_numpy(score_out, "score_out", ndim=1, dtype=np.float64), "score_out")
    ok = _numpy(correct, "correct", ndim=1, dtype=bool)
    if len(ok) != len(s_in):
        raise ValueError(f"correct has {len(ok)} entries but score_in has {len(s_in)}")
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError(
            f"score_in has {len(s_in)} and score_out {len(s_out)} samples; both need at least one"
        )
    return s_in, ok, s_out


def drawn_range(scores, *, include: float | None = None) -> tuple[float, float]:
    """The score range a figure draws: all of it, but for extreme outliers.

    The range ends at the smallest and largest score, or at Tukey's far-out fences
    ``Q1 - 3 IQR`` and ``Q3 + 3 IQR`` (Q1, Q3 the quartiles of ``scores``, IQR = Q3 - Q1)
    where a score lies beyond them; ``include`` (a threshold) is always inside. A few
    scores at -1,500 beside a bulk at -50 would otherwise squash every histogram against
    one edge. Scores of two separate groups (test and OOD, in equal numbers) both lie
    between the quartiles' fences, so neither is cut.

    >>> [round(v, 2) for v in drawn_range(np.r_[np.linspace(0, 1, 200), -1500.0])]
    [-1.26, 1.0]
    """
    a = np.asarray(scores, dtype=np.float64)
    q1, q3 = np.percentile(a, [25, 75])
    pad = _FENCE * (q3 - q1)
    lo, hi = float(a.min()), float(a.max())
    if pad > 0:
        lo, hi = max(lo, q1 - pad), min(hi, q3 + pad)
    if include is not None:
        lo, hi = min(lo, float(include)), max(hi, float(include))
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi)


def _group(name: str, x: np.ndarray, color: str, edges, grid, lo, hi) -> _Group:
    width = edges[1] - edges[0]
    counts, _ = np.histogram(x, bins=edges)
    hist = counts / (len(x) * width)  # density of the whole group: outliers keep their share
    inside = x[(x >= lo) & (x <= hi)]
    dens = _kde(inside, grid)
    if dens is not None:
        dens = dens * len(inside) / len(x)
    return _Group(name, x, color, hist, dens)


def _distribution(
    s_in: np.ndarray, ok: np.ndarray, s_out: np.ndarray, ood_name: str, bins: int
) -> _Distribution:
    from ..metrics import ood_metrics, threshold_at_tpr

    threshold = threshold_at_tpr(s_in, 0.95)
    m = ood_metrics(s_in, s_out)
    allv = np.r_[s_in, s_out]
    lo, hi = drawn_range(allv, include=threshold)
    edges = np.linspace(lo, hi, int(bins) + 1)
    pad = 0.05 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 512)
    spec = [
        (f"test, correct (n={int(ok.sum()):,})", s_in[ok], _CORRECT_COLOR),
        (f"test, misclassified (n={int((~ok).sum()):,})", s_in[~ok], _WRONG_COLOR),
        (f"{ood_name} (n={len(s_out):,})", s_out, OOD_COLOR),
    ]
    groups = [_group(n, x, c, edges, grid, lo, hi) for n, x, c in spec if len(x)]
    ymax = max(
        max(float(g.hist.max()), float(g.dens.max()) if g.dens is not None else 0.0) for g in groups
    )
    return _Distribution(
        groups,
        edges,
        grid,
        threshold,
        m["auroc"],
        float(np.mean(s_out >= threshold)),
        ymax,
        ood_name,
        below=int((allv < lo).sum()),
        above=int((allv > hi).sum()),
        lo=lo,
        hi=hi,
    )


def _plotly(d: _Distribution) -> go.Figure:
    fig = go.Figure()
    centres = (d.edges[:-1] + d.edges[1:]) / 2
    width = float(d.edges[1] - d.edges[0])
    for g in d.groups:
        fig.add_trace(
            go.Bar(
                x=centres,
                y=g.hist,
                width=width,
                name=g.name,
                legendgroup=g.name,
                marker=dict(color=g.color, line=dict(width=0)),
                opacity=0.45,
                hovertemplate="score %{x:.3g}<br>density %{y:.3g}<extra>" + g.name + "</extra>",
            )
        )
        if g.dens is not None:
            fig.add_trace(
                go.Scatter(
                    x=d.grid,
                    y=g.dens,
                    mode="lines",
                    name=f"{g.name} KDE",
                    legendgroup=g.name,
                    showlegend=False,
                    hoverinfo="skip",
                    line=dict(color=g.color, width=2),
                )
            )
    fig.add_trace(
        go.Scatter(
            x=[d.threshold, d.threshold],
            y=[0, 1.05 * d.ymax],
            mode="lines",
            name=d.threshold_name,
            line=dict(color="#222222", width=1.5, dash="dash"),
        )
    )
    # lines that fit the narrowest container the figure is meant for (half a notebook)
    title, top = _title(
        "<br>".join(
            wrap_label(t, _MIN_WIDTH - 40)
            for t in (f"Scores: test images and {d.ood_name}", d.title)
        )
    )
    xlabel = wrap_label(d.xlabel, _MIN_WIDTH - 80)
    # the legend at the foot of the figure, under the axis title; the bottom margin holds
    # as many legend lines as the narrowest container needs
    names = [g.name for g in d.groups] + [d.threshold_name]
    legend_lines = -(-sum(text_width(n) + 50 for n in names) // (_MIN_WIDTH - 40))
    bottom = 40 + _LINE_PX * (_lines(xlabel) + int(legend_lines)) + 12
    fig.update_layout(
        barmode="overlay",
        bargap=0,
        title=title,
        xaxis_title=xlabel,
        yaxis_title="density",
        xaxis_range=[d.edges[0], d.edges[-1]],
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left"),
        margin=dict(t=top, b=bottom),
        meta={
            "threshold": d.threshold,
            "auroc": d.auroc,
            "fpr_at_threshold": d.fpr,
            "range": [d.lo, d.hi],
            "not_drawn": {"below": d.below, "above": d.above},
        },
    )
    height = _EXPORT[1] + bottom - 100
    return _styled(fig, height=height, export_size=(_EXPORT[0], height))


def _matplotlib(d: _Distribution):
    width_pt = COLUMN_WIDTH * 72
    names = [g.name for g in d.groups] + [d.threshold_name]
    # two legend columns only when the longest name fits in half the width
    ncol = 2 if max(text_width(n, FONT_PT) for n in names) + 30 < width_pt / 2 else 1
    with paper_rc({"figure.figsize": (COLUMN_WIDTH, 2.6 + 0.16 * len(names) / ncol)}):
        fig = _mpl_figure(layout="constrained")
        ax = fig.add_subplot()
        centres = (d.edges[:-1] + d.edges[1:]) / 2
        width = d.edges[1] - d.edges[0]
        for g in d.groups:
            ax.bar(centres, g.hist, width=width, color=g.color, alpha=0.4, label=g.name, lw=0)
            if g.dens is not None:
                ax.plot(d.grid, g.dens, color=g.color, label=f"{g.name} KDE")
        ax.axvline(
            d.threshold, color="#222222", linestyle="--", linewidth=0.8, label=d.threshold_name
        )
        ax.set_xlim(d.edges[0], d.edges[-1])
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(wrap_label(d.xlabel, width_pt - 20, FONT_PT, sep="\n"))
        ax.set_ylabel("density")
        ax.set_title(
            "\n".join(
                wrap_label(t, width_pt - 20, FONT_PT, sep="\n")
                for t in (f"Test images and {d.ood_name}", d.title)
            )
        )
        handles, labels = ax.get_legend_handles_labels()
        keep = [i for i, t in enumerate(labels) if not t.endswith(" KDE")]  # one entry per group
        # below the axes: above them it would hide the OOD peak or the IND peak
        fig.legend(
            [handles[i] for i in keep],
            [labels[i] for i in keep],
            loc="outside lower center",
            ncol=ncol,
            handlelength=1.5,
            columnspacing=1.0,
        )
    return fig


def score_distribution(
    score_in,
    correct,
    score_out,
    *,
    ood_name: str = "OOD",
    backend: str = "plotly",
    bins: int = 50,
):
    """Histograms and densities of scores: test correct, misclassified and OOD (Figure 5).

    Three groups: in-distribution samples the model classifies correctly, those it
    misclassifies, and the OOD set. Each group gets a histogram (bins shared by all
    groups, heights a density of the whole group) and a Gaussian KDE curve
    (``scipy.stats.gaussian_kde`` on its drawn scores; left out for a group with fewer than
    2 distinct values). A vertical dashed line marks the threshold that keeps 95% TPR on
    IND (:func:`mclviz.metrics.threshold_at_tpr`, where the tables' ``fpr95`` is read).
    The title gives the AUROC (IND positive) and that FPR, in percent with one decimal.
    The x axis spans :func:`drawn_range`: extreme outliers are not drawn, and its title
    says how many and where.

    Args:
        score_in: (n_in,) IND scores, higher = more in-distribution (paper Eq. 14).
        correct: (n_in,) bool, True where the IND sample is classified correctly.
        score_out: (n_out,) OOD scores.
        ood_name: name of the OOD set in the legend (``mclviz.names.dataset_name``).
        backend: "plotly" (go.Figure) or "matplotlib" (matplotlib Figure, paper style).
        bins: number of histogram bins over the drawn range.

    Returns:
        The figure. Legend names: "test, correct (n=...)", "test, misclassified (n=...)",
        "<ood_name> (n=...)", KDE curves the same name + " KDE", and "95% TPR threshold
        (...)". Plotly figures (bars, ``go.Bar``) also carry ``fig.layout.meta =
        {"threshold", "auroc", "fpr_at_threshold", "range", "not_drawn", "export_size"}``
        and take their container's width on screen.
    """
    if backend not in ("plotly", "matplotlib"):
        raise ValueError(f"backend={backend!r} is not supported; use 'plotly' or 'matplotlib'")
    if int(bins) < 1:
        raise ValueError(f"bins={bins} must be a positive number of bins")
    s_in, ok, s_out = _check_scores(score_in, correct, score_out)
    d = _distribution(s_in, ok, s_out, ood_name, bins)
    return _plotly(d) if backend == "plotly" else _matplotlib(d)
