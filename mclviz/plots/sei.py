"""SEI ablations, the paper's aggregation variant beside the official code's (Tables 4, 5).

- ``sei_table``: accuracy and AUROC per (ways, aggregation), paper vs official, and the
  difference.
- ``sei_figure``: the same as a dot plot (plotly or matplotlib), values in percent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.ticker import MaxNLocator
from plotly.subplots import make_subplots

from ..names import dataset_name, method_name, sei_name, variant_name
from .style import (
    COLUMN_WIDTH,
    FONT_PT,
    PALETTE,
    TEXT_WIDTH,
    _mpl_figure,
    _styled,
    _title,
    paper_rc,
    text_width,
    wrap_label,
)

__all__ = ["sei_figure", "sei_table"]

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
    """A row of the chart: "8-way w-avg" ("no SEI" for one view), after the method /
    detector levels when the table has them."""
    key = key if isinstance(key, tuple) else (key,)
    *head, ways, agg = key
    return " / ".join([*map(method_name, map(str, head)), sei_name(int(ways), agg)])


#: how the two variants are drawn: (legend name, colour, plotly symbol, matplotlib marker)
_VARIANT_STYLE = {
    "paper": (variant_name("paper"), PALETTE[0], "circle", "o"),
    "official": (variant_name("official"), PALETTE[1], "diamond-open", "D"),
}
_PANELS = (("acc", "accuracy (%)"), ("auroc", "AUROC (%)"))
#: plotly: the height of a row and the print size (layout px)
_ROW_PX, _EXPORT_WIDTH = 30, 900


def _percent(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in table.columns if not c.endswith("_diff")]].astype(np.float64) * 100


def _axis_range(values: np.ndarray) -> list[float]:
    """A value axis around the data (a dot plot needs no zero), padded by 10% a side."""
    v = values[np.isfinite(values)]
    if not len(v):
        return [0.0, 100.0]
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.1 * (hi - lo), 0.5)
    return [lo - pad, hi + pad]


def _plotly_sei(table: pd.DataFrame, labels: list[str], ood_label: str) -> go.Figure:
    pct = _percent(table)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        subplot_titles=[t for _, t in _PANELS],
        horizontal_spacing=0.06,
    )
    for col, (short, _) in enumerate(_PANELS, start=1):
        for v in _VARIANTS:
            name, color, symbol, _m = _VARIANT_STYLE[v]
            fig.add_trace(
                go.Scatter(
                    x=pct[f"{short}_{v}"],
                    y=labels,
                    mode="markers",  # no text beside the points: the table holds the numbers
                    name=name,
                    legendgroup=v,
                    showlegend=(col == 1),
                    marker=dict(
                        color=color, symbol=symbol, size=10, line=dict(width=2, color=color)
                    ),
                    hovertemplate="%{y}<br>" + name + ": %{x:.1f}%<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(
            range=_axis_range(pct[[f"{short}_{v}" for v in _VARIANTS]].to_numpy()),
            nticks=6,
            showgrid=True,
            row=1,
            col=col,
        )
    fig.update_yaxes(autorange="reversed", showgrid=True, type="category")
    title, top = _title(wrap_label(f"SEI ablation, OOD set: {ood_label}", 400), below=1)
    height = top + 110 + _ROW_PX * len(labels)
    fig.update_layout(
        title=title,
        legend=dict(orientation="h", yanchor="top", y=-60 / (_ROW_PX * len(labels)), x=0),
        margin=dict(t=top, b=40),
    )
    return _styled(fig, height=height, export_size=(_EXPORT_WIDTH, height))


def _matplotlib_sei(table: pd.DataFrame, labels: list[str], ood_label: str):
    pct = _percent(table)
    label_in = max(text_width(t, FONT_PT) for t in labels) / 72 + 0.1
    width = min(TEXT_WIDTH, max(COLUMN_WIDTH, label_in + 2 * 1.35))
    # rows at 1.6 x the font size: tick labels never touch
    height = 0.9 + len(labels) * FONT_PT * 1.6 / 72
    with paper_rc({"figure.figsize": (width, height)}):
        fig = _mpl_figure(layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        y = np.arange(len(labels))
        for ax, (short, title) in zip(axes, _PANELS, strict=True):
            for v in _VARIANTS:
                name, color, _s, marker = _VARIANT_STYLE[v]
                open_marker = v == "official"
                ax.plot(
                    pct[f"{short}_{v}"].to_numpy(),
                    y,
                    linestyle="none",
                    marker=marker,
                    markersize=4,
                    markerfacecolor="none" if open_marker else color,
                    markeredgecolor=color,
                    label=name,
                )
            ax.set_xlim(*_axis_range(pct[[f"{short}_{v}" for v in _VARIANTS]].to_numpy()))
            ax.xaxis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
            ax.set_xlabel(title)
            ax.grid(axis="both", linewidth=0.4, color="#dddddd")
            ax.set_axisbelow(True)
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
        axes[1].tick_params(axis="y", left=False)
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncol=2)
        fig.suptitle(f"SEI ablation, OOD set: {ood_label}")
    return fig


def sei_figure(df: pd.DataFrame, ood: str | None = None, *, backend: str = "plotly"):
    """``sei_table`` as a dot plot: accuracy and AUROC in %, paper vs official variant.

    One row per setting (labelled "8-way w-avg", "no SEI" for one view; after the method /
    detector when the table holds several), two panels (accuracy, AUROC) sharing the rows,
    one marker per variant: filled circle "paper", open diamond "official code" (so both
    show when they coincide). No value is printed beside a marker: two variants a few
    hundredths apart would collide; the numbers are in ``sei_table`` and in the hover box.
    The value axes span the data (not zero), tick labels are few (they never run
    together), every text is one size.

    Args:
        df, ood: see :func:`sei_table`.
        backend: "plotly" (takes its container's width on screen; exported at 900 px wide)
            or "matplotlib" (print: 8 pt, one column wide when the labels allow).

    Returns:
        The figure; plotly traces are named by :func:`mclviz.names.variant_name`.
    """
    if backend not in ("plotly", "matplotlib"):
        raise ValueError(f"backend={backend!r} is not supported; use 'plotly' or 'matplotlib'")
    table = sei_table(df, ood)
    labels = [_sei_label(k) for k in table.index]
    name = dataset_name(ood if ood is not None else df["ood"].iloc[0])
    if backend == "plotly":
        return _plotly_sei(table, labels, name)
    return _matplotlib_sei(table, labels, name)
