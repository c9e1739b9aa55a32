"""mclviz.widgets.retrain: the RetrainPanel driven from code, fast and full mode."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from widget_inputs import feature_cache, random_images

from mclviz.config import Config
from mclviz.widgets import RetrainPanel

FAST = "Fast mode: projection head only, backbone frozen"
FULL = "Full mode: whole network"


@pytest.fixture()
def panel():
    return RetrainPanel(feature_cache(), projection="none", fast_epochs=2)


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
    assert "AUROC far: <b>" in panel.metrics_html.value
    assert f"{100 * r.auroc['far']:.1f}%" in panel.metrics_html.value  # one decimal
    assert "head retrained in" in panel.status.value and panel.seconds is not None


def test_the_mode_is_named_once(panel):
    panel.run()
    texts = [panel.banner.value, panel.status.value, panel.metrics_html.value]
    assert sum(t.count(FAST) for t in texts) == 1 and FAST in panel.banner.value


def test_alpha_and_beta_have_log_sliders(panel):
    for s in (panel.alpha, panel.beta):
        assert type(s).__name__ == "FloatLogSlider" and s.base == 10
        assert s.base**s.min == pytest.approx(0.01) and s.base**s.max == pytest.approx(5.0)
    assert panel.alpha.value == pytest.approx(0.05) and panel.beta.value == pytest.approx(2.5)
    # a drag of a sixth of the track from the paper's 0.05 (about 40 px of 250): a linear
    # slider over 0.01-5 jumps to 0.88; the log slider stays within a factor of 3
    span = panel.alpha.max - panel.alpha.min
    moved = 10 ** (np.log10(0.05) + span / 6)
    assert moved < 3 * 0.05 and 0.05 + (5 - 0.01) / 6 > 0.8
    # one keyboard step is a few percent, and a typed value is kept as typed
    assert 10**panel.alpha.step == pytest.approx(1.023, abs=1e-3)
    panel.set(alpha=0.123)
    assert panel.alpha.value == pytest.approx(0.123)
    with pytest.raises(ValueError, match="alpha=0.001 is below the slider's lowest value 0.01"):
        panel.set(alpha=0.001)


def test_labels_are_display_names(panel):
    assert ("MCL w/o aux", "mcl-noaux") in panel.method.options
    assert panel.ood.options == (("far", "far"), ("near", "near"))


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
    # the log sliders' bounds are exponents: 10 ** max == 1 / tau
    assert 10**panel.alpha.max == pytest.approx(2.0) and 10**panel.beta.max == pytest.approx(2.0)
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
    p = RetrainPanel(feature_cache(), projection="tsne", sample=60, fast_epochs=1)
    p.run()
    names = {t.name for t in p.figures["projection"].data}
    assert "far" in names and len(names) == 5  # the OOD set by name
    assert p.figures["projection"].layout.width is None  # its box's width
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
    x_train, labels = random_images(48), torch.arange(48) % 4
    test = (random_images(20, 1), torch.arange(20) % 4)
    ood = {"far": random_images(12, 2), "near": random_images(12, 3)}
    cfg = Config.preset("tiny", batch_size=16, precision="fp32")
    return RetrainPanel(
        feature_cache(),
        train=(x_train, labels),
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
            feature_cache(),
            train=(random_images(8), torch.arange(8) % 4),
            test=(random_images(4), torch.arange(4)),
            ood={"noise": random_images(4)},
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
    assert "whole network trained in" in p.status.value
    assert not p.run_button.disabled and p.stop_button.disabled


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


def test_from_data_shows_progress_while_caching(capsys):
    from mclviz.evaluation import EvalData
    from mclviz.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", width=0.125, proj_dim=4)
    data = EvalData(
        (random_images(16), torch.arange(16) % 2),
        (random_images(8, 1), torch.arange(8) % 2),
        {"noise": random_images(6, 2)},
    )
    p = RetrainPanel.from_data(model, data, views=2, projection="none", fast_epochs=1)
    err = capsys.readouterr().err
    # one bar per pass of the backbone: 2 views x 4 rotations of the 16 training images
    assert err.count("embed features: ") >= 8
    assert p.cache.n_views == 2
