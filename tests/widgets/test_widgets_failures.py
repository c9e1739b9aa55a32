"""mclviz.widgets.failures: the FailureViewer pages through ranked failures; its counts say
what they count, its labels fit, and exporting never changes what it shows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from widget_inputs import random_images

from mclviz.evaluation import EvalData
from mclviz.metrics import threshold_at_tpr
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


def _accepted(result, ood: str) -> int:
    """OOD images at or above the 95%-TPR threshold, counted here."""
    t = threshold_at_tpr(result.score_in, 0.95)
    return int((np.asarray(result.score_out[ood]) >= t).sum())


def test_failure_viewer_pages_through_the_accepted_ood_images(fast_result):
    v = _viewer(fast_result, per_page=2, k=3)
    n = _accepted(fast_result, "near")
    assert n >= 4  # the "near" set overlaps the test classes: many are accepted
    v.set(ood="near")
    assert v.page == 0 and len(v.cases) == n and v.n_pages == -(-n // 2)
    assert len(v.titles) == 2 and len(v.figure.axes) == 2 * (3 + 1)
    assert v.titles[0].startswith("OOD #")
    scores = fast_result.score_out["near"][v.cases]
    assert bool((scores[:-1] >= scores[1:]).all())  # highest score first
    assert bool((scores >= v.threshold).all())  # only those the detector accepts
    assert v.out.outputs[0]["data"]["image/png"]
    assert v.next() == 1 and list(v.page_cases) == list(v.cases[2:4])
    for _ in range(n):
        v.next()
    assert v.page == v.n_pages - 1  # the last page stays put
    v.prev_button.click()
    assert v.page == max(v.n_pages - 2, 0)


def test_the_count_says_what_it_counts(fast_result):
    v = _viewer(fast_result, per_page=4, ood="near")
    n = _accepted(fast_result, "near")
    assert f"page 1 of {-(-n // 4)}: {n} of 30 near images are accepted as in-distribution" in (
        v.page_label.value
    )
    assert "keeps 95% of the test images" in v.page_label.value
    assert "failures" not in v.page_label.value  # not "30 failures" for every OOD image
    wrong = int((fast_result.pred != fast_result.test_labels).sum())
    v.set(kind="misclassified")
    assert f"{wrong} of 40 test images are misclassified" in v.page_label.value


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
    assert (v.table()["label"] == -1).all() and len(v.table()) == _accepted(fast_result, "far")


def test_export_and_reading_never_change_what_is_shown(fast_result, tmp_path):
    v = _viewer(fast_result, per_page=3)
    v.set(ood="near")
    v.next()
    shown = (v.kind.value, v.ood.value, v.page, list(v.page_cases), v.out.outputs, v.titles)
    label = v.page_label.value
    paths = v.export(tmp_path)
    v.table("far", "misclassified")
    v.gallery("far", "ood", page=0)
    assert (v.kind.value, v.ood.value, v.page, list(v.page_cases), v.out.outputs, v.titles) == (
        shown
    )
    assert v.page_label.value == label
    names = {p.name for p in paths.values()}
    assert {"failures_ood_far.csv", "failures_ood_near.csv", "failures_misclassified.csv"} <= names
    assert "failures_ood_near.png" in names
    assert paths["failures_ood_near.png"].read_bytes()[:4] == b"\x89PNG"


def test_labels_fit_their_buttons_and_name_the_sets(fast_result):
    v = _viewer(fast_result)
    labels = [label for label, _ in v.kind.options]
    assert v.kind.style.button_width == "auto"  # the button takes its label's width
    assert all(len(label) <= 16 for label in labels)
    assert len(v.kind.tooltips) == 2 and "95%-TPR threshold" in v.kind.tooltips[0]
    assert v.ood.options == (("far", "far"), ("near", "near"))  # display name, key
    w = FailureViewer(
        fast_result,
        random_images(80),
        random_images(40, 1),
        {"far": random_images(30, 2)},
    )
    assert w.ood.label == "far"


def test_failure_viewer_checks_its_inputs(fast_result):
    with pytest.raises(ValueError, match="must be the images of result.z_train"):
        FailureViewer(fast_result, random_images(3), random_images(40), {"far": random_images(30)})
    with pytest.raises(ValueError, match="does not match result.z_ood"):
        FailureViewer(fast_result, random_images(80), random_images(40), {"far": random_images(2)})
    v = _viewer(fast_result)
    with pytest.raises(ValueError, match="kind='both'"):
        v.table(kind="both")


def test_failure_viewer_from_model():
    torch.manual_seed(0)
    model = build_model("resnet18", width=0.125, proj_dim=4)
    data = EvalData(
        (random_images(40), torch.arange(40) % 2),
        (random_images(10, 1), torch.arange(10) % 2),
        {"noise": random_images(8, 2)},
    )
    v = FailureViewer.from_model(model, data, per_page=3, k=2, kind="misclassified")
    assert v.result.mode == "model" and len(v.titles) == min(3, len(v.cases))
