"""One-class anomaly detection: the AUROC of each normal class, per scoring (notebook 06).

- ``one_class_figure``: a dot plot of :func:`mclviz.evaluation.one_class_table` in percent,
  for print (matplotlib, the house style; the same form as the SEI chart).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .style import COLUMN_WIDTH, FONT_PT, PALETTE, _mpl_figure, paper_rc, text_width

__all__ = ["one_class_figure"]

#: the table's AUROC columns: legend name, colour, marker, filled
_COLUMNS = (
    ("knn_pretrained", "pretrained (kNN)", PALETTE[2], "s", False),
    ("msc", "mean-shifted (kNN)", PALETTE[0], "o", True),
    ("mcl_mahalanobis", "MCL Mahalanobis (reference)", PALETTE[1], "D", False),
)


def one_class_figure(table: pd.DataFrame):
    """A dot plot: one row per normal class (and the mean), one marker per scoring.

    Columns of ``table`` that hold nothing (``mcl_mahalanobis`` without an MCL checkpoint)
    get no marker. AUROC in percent on an axis around the data, the chance level (50%)
    dashed when it is in range; class names on the rows, so they never collide, and no
    value printed beside a marker (the table holds the numbers). The MCL reference saw
    every class's labels in training: it is not a one-class method.

    Args:
        table: :func:`mclviz.evaluation.one_class_table` (``name`` and the AUROC columns,
            fractions in [0, 1]).

    Returns:
        matplotlib Figure, one column wide (wider when the legend needs it), 8 pt.
    """
    missing = [c for c in ("name", "knn_pretrained", "msc") if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; pass one_class_table(...)")
    cols = [c for c in _COLUMNS if c[0] in table.columns and table[c[0]].notna().any()]
    rows = [str(n) for n in table["name"]]
    y = np.arange(len(rows))
    values = 100 * table[[c[0] for c in cols]].astype(np.float64).to_numpy()
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 100.0)
    pad = max(0.1 * (hi - lo), 1.0)
    legend_in = sum(text_width(c[1], FONT_PT) + 28 for c in cols) / 72
    width = max(COLUMN_WIDTH, min(legend_in + 0.2, 6.9))
    with paper_rc({"figure.figsize": (width, 0.9 + len(rows) * FONT_PT * 1.6 / 72)}):
        fig = _mpl_figure(layout="constrained")
        ax = fig.add_subplot()
        for col, label, color, marker, filled in cols:
            ax.plot(
                100 * table[col].astype(np.float64).to_numpy(),
                y,
                linestyle="none",
                marker=marker,
                markersize=4,
                markerfacecolor=color if filled else "none",
                markeredgecolor=color,
                label=label,
            )
        ax.set_xlim(max(0.0, lo - pad), min(100.0, hi + pad))
        if ax.get_xlim()[0] < 50 < ax.get_xlim()[1]:
            ax.axvline(50, color="#222222", linestyle="--", linewidth=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 5, 10]))
        ax.set_yticks(y, rows)
        ax.invert_yaxis()
        ax.set_xlabel("one-class AUROC (%)")
        ax.grid(axis="both", linewidth=0.4, color="#dddddd")
        ax.set_axisbelow(True)
        fig.legend(loc="outside lower center", ncol=len(cols))
    return fig
