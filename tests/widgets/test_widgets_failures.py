"""mclviz.widgets.failures: the FailureViewer pages through ranked failures."""

from __future__ import annotations

import pytest
import torch
from widget_inputs import random_images

from mclviz.evaluation import EvalData
from mclviz.models import build_model
from mclviz.widgets import FailureViewer


def _viewer(result, **kw):
    return FailureViewer(
        result,
        random_images(80),
        random_images(40, 1),
        {"far": random_images(30, 2), "near": random_images(30, 3)},
        class_names=["a", "b", "c", "d"],
        **kw,
    )


def test_failure_viewer_pages_through_ranked_failures(fast_result):
    v = _viewer(fast_result, per_page=4, k=3)
    assert v.page == 0 and v.n_pages == 8  # 30 OOD images, 4 a page
    assert len(v.titles) == 4 and len(v.figure.axes) == 4 * (3 + 1)
    assert v.titles[0].startswith("far #")
    scores = fast_result.score_out["far"][v.cases]
    assert bool((scores[:-1] >= scores[1:]).all())  # highest score first
    assert v.out.outputs[0]["data"]["image/png"]
    assert v.next() == 1 and list(v.page_cases) == list(v.cases[4:8])
    for _ in range(10):
        v.next()
    assert v.page == 7 and len(v.page_cases) == 2  # the last page stays put
    v.prev_button.click()
    assert v.page == 6
    v.set(ood="near")
    assert v.page == 0 and v.titles[0].startswith("near #")
    assert "page 1 of 8" in v.page_label.value


def test_failure_viewer_misclassified_and_table(fast_result):
    v = _viewer(fast_result, per_page=2, kind="misclassified")
    wrong = int((fast_result.pred != fast_result.test_labels).sum())
    table = v.table()
    assert len(table) == len(v.cases) == wrong
    assert (table["label"] != table["pred"]).all() and table["score"].is_monotonic_decreasing
    if wrong:
        assert v.titles[0].startswith("GT ")
    v.set(kind="ood")
    assert list(v.table().columns) == ["rank", "kind", "ood", "index", "score", "label", "pred"]
    assert (v.table()["label"] == -1).all()


def test_failure_viewer_checks_its_inputs(fast_result):
    with pytest.raises(ValueError, match="must be the images of result.z_train"):
        FailureViewer(fast_result, random_images(3), random_images(40), {"far": random_images(30)})
    with pytest.raises(ValueError, match="does not match result.z_ood"):
        FailureViewer(fast_result, random_images(80), random_images(40), {"far": random_images(2)})


def test_failure_viewer_from_model():
    torch.manual_seed(0)
    model = build_model("resnet18", width=0.125, proj_dim=4)
    data = EvalData(
        (random_images(40), torch.arange(40) % 2),
        (random_images(10, 1), torch.arange(10) % 2),
        {"noise": random_images(8, 2)},
    )
    v = FailureViewer.from_model(model, data, per_page=3, k=2)
    assert v.result.mode == "model" and len(v.titles) == 3
