"""mclviz.widgets.figures: the figures of one RetrainResult."""

from __future__ import annotations

import pytest

from mclviz.widgets import loss_curve, result_projection, result_scores


def test_result_figures(fast_result):
    fig = result_projection(fast_result, ood="far", sample=None)
    assert (
        fig.layout.annotations[0]
        .text.replace("<br>", " ")
        .startswith("MCL, head retrained: tau=0.2, alpha=0.05")
    )
    assert "far" in {t.name for t in fig.data}  # the OOD set, not a bare "OOD"
    assert sum(len(t.x) for t in fig.data) == 40 + 30
    assert result_scores(fast_result, ood="near").layout.meta["auroc"] == pytest.approx(
        fast_result.auroc["near"]
    )
    with pytest.raises(ValueError, match="ood='nope' is not in the result"):
        result_scores(fast_result, ood="nope")
    lc = loss_curve([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}], x="step")
    assert [t.name for t in lc.data] == ["loss"] and list(lc.data[0].y) == [2.0, 1.5]
    assert lc.layout.width is None and lc.layout.meta["export_size"] == [640, 320]
    scores = result_scores(fast_result, ood="near")
    assert scores.layout.width is None and "AUROC" in scores.layout.title.text
