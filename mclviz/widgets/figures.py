"""Figures of one :class:`~mclviz.evaluation.RetrainResult`: projection, scores, loss curve.

The figures come from :mod:`mclviz.plots`, imported when a figure is made (plotly loads
only then).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .. import methods
from ..evaluation import RetrainResult
from ..names import dataset_name, method_name, mode_name

__all__ = ["loss_curve", "result_label", "result_projection", "result_scores"]


def result_label(result: RetrainResult) -> str:
    """Short label of a result: method (its display name), mode and the hyperparameters
    its loss reads, e.g. "MCL, head retrained: tau=0.2, alpha=0.05, beta=2.5, lambda=1"."""
    p = result.params
    known = result.method in methods.names()
    reads = methods.get(result.method).hyperparameters if known else ()
    names = {"tau": "tau", "alpha": "alpha", "beta": "beta", "lam": "lambda"}
    parts = [f"{names[k]}={p[k]:g}" for k in names if k in reads and p.get(k) is not None]
    head = ", ".join(x for x in (method_name(result.method), mode_name(result.mode)) if x)
    return f"{head}: {', '.join(parts)}" if parts else head


def _ood_name(result: RetrainResult, ood: str | None) -> str:
    if not result.z_ood:
        raise ValueError("the result has no OOD set; build the cache / data with ood={...}")
    if ood is None:
        return next(iter(result.z_ood))
    if ood not in result.z_ood:
        raise ValueError(f"ood={ood!r} is not in the result; its OOD sets are {list(result.z_ood)}")
    return ood


def _with_ood(z: torch.Tensor, labels: torch.Tensor, z_ood: torch.Tensor):
    """Test embeddings and labels followed by OOD ones, labelled -1 (mclviz convention)."""
    ood_labels = torch.full((len(z_ood),), -1, dtype=torch.long)
    return torch.cat([z, z_ood]), torch.cat([labels, ood_labels])


def result_projection(
    result: RetrainResult,
    *,
    ood: str | None = None,
    method: str = "tsne",
    sample: int | None = 300,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
):
    """t-SNE / UMAP of the test projections (view 0) and one OOD set (paper Figure 1).

    Args:
        result: from ``retrain_head``, ``retrain_full`` or ``score_model``.
        ood: the OOD set drawn in grey (default the first); ``"none"`` draws test only.
        method, sample, seed, class_names, cache_dir: see
            :func:`mclviz.plots.projection_figure` (``sample`` points are drawn once from
            test + OOD).
    """
    from ..plots import projection_figure

    z = result.z_test[:, 0]
    y = result.test_labels
    name = "OOD"
    if ood != "none":
        key = _ood_name(result, ood)
        z, y = _with_ood(z, y, result.z_ood[key][:, 0])
        name = dataset_name(key)
    fig = projection_figure(
        {result_label(result): z},
        y,
        method=method,
        ood_name=name,
        sample=sample,
        seed=seed,
        class_names=class_names,
        cache_dir=cache_dir,
    )
    return fig


def result_scores(result: RetrainResult, *, ood: str | None = None, backend: str = "plotly"):
    """Score histograms of correct / wrong test images and one OOD set (paper Figure 5),
    the OOD set by its display name; the plotly title names the result too."""
    from ..plots import score_distribution, wrap_label

    name = _ood_name(result, ood)
    fig = score_distribution(
        result.score_in,
        result.correct,
        result.score_out[name],
        ood_name=dataset_name(name),
        backend=backend,
    )
    if backend == "plotly":
        label = wrap_label(result_label(result), 420)
        title = f"{fig.layout.title.text}<br>{label}"
        fig.update_layout(title_text=title, margin_t=24 + 18 * (title.count("<br>") + 1))
        fig.update_layout(height=fig.layout.height + 18 * (label.count("<br>") + 1))
    return fig


def loss_curve(rows: Sequence[Mapping[str, float]], *, x: str = "epoch", title: str = "Loss"):
    """Line plot of the loss terms (``loss`` and, for MCL, ``ccm`` and ``spa``) against ``x``;
    it takes its container's width (exported at 640 x 320 px).

    Args:
        rows: dicts with ``x`` and loss terms, e.g. ``result.history`` (x="epoch") or the
            step events of :func:`mclviz.training.train` (x="step").
        x: the key for the x axis.
        title: figure title.
    """
    import plotly.graph_objects as go

    from ..plots import house_style

    fig = go.Figure()
    xs = [float(r[x]) for r in rows]
    for key in ("loss", "ccm", "spa"):
        if rows and key in rows[0]:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[float(r[key]) for r in rows],
                    mode="lines+markers" if len(rows) < 40 else "lines",
                    name=key,
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title="loss",
        margin=dict(l=55, r=15, t=50, b=45),
    )
    return house_style(fig, height=320, export_size=(640, 320))
