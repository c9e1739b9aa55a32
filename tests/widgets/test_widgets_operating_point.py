"""mclviz.widgets.operating_point: the OperatingPointExplorer at one threshold of Eq. 14.

Fixtures are real :class:`~mclviz.evaluation.Scores` of the scoring pipeline on random
embeddings (class Gaussians with 1 and 4 SEI views, MSP on random logits), and a copy
with rounded scores (ties). Every number the explorer shows is checked against
``sklearn.metrics`` at the same threshold.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score
from widget_inputs import random_images

from mclviz.checkpoint import Checkpoint, build_model_from_config
from mclviz.config import Config
from mclviz.evaluation import DetectorScores, EvalData, Outputs, Scores, score
from mclviz.metrics import operating_point, threshold_at_fpr, threshold_at_tpr
from mclviz.scoring import MSP, ClassGaussians
from mclviz.widgets import OperatingPointExplorer

N_TRAIN, N_TEST, N_FAR, N_NEAR, CLASSES, DIM = 120, 80, 60, 50, 4, 8
NAMES = ["cat", "dog", "ship", "frog"]


def _scores(method: str = "mcl", seed: int = 0) -> Scores:
    """The pipeline's Scores on random embeddings: 4 clusters, a far and a near OOD set."""
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(CLASSES, DIM, generator=g)

    def z(labels, views=4, spread=1.0, shift=0.0):  # (n, views, DIM)
        noise = torch.randn(len(labels), views, DIM, generator=g)
        return centres[labels][:, None] * spread + shift + noise

    y, yt = torch.arange(N_TRAIN) % CLASSES, torch.arange(N_TEST) % CLASSES
    data = EvalData(
        (random_images(N_TRAIN), y),
        (random_images(N_TEST, 1), yt),
        {"far": random_images(N_FAR, 2), "near": random_images(N_NEAR, 3)},
    )
    tensors = {
        ("z", "train"): z(y),
        ("z", "test"): z(yt),
        ("z", "ood:far"): z(torch.zeros(N_FAR, dtype=torch.long), shift=4.0),
        ("z", "ood:near"): z(torch.arange(N_NEAR) % CLASSES, spread=1.6),
    }
    for split, n in (
        ("train", N_TRAIN),
        ("test", N_TEST),
        ("ood:far", N_FAR),
        ("ood:near", N_NEAR),
    ):
        tensors[("logits", split)] = torch.randn(n, 1, CLASSES, generator=g)
    outputs = Outputs.from_tensors(tensors, data)
    dets = [
        ClassGaussians(views=1, covariance="tied"),
        ClassGaussians(views=4, aggregation="avg", covariance="tied"),
        ClassGaussians(views=4, aggregation="w-avg", covariance="tied"),
        MSP(),
    ]
    return score(outputs, dets, method=method)


@pytest.fixture(scope="module")
def scores() -> Scores:
    return _scores()


@pytest.fixture(scope="module")
def tied(scores) -> Scores:
    """The w-avg detector's scores rounded to a coarse grid: many ties within and across sets."""
    key = next(k for k in scores.results if "w-avg" in k)
    r = scores[key]

    def rnd(t):
        return torch.round(t * 2) / 2

    results = {
        key: DetectorScores(
            r.detector,
            rnd(r.score_in),
            {k: rnd(v) for k, v in r.score_out.items()},
            r.pred,
            r.pred_out,
            r.accuracy,
        )
    }
    return Scores(scores.outputs, results, method="mcl")


def _explorer(scores, **kw) -> OperatingPointExplorer:
    kw.setdefault("class_names", NAMES)
    return OperatingPointExplorer(scores, **kw)


def _sklearn_point(s_in: np.ndarray, s_out: np.ndarray, t: float) -> dict:
    """TPR, FPR, precision, accuracy and counts of the decision score >= t, by sklearn
    (compared in float64, as the explorer does)."""
    s_in, s_out = np.asarray(s_in, dtype=np.float64), np.asarray(s_out, dtype=np.float64)
    y = np.r_[np.ones(len(s_in), dtype=int), np.zeros(len(s_out), dtype=int)]
    pred = (np.r_[s_in, s_out] >= t).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "ind_accepted": tp,
        "ind_rejected": fn,
        "ood_accepted": fp,
        "ood_rejected": tn,
        "tpr": tp / len(s_in),
        "fpr": fp / len(s_out),
        "precision": precision_score(y, pred, zero_division=np.nan),
        "accuracy": accuracy_score(y, pred),
    }


def _check_against_sklearn(ex: OperatingPointExplorer) -> None:
    s_in, s_out, t = ex.src.score_in, ex.src.score_out, ex.threshold
    m, want = ex.metrics, _sklearn_point(s_in, s_out, t)
    for k in ("ind_accepted", "ind_rejected", "ood_accepted", "ood_rejected"):
        assert m[k] == want[k], k
    for k in ("tpr", "fpr", "accuracy"):
        assert m[k] == pytest.approx(want[k], abs=1e-12), k
    if np.isnan(want["precision"]):
        assert np.isnan(m["precision"])
    else:
        assert m["precision"] == pytest.approx(want["precision"], abs=1e-12)
    ref = operating_point(s_in, s_out, t)
    assert m.keys() == ref.keys() and all(
        m[k] == ref[k] or (np.isnan(m[k]) and np.isnan(ref[k])) for k in m
    )
    # the labels say what they count, with the same numbers
    html = ex.metrics_html.value
    assert (
        f"{ex.src.ood} images accepted as in-distribution: {want['ood_accepted']} of {len(s_out)}"
        in html
    )
    assert f"test images accepted as in-distribution: {want['ind_accepted']} of {len(s_in)}" in html
    assert f"test images rejected as OOD: {want['ind_rejected']} of {len(s_in)}" in html


def _thresholds(ex: OperatingPointExplorer) -> list[float]:
    allv = np.unique(np.r_[ex.src.score_in, ex.src.score_out])
    picks = allv[np.linspace(0, len(allv) - 1, 9).round().astype(int)]  # some exact scores
    return [*picks.tolist(), float((allv[3] + allv[4]) / 2), ex.slider.min, ex.slider.max]


@pytest.mark.parametrize("fixture", ["scores", "tied"])
def test_slider_and_set_match_sklearn(fixture, request):
    ex = _explorer(request.getfixturevalue(fixture), ood="far")
    for t in _thresholds(ex):
        ex.slider.value = t  # as a user dragging the slider
        assert ex.threshold == t
        _check_against_sklearn(ex)
        ex.set(threshold=t + 0.25)  # the programmatic API
        assert ex.threshold == t + 0.25
        _check_against_sklearn(ex)


def test_tpr_gives_the_largest_threshold_keeping_it(scores):
    ex = _explorer(scores, ood="near")
    s_in = ex.src.score_in
    for rate in (0.9, 0.95, 0.99, 1.0):
        ex.set(tpr=rate)
        t = ex.threshold
        assert t == threshold_at_tpr(s_in, rate)
        assert ex.metrics["tpr"] >= rate
        assert np.mean(s_in >= np.nextafter(t, np.inf)) < rate  # any larger one loses TPR
        assert not any(np.mean(s_in >= c) >= rate for c in s_in[s_in > t])
    assert _explorer(scores, ood="near").threshold == threshold_at_tpr(s_in, 0.95)  # the start


def test_preset_buttons(scores, tied):
    for sc in (scores, tied):
        ex = _explorer(sc, ood="far")
        by_label = {b.description: b for b in ex.preset_buttons}
        by_label["TPR = 95%"].click()
        assert ex.threshold == threshold_at_tpr(ex.src.score_in, 0.95)
        assert ex.to_dict()["set_by"] == "tpr=0.95"
        by_label["FPR = 5%"].click()
        t = threshold_at_fpr(ex.src.score_out, 0.05)
        assert ex.threshold == t and ex.metrics["fpr"] <= 0.05
        below = np.nextafter(np.float32(t), np.float32(-np.inf))  # the scores are float32
        assert np.mean(ex.src.score_out >= below) > 0.05  # the smallest
        _check_against_sklearn(ex)
        ex.slider.value = ex.slider.min  # a user's move forgets the preset
        assert ex.to_dict()["set_by"] == "threshold"


def test_a_preset_survives_the_browser_snapping_the_slider_to_its_step(scores):
    # the front end rounds the slider's value to min + k * step and sends it back; the
    # preset's exact threshold must hold (at TPR = 99% the snapped value rejected more)
    ex = _explorer(scores, ood="far")
    sl = ex.slider
    for rate in (0.99, 0.95, 0.9):
        ex.set(tpr=rate)
        t = threshold_at_tpr(ex.src.score_in, rate)
        # noUiSlider rounds to the nearest step, in floating point
        for noise in (0.0, 1e-12, -1e-12):
            sl.value = sl.min + np.round((t - sl.min) / sl.step) * sl.step + noise
            assert ex.threshold == t and ex.metrics["tpr"] >= rate
            assert ex.to_dict()["set_by"] == f"tpr={rate:g}"
    sl.value = ex.threshold + 2 * sl.step  # a real move: the slider's own value
    assert ex.threshold == sl.value and ex.to_dict()["set_by"] == "threshold"
    assert ex.metrics["tpr"] == np.mean(ex.src.score_in >= sl.value)


@pytest.mark.parametrize("fixture", ["scores", "tied"])
def test_galleries_follow_the_threshold(fixture, request):
    sc = request.getfixturevalue(fixture)
    ex = _explorer(sc, ood="far", n_shown=4)
    s_in, s_out = ex.src.score_in, ex.src.score_out

    def expected(t):
        acc = np.flatnonzero(s_out >= t)
        acc = acc[np.lexsort((acc, -s_out[acc]))]  # highest first, ties by lower index
        rej = np.flatnonzero(s_in < t)
        rej = rej[np.lexsort((rej, s_in[rej]))]  # lowest first
        return acc, rej

    seen = set()
    for t in _thresholds(ex):
        ex.set(threshold=t)
        acc, rej = expected(t)
        assert ex.accepted_ood.tolist() == acc.tolist()
        assert ex.rejected_in.tolist() == rej.tolist()
        assert ex.shown_ood.tolist() == acc[:4].tolist()
        assert ex.shown_in.tolist() == rej[:4].tolist()
        shown = [int(i) for i in re.findall(r"data-index='(\d+)'", ex.gallery_ood.value)]
        assert shown == acc[:4].tolist()
        shown = [int(i) for i in re.findall(r"data-index='(\d+)'", ex.gallery_in.value)]
        assert shown == rej[:4].tolist()
        assert ex.gallery_ood.value.count("training image #") == 3 * len(acc[:4])  # k=3
        # the titles count every accepted / rejected image, not only those shown
        assert f"far images accepted as in-distribution</b>: {len(acc)} of {N_FAR}" in (
            ex.gallery_ood_title.value
        )
        assert f"test images rejected as OOD</b>: {len(rej)} of {N_TEST}" in (
            ex.gallery_in_title.value
        )
        seen.add((ex.gallery_ood.value, ex.gallery_in.value))
    assert len(seen) >= 3  # the galleries changed as the threshold moved
    ex.set(threshold=ex.slider.max + 1)
    assert len(ex.accepted_ood) == 0 and "none: every far image scores below δ" in (
        ex.gallery_ood.value
    )


def test_gallery_cards_carry_score_class_and_neighbours(scores):
    ex = _explorer(scores, ood="far", n_shown=3, k=2)
    ex.set(threshold=ex.slider.min)  # accept everything
    i = int(ex.shown_ood[0])
    card = ex.gallery_ood.value
    assert f"score {ex.src.score_out[i]:.4g}" in card
    assert f"taken for {NAMES[int(ex.src.pred_out[i])]}" in card
    _, dist, nn_idx = ex._neighbours["ood"]
    assert nn_idx.shape == (3, 2) and bool((np.diff(dist, axis=1) >= 0).all())
    t = int(nn_idx[0, 0])
    assert f"training image #{t}: {NAMES[int(ex.src.train_labels[t])]}" in card
    ex.set(threshold=ex.slider.max + 1)  # reject every test image
    j = int(ex.shown_in[0])
    assert f"GT {NAMES[int(ex.src.test_labels[j])]}" in ex.gallery_in.value


def test_histogram_moves_shapes_and_keeps_its_bars(scores):
    ex = _explorer(scores, ood="far")
    fig, bars = ex.figure, [tr.y for tr in ex.figure.data]
    for t in _thresholds(ex)[:4]:
        ex.set(threshold=t)
        assert ex.figure is fig and [tr.y for tr in fig.data] == bars
        line, rect = fig.layout.shapes[1], fig.layout.shapes[0]
        assert line.x0 == line.x1 == t and rect.x1 == max(t, rect.x0)
        assert f"δ = {t:.4g}" in fig.layout.annotations[0].text
        entry = ex.hist_out.outputs[0]
        assert "application/vnd.plotly.v1+json" in entry["data"]
        shapes = entry["data"]["application/vnd.plotly.v1+json"]["layout"]["shapes"]
        assert shapes[1]["x0"] == t
    # the counts shown by the bars are the scores' histogram
    counts = [int(c) for c in fig.data[1].customdata]
    assert sum(counts) == len(ex.src.score_out)


def test_layout_fits_a_notebook_column(scores):
    ex = _explorer(scores)
    # auto width capped at the column: a "100%" width plus ipywidgets' margins overflowed
    # the cell by 2 px in JupyterLab (the browser test measures it)
    assert ex.widget.layout.width == "auto" and ex.widget.layout.max_width == "min(100%, 1200px)"
    for child in (ex.slider, ex.header, ex.metrics_html, ex.hist_out, ex.status):
        assert child.layout.width == "auto" and child.layout.max_width == "100%"
    assert ex.figure.layout.autosize and ex.figure.layout.width is None
    for b in ex.preset_buttons:
        assert b.tooltip  # every preset says what it picks


def test_export_writes_the_view_and_the_metrics(scores, tmp_path):
    ex = _explorer(scores, ood="near", n_shown=2).set(tpr=0.9)
    paths = ex.export(tmp_path / "op", formats=("png", "svg"))
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [f"{n}.{f}" for n in ("scores", "accepted_ood", "rejected_in") for f in ("png", "svg")]
        + ["operating_point.json"]
    )
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[-1].name == "operating_point.json"
    saved = json.loads(paths[-1].read_text())
    m = ex.metrics
    for k in ("threshold", "tpr", "fpr", "precision", "accuracy", "ind_accepted", "ood_rejected"):
        assert saved[k] == m[k], k
    assert saved["set_by"] == "tpr=0.9" and saved["ood"] == "near"
    assert saved["detector"] == ex.src.key and saved["shown_accepted_ood"] == ex.shown_ood.tolist()
    # the Export button reports a bad folder in the status line instead of raising
    ex.export_folder.value = ""
    ex.export_button.click()
    assert "export folder is empty" in ex.status.value


def test_json_writes_an_undefined_precision_as_null(scores, tmp_path):
    ex = _explorer(scores)
    ex.set(threshold=ex.slider.max + 1)  # nothing accepted
    assert np.isnan(ex.metrics["precision"]) and ex.to_dict()["precision"] is None
    assert "undefined: nothing is accepted" in ex.metrics_html.value
    json.dumps(ex.to_dict(), allow_nan=False)


def test_default_detector(scores):
    ex = _explorer(scores)
    d = ex.src
    assert "views=4/aggregation=w-avg/variant=paper" in d.key  # most SEI views, w-avg, paper
    assert d.ood == "far"
    ce = Scores(scores.outputs, scores.results, method="ce")  # a classifier: MSP
    assert _explorer(ce).src.key == "msp"
    assert _explorer(scores, detector="msp").src.key == "msp"  # by unique name
    det = scores[d.key].detector
    assert _explorer(scores, detector=det).src.key == d.key  # by object


def test_bad_arguments_name_the_value_and_the_fix(scores):
    with pytest.raises(ValueError, match=r"detector='knn' is not in these scores.*pass one of"):
        _explorer(scores, detector="knn")
    with pytest.raises(ValueError, match=r"detector='gaussians'.*3 detectors are named"):
        _explorer(scores, detector="gaussians")
    with pytest.raises(ValueError, match=r"ood='svhn' is not an OOD set.*\['far', 'near'\]"):
        _explorer(scores, ood="svhn")
    with pytest.raises(ValueError, match=r"tpr=1.5 is outside \(0, 1\]; pass e.g. tpr=0.95"):
        _explorer(scores, tpr=1.5)
    ex = _explorer(scores)
    before = ex.threshold
    for kwargs, match in [
        ({"tpr": 0.0}, r"tpr=0.0 is outside \(0, 1\]"),
        ({"fpr": 1.0}, r"fpr=1.0 is outside \[0, 1\)"),
        ({"threshold": float("nan")}, r"threshold=nan must be a finite number"),
        ({}, r"pass exactly one of threshold=, tpr= or fpr="),
        ({"tpr": 0.9, "threshold": 1.0}, r"exactly one .*\['threshold', 'tpr'\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            ex.set(**kwargs)
    assert ex.threshold == before  # a refused call changes nothing
    with pytest.raises(ValueError, match=r"n_shown=0 must be a positive integer"):
        _explorer(scores, n_shown=0)
    wrong = EvalData(scores.outputs.data.train, scores.outputs.data.test, {"far": random_images(3)})
    with pytest.raises(
        ValueError, match=r"data.ood\['far'\] holds 3 images but the scores have 60"
    ):
        _explorer(scores, data=wrong)
    z_as_images = EvalData(
        (torch.zeros(N_TRAIN, 4, DIM), torch.zeros(N_TRAIN)), scores.outputs.data.test, {}
    )
    with pytest.raises(ValueError, match=r"data.train is a .* expected uint8 images"):
        _explorer(scores, data=z_as_images)
    with pytest.raises(TypeError, match="pass the Scores of evaluate"):
        OperatingPointExplorer({"far": [1.0]})


def test_from_a_retrain_result(fast_result):
    data = EvalData(
        (random_images(80), fast_result.train_labels),
        (random_images(40, 1), fast_result.test_labels),
        {"far": random_images(30, 2), "near": random_images(30, 3)},
    )
    with pytest.raises(ValueError, match="a RetrainResult carries no images; pass data="):
        OperatingPointExplorer(fast_result)
    with pytest.raises(ValueError, match="holds one detector's scores; pass detector=None"):
        OperatingPointExplorer(fast_result, data, detector="msp")
    ex = OperatingPointExplorer(fast_result, data, ood="near").set(fpr=0.1)
    assert ex.src.key.startswith("class Gaussians")
    want = _sklearn_point(
        fast_result.score_in.numpy(), fast_result.score_out["near"].numpy(), ex.threshold
    )
    assert ex.metrics["ood_accepted"] == want["ood_accepted"] and ex.metrics["fpr"] <= 0.1


@pytest.mark.parametrize("method", ["ce", "mcl"])
def test_from_model(method):
    torch.manual_seed(0)
    extra = {"num_classes": 2} if method == "ce" else {}
    cfg = Config.preset("tiny", method=method, **extra)
    ck = Checkpoint(model=build_model_from_config(cfg).eval(), config=cfg)
    data = EvalData(
        (random_images(80), torch.arange(80) % 2),  # more images than feature dimensions
        (random_images(10, 1), torch.arange(10) % 2),
        {"noise": random_images(8, 2)},
    )
    ex = OperatingPointExplorer.from_model(ck, data, n_shown=2, k=2)
    if method == "ce":  # a classifier: MSP, neighbours in the encoder features
        assert ex.src.key == "msp"
        assert ex.src.z_train.shape[1] == ck.model.feat_dim
    else:  # trained with rotation labels: 4-way SEI Gaussians, neighbours in z
        assert "views=4/aggregation=w-avg" in ex.src.key
        assert ex.src.z_train.shape[1] == cfg.proj_dim
    assert ex.threshold == threshold_at_tpr(ex.src.score_in, 0.95)
    _check = _sklearn_point(ex.src.score_in, ex.src.score_out, ex.threshold)
    assert ex.metrics["ind_accepted"] == _check["ind_accepted"]
