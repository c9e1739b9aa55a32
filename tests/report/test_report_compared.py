"""mclviz.report.compared: settings, the models of the comparison and their checks."""

from __future__ import annotations

from mclviz.config import Config
from mclviz.names import detector_name
from mclviz.report import OPEN_SET
from mclviz.report.compared import (
    DETECTOR_LABELS,
    MSP,
    ComparedModel,
    Setting,
    config_mismatch,
    expected_config,
    missing_reason,
    no_sei,
    sei,
)


def test_setting_keys_and_labels():
    assert sei("mcl").key() == "mcl/gaussians/8/w-avg/paper"
    assert no_sei("mcl").key() == "mcl/gaussians/1/none/paper"
    # models and detectors by their mclviz.names display names
    assert no_sei("ce").label() == "cross-entropy, class Gaussians, no SEI"
    assert (
        Setting("ce", "odin")
        .label()
        .startswith("cross-entropy, ODIN (T=1000, input pre-processing")
    )
    lee = Setting("ce", "mahalanobis+pre")
    assert lee.key() == "ce/mahalanobis+pre/1/none/paper"
    assert lee.label().startswith("cross-entropy, Mahalanobis + input preprocessing (Lee et al.")
    assert "eps=0.002" in lee.label()
    assert "preprocessing" not in Setting("ce", "mahalanobis").label()
    assert no_sei("supclr").label() == "SupCLR, no SEI"
    assert sei("rot", 4, "max").label() == "cross-entropy + rotation, 4-way SEI max"
    assert MSP["rot"].label() == "cross-entropy + rotation, MSP"
    assert Setting("mcl", "gaussians", 8, "avg", "official").label() == (
        "MCL, 8-way SEI avg (official)"
    )
    assert no_sei(OPEN_SET).label() == "MCL (open set), no SEI"
    for key, label in DETECTOR_LABELS.items():
        assert label.startswith(detector_name(key)), (key, label)


def test_each_model_is_checked_against_the_config_it_must_have():
    assert config_mismatch("mcl", Config.preset("tiny", method="mcl")) == ""
    assert "'mcl' model" in config_mismatch("ce", Config.preset("tiny", method="mcl"))
    openset = Config.preset("tiny", **expected_config(OPEN_SET))
    assert openset.known_classes == [0, 1, 2, 3, 4, 5] and config_mismatch(OPEN_SET, openset) == ""
    plain = config_mismatch(OPEN_SET, Config.preset("tiny", method="mcl"))
    assert "not mcl trained on known classes" in plain
    assert "known_classes" in config_mismatch("mcl", openset)


def test_models_not_evaluated_say_why():
    models = {"ce": ComparedModel("ce", status="no checkpoint for ce"), "mcl": ComparedModel("mcl")}
    assert missing_reason(models, ["ce", "rot", "ce"]) == "no checkpoint for ce; rot not in methods"
    assert not models["mcl"].ok and models["mcl"].row(no_sei("mcl"), "gaussian") is None
    assert ComparedModel.for_name("mcl").sei == (1, 4, 8) and ComparedModel.for_name("ce").sei == (
        1,
    )
    assert ComparedModel.for_name(OPEN_SET).sei == (1, 4, 8)
