"""The ipywidgets UIs driven from code: no browser, no kernel."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from mclviz.config import Config
from mclviz.models import build_model
from mclviz.retrain import FeatureCache, retrain_head
from mclviz.widgets import (
    FailureViewer,
    ProjectionExplorer,
    RetrainPanel,
    loss_curve,
    result_projection,
    result_scores,
)

FAST = "Fast mode: projection head only, backbone frozen"
FULL = "Full mode: whole network"


def _cache(n=80, classes=4, f=16, seed=0) -> FeatureCache:
    """Features with one cluster per class (so the retrained heads learn something)."""
    g = torch.Generator().manual_seed(seed)
    centers = 3 * torch.randn(classes, f, generator=g)

    def feats(labels, *shape):
        return centers[labels].view(len(labels), *[1] * len(shape), f) + torch.randn(
            len(labels), *shape, f, generator=g
        )

    y = torch.arange(n) % classes
    yt = torch.arange(40) % classes
    ood = {
        "far": 3 * torch.randn(30, 4, f, generator=g) + 6,
        "near": feats(torch.arange(30) % classes, 4) * 1.5,
    }
    return FeatureCache(
        views=feats(y, 4, 3),
        labels=y,
        train=feats(y, 4),
        test=feats(yt, 4),
        test_labels=yt,
        ood=ood,
        hidden=16,
        proj_dim=8,
    )


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


@pytest.fixture()
def panel():
    return RetrainPanel(_cache(), projection="none", fast_epochs=2)


# ----------------------------------------------------------------------------- import


def test_import_has_no_side_effects():
    code = (
        "import sys, mclviz.widgets; "
        "print(sorted(m for m in ('ipywidgets', 'plotly', 'matplotlib.pyplot') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_missing_ipywidgets_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        RetrainPanel(_cache())


# ----------------------------------------------------------------------------- RetrainPanel


def test_fast_mode_is_named_on_screen_and_full_mode_needs_data(panel):
    assert panel.mode_text == FAST and FAST in panel.banner.value
    assert panel.mode.disabled and not panel.full_available
    assert panel.full_box.layout.display == "none"
    with pytest.raises(ValueError, match="full mode needs train, test, ood and config"):
        panel.set(mode="full")


def test_run_draws_scores_loss_and_auroc(panel):
    r = panel.run()
    assert r.mode == "fast" and r.method == "mcl" and panel.result is r
    assert set(panel.figures) == {"scores", "loss"}
    data = panel.scores_out.outputs[0]["data"]
    assert len(data["application/vnd.plotly.v1+json"]["data"]) >= 3  # histograms + threshold
    assert [t.name for t in panel.figures["loss"].data] == ["loss", "ccm", "spa"]
    assert "AUROC far" in panel.metrics_html.value and FAST in panel.metrics_html.value
    assert FAST in panel.status.value and panel.seconds is not None


def test_moving_a_slider_retrains_and_moving_back_is_memoised(panel):
    first = panel.run()
    panel.alpha.value = 1.0  # auto: retrains at once
    assert panel.result is not first and panel.result.params["alpha"] == 1.0
    assert not torch.equal(panel.result.score_in, first.score_in)
    panel.alpha.value = 0.05
    assert panel.result is first
    panel.auto.value = False
    panel.lam.value = 0.5
    assert panel.result is first  # no retraining without auto
    assert panel.run().params["lam"] == 0.5


def test_tau_moves_the_alpha_beta_range(panel):
    panel.set(tau=0.5)
    assert panel.alpha.max == pytest.approx(2.0) and panel.beta.max == pytest.approx(2.0)
    assert panel.beta.value == pytest.approx(2.0)  # 2.5 clamped into (0, 1/tau]
    assert panel.result is None  # set() never retrains
    with pytest.raises(ValueError, match="alpha=3 exceeds 1/tau = 2"):
        panel.set(alpha=3.0)
    with pytest.raises(ValueError, match="unknown setting"):
        panel.set(temperature=0.3)


def test_sliders_that_do_not_apply_are_disabled(panel):
    panel.set(method="simclr")
    assert panel.alpha.disabled and panel.beta.disabled and panel.lam.disabled
    panel.set(method="ccm")
    assert not panel.alpha.disabled and panel.lam.disabled
    panel.set(method="mcl-noaux")
    assert not panel.lam.disabled
    assert panel.run().method == "mcl-noaux"


def test_errors_in_a_handler_are_shown_not_raised(panel):
    panel.retrain_kwargs = {"lr": -1.0}
    panel.alpha.value = 0.3  # the observer retrains and fails
    assert "lr=-1.0 must be &gt; 0" in panel.status.value and "b00020" in panel.status.value
    with pytest.raises(ValueError, match="lr=-1.0"):
        panel.run()


def test_projection_and_ood_switch():
    p = RetrainPanel(_cache(), projection="tsne", sample=60, fast_epochs=1)
    p.run()
    names = {t.name for t in p.figures["projection"].data}
    assert "OOD" in names and len(names) == 5
    p.ood.value = "near"
    assert "near" in p.figures["scores"].layout.title.text
    p.projection.value = "none"
    assert "projection" not in p.figures and p.projection_out.outputs == ()


@pytest.mark.slow
def test_export_writes_the_table_and_figures(panel, tmp_path):
    with pytest.raises(ValueError, match="call run"):
        panel.export(tmp_path)
    panel.run()
    paths = panel.export(tmp_path)
    assert set(paths) == {"table", "scores", "loss"}
    assert paths["table"].name == "retrain_fast.csv" and paths["table"].read_text().count("\n") == 3
    assert paths["scores"].read_bytes()[:4] == b"\x89PNG"


def _full_panel(epochs):
    images, labels = _images(48), torch.arange(48) % 4
    test = (_images(20, 1), torch.arange(20) % 4)
    ood = {"far": _images(12, 2), "near": _images(12, 3)}
    cfg = Config.preset("tiny", batch_size=16, precision="fp32")
    return RetrainPanel(
        _cache(),
        train=(images, labels),
        test=test,
        ood=ood,
        config=cfg,
        projection="none",
        full_epochs=epochs,
        method="ccm",
    )


def test_full_mode_needs_the_cached_ood_sets():
    with pytest.raises(ValueError, match=r"ood has the sets \['noise'\] but the cache has"):
        RetrainPanel(
            _cache(),
            train=(_images(8), torch.arange(8) % 4),
            test=(_images(4), torch.arange(4)),
            ood={"noise": _images(4)},
            config=Config.preset("tiny"),
        )


def test_full_mode_runs_the_whole_network_with_a_live_loss_curve():
    p = _full_panel(epochs=1)
    p.set(mode="full")
    assert p.mode_text == FULL and FULL in p.banner.value
    assert p.fast_box.layout.display == "none" and p.full_box.layout.display == ""
    p.alpha.value = 0.4  # in full mode a slider does not start a run
    assert p.result is None and "press Run" in p.status.value
    r = p.run(wait=True)
    assert r.mode == "full" and r.method == "ccm" and r.params["alpha"] == 0.4
    assert p.progress.value == p.progress.max == 3  # 48 images / 16 a step, 1 epoch
    assert [e["step"] for e in p.live] == [1.0, 2.0, 3.0]
    assert p.figures["loss"].layout.xaxis.title.text == "step"
    assert FULL in p.status.value and not p.run_button.disabled and p.stop_button.disabled


def test_stop_button_ends_a_full_run_early():
    p = _full_panel(epochs=40)
    p.set(mode="full")
    assert p.run(wait=False) is None and p.running
    assert not p.stop_button.disabled and p.run_button.disabled
    with pytest.raises(ValueError, match="still going"):
        p.run()
    deadline = time.monotonic() + 120
    while not p.live and time.monotonic() < deadline:
        time.sleep(0.05)
    p.stop_button.click()
    p.thread.join(timeout=120)
    assert not p.running and p.error is None
    assert p.result.stopped_early and p.progress.value < p.progress.max
    assert "stopped early" in p.status.value and not p.run_button.disabled


# ----------------------------------------------------------------------------- FailureViewer


@pytest.fixture(scope="module")
def fast_result():
    return retrain_head(_cache(), method="mcl", epochs=1)


def _viewer(result, **kw):
    return FailureViewer(
        result,
        _images(80),
        _images(40, 1),
        {"far": _images(30, 2), "near": _images(30, 3)},
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
        FailureViewer(fast_result, _images(3), _images(40), {"far": _images(30)})
    with pytest.raises(ValueError, match="does not match result.z_ood"):
        FailureViewer(fast_result, _images(80), _images(40), {"far": _images(2)})


def test_failure_viewer_from_model():
    from mclviz.evaluate import EvalData

    torch.manual_seed(0)
    model = build_model("resnet18", width=0.125, proj_dim=4)
    data = EvalData(
        (_images(40), torch.arange(40) % 2),
        (_images(10, 1), torch.arange(10) % 2),
        {"noise": _images(8, 2)},
    )
    v = FailureViewer.from_model(model, data, per_page=3, k=2)
    assert v.result.mode == "model" and len(v.titles) == 3


# ----------------------------------------------------------------------------- projections


def test_projection_explorer_switches_the_ood_set():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(30) % 3
    z = {"A": torch.randn(30, 5, generator=g), "B": torch.randn(30, 5, generator=g)}
    ood = {
        "o1": {"A": torch.randn(10, 5, generator=g), "B": torch.randn(10, 5, generator=g)},
        "o2": {"A": torch.randn(12, 5, generator=g), "B": torch.randn(12, 5, generator=g)},
    }
    e = ProjectionExplorer(z, y, ood, class_names=["x", "y", "z"], sample=None)
    fig = e.figure
    assert [a.text for a in fig.layout.annotations] == ["A", "B"]
    ood_traces = [t for t in fig.data if t.name == "OOD"]
    assert len(ood_traces) == 2 and len(ood_traces[0].x) == 10
    e.set(ood="o2")
    assert len([t for t in e.figure.data if t.name == "OOD"][0].x) == 12
    e.ood.value = "none"
    assert all(t.name != "OOD" for t in e.figure.data) and "OOD set: none" in e.status.value
    assert e.out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    with pytest.raises(ValueError, match="lacks the models"):
        ProjectionExplorer(z, y, {"o": {"A": torch.randn(3, 5)}})
    with pytest.raises(ValueError, match="unknown setting"):
        e.set(perplexity=5)


def test_projection_explorer_from_models():
    torch.manual_seed(0)
    models = {
        "m1": build_model("resnet18", width=0.125, proj_dim=4),
        "m2": build_model("resnet18", width=0.125, proj_dim=6),
    }
    e = ProjectionExplorer.from_models(
        models, (_images(20), torch.arange(20) % 2), {"noise": _images(8, 1)}, sample=None
    )
    assert e.z_test["m2"].shape == (20, 6) and e.z_ood["noise"]["m1"].shape == (8, 4)
    assert e.ood.value == "noise"


# ----------------------------------------------------------------------------- figures


def test_result_figures(fast_result):
    fig = result_projection(fast_result, ood="far", sample=None)
    assert fig.layout.annotations[0].text.startswith("fast (head) mcl (tau=0.2, alpha=0.05")
    assert sum(len(t.x) for t in fig.data) == 40 + 30
    assert result_scores(fast_result, ood="near").layout.meta["auroc"] == pytest.approx(
        fast_result.auroc["near"]
    )
    with pytest.raises(ValueError, match="ood='nope' is not in the result"):
        result_scores(fast_result, ood="nope")
    lc = loss_curve([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}], x="step")
    assert [t.name for t in lc.data] == ["loss"] and list(lc.data[0].y) == [2.0, 1.5]
