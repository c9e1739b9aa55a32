"""mclviz.plots.distributions: score_distribution (paper Figure 5), against numpy / scipy /
scikit-learn computed here."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure as MplFigure
from plot_inputs import score_data
from scipy.stats import gaussian_kde
from sklearn.metrics import roc_auc_score

from mclviz.plots import score_distribution


def test_score_distribution_plotly_threshold_auroc_and_groups():
    s_in, correct, s_out = score_data()
    fig = score_distribution(s_in, torch.as_tensor(correct), s_out, ood_name="SVHN", bins=30)
    names = [t.name for t in fig.data]
    assert names[0].startswith(f"IND correct (n={correct.sum()})")
    assert names[2].startswith(f"IND wrong (n={(~correct).sum()})")
    assert names[4].startswith("SVHN (n=250")
    assert [n.endswith(" KDE") for n in names] == [False, True] * 3 + [False]
    threshold = np.percentile(s_in, 5)
    line = fig.data[-1]
    assert line.name.startswith("95% TPR threshold")
    assert line.x[0] == line.x[1] == pytest.approx(threshold, abs=0)
    auroc = roc_auc_score(np.r_[np.ones(400), np.zeros(250)], np.r_[s_in, s_out])
    shown = float(re.search(r"AUROC=([\d.]+)%", names[4]).group(1))
    assert shown == pytest.approx(100 * auroc, abs=0.005)
    assert f"{100 * auroc:.2f}%" in fig.layout.title.text
    assert fig.layout.meta["auroc"] == pytest.approx(auroc, abs=1e-12)
    assert fig.layout.meta["fpr_at_threshold"] == pytest.approx(np.mean(s_out >= threshold))
    # histogram data and KDE curves are the inputs / scipy's density
    np.testing.assert_array_equal(fig.data[0].x, s_in[correct])
    np.testing.assert_array_equal(fig.data[2].x, s_in[~correct])
    np.testing.assert_array_equal(fig.data[4].x, s_out)
    kde = fig.data[5]
    np.testing.assert_allclose(kde.y, gaussian_kde(s_out)(np.asarray(kde.x)), rtol=1e-10)
    assert all(t.histnorm == "probability density" for t in fig.data[0:6:2])
    assert len({(t.xbins.start, t.xbins.size) for t in fig.data[0:6:2]}) == 1  # shared bins


def test_score_distribution_matplotlib_and_edge_cases():
    s_in, correct, s_out = score_data(1)
    fig = score_distribution(s_in, correct, s_out, backend="matplotlib")
    assert isinstance(fig, MplFigure)
    ax = fig.axes[0]
    (vline,) = [ln for ln in ax.lines if ln.get_label().startswith("95% TPR threshold")]
    assert vline.get_xdata()[0] == pytest.approx(np.percentile(s_in, 5), abs=0)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == 4
    auroc = roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out])
    assert any(f"AUROC={100 * auroc:.2f}%" in t for t in legend)
    assert f"{100 * auroc:.2f}%" in ax.get_title()
    assert len(ax.patches) == 3 * 50  # three histograms of 50 bins
    # every IND sample correct: no "wrong" group; a single OOD value: histogram, no KDE
    fig2 = score_distribution(s_in, np.ones(len(s_in), bool), np.array([0.5]))
    names = [t.name for t in fig2.data]
    assert len(names) == 4 and names[0].startswith("IND correct") and names[1] == names[0] + " KDE"
    assert names[2].startswith("OOD (n=1,") and names[3].startswith("95% TPR threshold")
    with pytest.raises(ValueError, match="backend"):
        score_distribution(s_in, correct, s_out, backend="bokeh")
    with pytest.raises(ValueError, match="correct has 3"):
        score_distribution(s_in, correct[:3], s_out)
