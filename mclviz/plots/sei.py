"""SEI ablations, the paper's aggregation variant beside the official code's (Tables 4, 5).

- ``sei_table``: accuracy and AUROC per (ways, aggregation), paper vs official, and the
  difference.
- ``sei_figure``: the same as grouped bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import PALETTE, _styled

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
