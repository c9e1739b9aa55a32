import pytest

from mclviz.config import METHODS, PRESETS, Config


def test_paper_preset_matches_section_4():
    c = Config.preset("paper")
    assert (c.arch, c.proj_dim, c.batch_size, c.tau, c.alpha, c.beta, c.lam) == (
        "resnet34",
        128,
        1024,
        0.2,
        0.05,
        2.5,
        1.0,
    )
    assert (c.momentum, c.weight_decay, c.warmup_epochs) == (0.9, 1e-6, 0.0)
    assert c.learning_rate == pytest.approx(1.2)  # 0.3 x 1024 / 256


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("method", [m for m in METHODS if m != "msc"])
def test_every_preset_and_method_builds(name, method):
    c = Config.preset(name, method=method)
    assert Config.from_json(c.to_json()) == c
    assert c.uses_rotation == (method in ("mcl", "rot"))


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match="unknown config field 'alhpa'.*did you mean 'alpha'"):
        Config.preset("tiny", alhpa=0.1)
    with pytest.raises(ValueError, match="unknown config field 'nope'"):
        Config.from_dict({"nope": 1})


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"alpha": 6.0}, r"alpha=6.0 must lie in \(0, 1/tau\]"),
        ({"beta": 0.0}, "beta=0.0"),
        ({"tau": 0.0}, "tau=0.0"),
        ({"method": "byol"}, "method='byol'"),
        ({"precision": "fp8"}, "precision='fp8'"),
        ({"method": "msc"}, "normal_class"),
        ({"epochs": 0}, "epochs=0"),
    ],
)
def test_bad_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        Config.preset("tiny", **overrides)


def test_parse_value_types():
    assert Config.parse_value("alpha", "0.1") == 0.1
    assert Config.parse_value("epochs", "3") == 3
    assert Config.parse_value("lr", "none") is None
    assert Config.parse_value("channels_last", "false") is False
    assert Config.parse_value("known_classes", "0,1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="epochs='three'"):
        Config.parse_value("epochs", "three")
    with pytest.raises(ValueError, match="unknown config field"):
        Config.parse_value("epoch", "3")


def test_mask_bounds_only_bind_masked_methods():
    assert Config.preset("tiny", method="simclr", tau=0.5).tau == 0.5
    with pytest.raises(ValueError, match="beta=2.5 must lie in"):
        Config.preset("tiny", method="mcl", tau=0.5)


def test_replace_checks_fields():
    c = Config.preset("tiny")
    assert c.replace(alpha=0.1).alpha == 0.1
    with pytest.raises(ValueError, match="unknown config field"):
        c.replace(alpah=0.1)
