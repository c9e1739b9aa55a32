"""mclviz.plots.distributions: score_distribution (paper Figure 5), against numpy / scipy /
mclviz.metrics computed here; the drawn range leaves extreme outliers out and says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure as MplFigure
from plot_inputs import score_data
from scipy.stats import gaussian_kde
from sklearn.metrics import roc_auc_score
from text_layout import assert_no_text_overlap

from mclviz.metrics import ood_metrics, threshold_at_tpr
from mclviz.plots import drawn_range, score_distribution


def test_score_distribution_plotly_threshold_auroc_and_groups():
    s_in, correct, s_out = score_data()
    fig = score_distribution(s_in, torch.as_tensor(correct), s_out, ood_name="SVHN", bins=30)
    names = [t.name for t in fig.data]
    assert names[0] == f"test, correct (n={correct.sum()})"
    assert names[2] == f"test, misclassified (n={(~correct).sum()})"
    assert names[4] == "SVHN (n=250)"
    assert [n.endswith(" KDE") for n in names] == [False, True] * 3 + [False]
    # the threshold is the one the tables' FPR at 95% TPR is read at
    threshold = threshold_at_tpr(s_in, 0.95)
    line = fig.data[-1]
    assert line.name.startswith("95% TPR threshold")
    assert line.x[0] == line.x[1] == pytest.approx(threshold, abs=0)
    auroc = roc_auc_score(np.r_[np.ones(400), np.zeros(250)], np.r_[s_in, s_out])
    assert f"AUROC {100 * auroc:.1f}%" in fig.layout.title.text  # one decimal, as the tables
    fpr = ood_metrics(s_in, s_out)["fpr95"]
    assert f"FPR at 95% TPR {100 * fpr:.1f}%" in fig.layout.title.text
    assert fig.layout.meta["auroc"] == pytest.approx(auroc, abs=1e-12)
    assert fig.layout.meta["fpr_at_threshold"] == pytest.approx(fpr)
    # bar heights: a density of the whole group on shared bins; the KDE is scipy's
    lo, hi = fig.layout.meta["range"]
    edges = np.linspace(lo, hi, 31)
    for k, x in ((0, s_in[correct]), (2, s_in[~correct]), (4, s_out)):
        counts, _ = np.histogram(x, bins=edges)
        np.testing.assert_allclose(fig.data[k].y, counts / (len(x) * (edges[1] - edges[0])))
        assert fig.data[k].type == "bar"
    kde = fig.data[5]
    np.testing.assert_allclose(kde.y, gaussian_kde(s_out)(np.asarray(kde.x)), rtol=1e-10)
    assert fig.layout.meta["not_drawn"] == {"below": 0, "above": 0}
    assert "not drawn" not in fig.layout.xaxis.title.text


def test_score_axis_ignores_extreme_outliers_and_says_so():
    s_in, correct, s_out = score_data(3)
    s_out = s_out.copy()
    s_out[:4] = -1500.0  # a few far outliers: without the range they squash everything
    fig = score_distribution(s_in, correct, s_out, ood_name="Tiny ImageNet (resize)")
    lo, hi = fig.layout.meta["range"]
    assert lo > -10 and fig.layout.xaxis.range[0] == pytest.approx(lo)
    assert fig.layout.meta["not_drawn"] == {"below": 4, "above": 0}
    assert "not drawn: 4 below" in fig.layout.xaxis.title.text.replace("<br>", " ")
    # the outliers keep their share: the OOD bars hold the other 246 of 250 images
    ood = fig.data[4]
    width = ood.width
    assert sum(ood.y) * width == pytest.approx(246 / 250)
    # the metrics still count every image
    assert fig.layout.meta["auroc"] == pytest.approx(ood_metrics(s_in, s_out)["auroc"])
    # no outliers: the range is the data's; a threshold is always inside
    a = np.linspace(0, 1, 300)
    assert drawn_range(a) == (0.0, 1.0)
    assert drawn_range(a, include=2.0)[1] == 2.0
    assert -2 < drawn_range(np.r_[a, -1500.0])[0] < 0


def test_score_distribution_fits_its_container_and_half_a_notebook():
    s_in, correct, s_out = score_data(4)
    fig = score_distribution(s_in, correct, s_out, ood_name="Tiny ImageNet (resize)")
    assert fig.layout.width is None and fig.layout.autosize  # the container's width
    assert fig.layout.meta["export_size"][0] == 760  # the print size
    # every line of the title fits the narrowest container meant (460 px): no line of
    # more than (460 - 40) / (0.6 * 13) characters
    for line in fig.layout.title.text.split("<br>"):
        assert len(line) <= 53, line
    assert fig.layout.legend.orientation == "h"  # under the axis: it never squeezes the plot


def test_score_distribution_matplotlib_and_edge_cases():
    s_in, correct, s_out = score_data(1)
    fig = score_distribution(s_in, correct, s_out, backend="matplotlib")
    assert isinstance(fig, MplFigure)
    ax = fig.axes[0]
    (vline,) = [ln for ln in ax.lines if ln.get_label().startswith("95% TPR threshold")]
    assert vline.get_xdata()[0] == pytest.approx(threshold_at_tpr(s_in, 0.95), abs=0)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == 4
    auroc = roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out])
    assert f"AUROC {100 * auroc:.1f}%" in ax.get_title()
    assert len(ax.patches) == 3 * 50  # three histograms of 50 bins
    assert {t.get_fontsize() for t in fig.findobj(match=lambda a: hasattr(a, "get_fontsize"))} == {
        8.0
    }  # one font size
    assert_no_text_overlap(fig)
    long = score_distribution(s_in, correct, s_out, backend="matplotlib", ood_name="x" * 30)
    assert_no_text_overlap(long)  # a long name: one legend column, wrapped title
    # every IND sample correct: no "wrong" group; a single OOD value: histogram, no KDE
    fig2 = score_distribution(s_in, np.ones(len(s_in), bool), np.array([0.5]))
    names = [t.name for t in fig2.data]
    assert (
        len(names) == 4 and names[0].startswith("test, correct") and names[1] == names[0] + " KDE"
    )
    assert names[2].startswith("OOD (n=1)") and names[3].startswith("95% TPR threshold")
    with pytest.raises(ValueError, match="backend"):
        score_distribution(s_in, correct, s_out, backend="bokeh")
    with pytest.raises(ValueError, match="correct has 3"):
        score_distribution(s_in, correct[:3], s_out)
