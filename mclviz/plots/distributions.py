"""Score distributions: IND correct, IND wrong and OOD, with the 95%-TPR threshold (Figure 5).

Scores follow mclviz's direction: higher = more in-distribution (paper Eq. 14).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ._arrays import _finite, _numpy
from .style import (
    _CORRECT_COLOR,
    _WRONG_COLOR,
    COLUMN_WIDTH,
    OOD_COLOR,
    _mpl_figure,
    _styled,
    paper_rc,
)

__all__ = ["score_distribution"]

_XLABEL = "score (higher = more in-distribution)"


def _kde(x: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Gaussian KDE density on grid, or None when it is undefined (< 2 points or no spread)."""
    from scipy.stats import gaussian_kde

    if len(x) < 2 or np.ptp(x) == 0:
        return None
    return gaussian_kde(x)(grid)


@dataclass
class _Distribution:
    """What both backends draw: the groups' histograms and densities, the threshold."""

    curves: list[tuple[str, np.ndarray, str, np.ndarray | None]]  # name, x, colour, KDE
    edges: np.ndarray  # histogram bin edges shared by all groups
    grid: np.ndarray  # where the KDE curves are evaluated
    threshold: float  # 5th percentile of all IND scores (95% TPR)
    auroc: float
    fpr: float  # OOD fraction at or above the threshold
    ymax: float  # highest histogram bar or density
    ood_name: str

    @property
    def threshold_name(self) -> str:
        return f"95% TPR threshold = {self.threshold:.4g}"


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


def _distribution(
    s_in: np.ndarray, ok: np.ndarray, s_out: np.ndarray, ood_name: str, bins: int
) -> _Distribution:
    from sklearn.metrics import roc_auc_score

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
    ymax = 0.0
    curves = []
    for name, x, color in groups:
        if not len(x):
            continue
        hist, _ = np.histogram(x, bins=edges, density=True)
        dens = _kde(x, grid)
        ymax = max(ymax, float(hist.max()), float(dens.max()) if dens is not None else 0.0)
        curves.append((name, x, color, dens))
    return _Distribution(curves, edges, grid, threshold, auroc, fpr, ymax, ood_name)


def _plotly(d: _Distribution) -> go.Figure:
    fig = go.Figure()
    for name, x, color, dens in d.curves:
        fig.add_trace(
            go.Histogram(
                x=x,
                name=name,
                legendgroup=name,
                histnorm="probability density",
                xbins=dict(start=d.edges[0], end=d.edges[-1], size=d.edges[1] - d.edges[0]),
                autobinx=False,
                marker=dict(color=color, line=dict(width=0)),
                opacity=0.45,
            )
        )
        if dens is not None:
            fig.add_trace(
                go.Scatter(
                    x=d.grid,
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
            x=[d.threshold, d.threshold],
            y=[0, 1.05 * d.ymax],
            mode="lines",
            name=d.threshold_name,
            line=dict(color="#222222", width=1.5, dash="dash"),
        )
    )
    fig.update_layout(
        barmode="overlay",
        title=(
            f"Scores: IND vs {d.ood_name}, AUROC = {100 * d.auroc:.2f}%, "
            f"FPR at 95% TPR = {100 * d.fpr:.1f}%"
        ),
        xaxis_title=_XLABEL,
        yaxis_title="density",
        width=820,
        height=440,
        meta={"threshold": d.threshold, "auroc": d.auroc, "fpr_at_threshold": d.fpr},
    )
    return _styled(fig)


def _matplotlib(d: _Distribution):
    with paper_rc({"figure.figsize": (COLUMN_WIDTH, 2.9)}):
        fig = _mpl_figure(layout="constrained")
        ax = fig.add_subplot()
        for name, x, color, dens in d.curves:
            ax.hist(x, bins=d.edges, density=True, color=color, alpha=0.4, label=name, linewidth=0)
            if dens is not None:
                ax.plot(d.grid, dens, color=color, label=f"{name} KDE")
        ax.axvline(
            d.threshold, color="#222222", linestyle="--", linewidth=0.8, label=d.threshold_name
        )
        ax.set_xlabel(_XLABEL)
        ax.set_ylabel("density")
        ax.set_title(f"IND vs {d.ood_name}: AUROC = {100 * d.auroc:.2f}%")
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
    if backend not in ("plotly", "matplotlib"):
        raise ValueError(f"backend={backend!r} is not supported; use 'plotly' or 'matplotlib'")
    if int(bins) < 1:
        raise ValueError(f"bins={bins} must be a positive number of bins")
    s_in, ok, s_out = _check_scores(score_in, correct, score_out)
    d = _distribution(s_in, ok, s_out, ood_name, bins)
    return _plotly(d) if backend == "plotly" else _matplotlib(d)
