"""mclviz.plots.one_class: the one-class AUROC per normal class (notebook 06)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from text_layout import assert_no_text_overlap

from mclviz.plots import one_class_figure

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _table(n: int, mcl: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    return pd.DataFrame(
        {
            "class": [*range(n), "mean"],
            "name": [*NAMES[:n], "mean"],
            "knn_pretrained": rng.uniform(0.5, 0.9, n + 1),
            "msc": rng.uniform(0.5, 0.9, n + 1),
            "mcl_mahalanobis": rng.uniform(0.5, 0.9, n + 1) if mcl else np.nan,
        }
    )


@pytest.mark.parametrize(("n", "mcl"), [(10, True), (2, False)])
def test_one_class_figure_percent_dots_and_labels_that_fit(n, mcl):
    t = _table(n, mcl)
    fig = one_class_figure(t)
    ax = fig.axes[0]
    assert len(ax.lines) == (3 if mcl else 2)  # no marker for a column that holds nothing
    heights = sorted(v for ln in ax.lines for v in ln.get_xdata())
    expected = sorted(
        100 * t[["knn_pretrained", "msc"] + (["mcl_mahalanobis"] if mcl else [])].to_numpy().ravel()
    )
    np.testing.assert_allclose(heights, expected)
    assert 0 <= ax.get_xlim()[0] < ax.get_xlim()[1] <= 100
    assert ax.get_xlabel() == "one-class AUROC (%)"
    assert [t.get_text() for t in ax.get_yticklabels()] == [*NAMES[:n], "mean"]
    assert_no_text_overlap(fig)  # class names one per row: never on top of each other
    with pytest.raises(ValueError, match="lacks the columns"):
        one_class_figure(t.drop(columns="msc"))
