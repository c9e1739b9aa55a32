"""Tests for mclviz.config: presets, validation through the method registry, migration."""

import pytest

from mclviz import methods
from mclviz.config import PRESETS, Config


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
    assert (c.lr_schedule, c.nesterov, c.ema_decay, c.rotations_per_image, c.aux_ce) == (
        "cosine",
        False,
        0.0,
        4,
        0.0,
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("method", [m for m in methods.names() if m != "msc"])
def test_every_preset_and_method_builds(name, method):
    c = Config.preset(name, method=method)
    assert Config.from_json(c.to_json()) == c
    assert c.uses_rotation == (method in ("mcl", "rot"))
    assert c.method_entry is methods.get(method)


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


@pytest.mark.parametrize(
    "overrides, match",
    [
        # an unknown backbone names the field, the value and the choices (fastnet among them)
        ({"arch": "fastnet2"}, r"arch='fastnet2' is not known; choose one of .*'fastnet'"),
        # one rotation per step is for the methods with rotation labels only
        (
            {"method": "simclr", "rotations_per_image": 1},
            r"rotations_per_image=1 applies to .*\['mcl', 'rot'\].*method='simclr'.*leave it at 4",
        ),
        ({"method": "mcl", "rotations_per_image": 2}, r"rotations_per_image=2: choose 4 .* or 1"),
        ({"ema_decay": 1.0}, r"ema_decay=1.0 must lie in \[0, 1\): 0 turns the weight average off"),
        ({"ema_decay": -0.1}, r"ema_decay=-0.1 must lie in \[0, 1\)"),
        ({"method": "ce", "label_smoothing": 1.0}, r"label_smoothing=1.0 must lie in \[0, 1\)"),
        ({"label_smoothing": -0.2}, r"label_smoothing=-0.2 must lie in \[0, 1\)"),
        (
            {"method": "ce", "aux_ce": 0.5},
            r"aux_ce=0.5 is for the contrastive methods; method='ce'.*set aux_ce=0",
        ),
        ({"method": "rot", "aux_ce": 0.5}, r"aux_ce=0.5 is for the contrastive.*method='rot'"),
        ({"aux_ce": -1.0}, r"aux_ce=-1.0 must be >= 0"),
        ({"lr_schedule": "step"}, r"lr_schedule='step': choose 'cosine' or 'linear'"),
        ({"bn_momentum": 0.0}, r"bn_momentum=0.0 must lie in \(0, 1\]"),
        ({"ce_augment": "cutout"}, r"ce_augment='cutout': choose 'crop' or 'translate'"),
        ({"holdout": -1}, r"holdout=-1 must be >= 0"),
        ({"num_classes": 0}, r"num_classes=0 must be >= 1, or None"),
    ],
)
def test_new_fields_name_the_field_and_the_fix(overrides, match):
    with pytest.raises(ValueError, match=match):
        Config.preset("tiny", **overrides)


def test_rotations_per_image_one_is_accepted_by_rotation_methods():
    for method in ("mcl", "rot"):
        c = Config.preset("tiny", method=method, rotations_per_image=1)
        assert c.rotations_per_image == 1 and c.views_per_image == 2


def test_old_configs_move_num_classes_out_of_extra():
    """Configs saved before ``num_classes`` was a field (the shipped ``ce`` / ``rot``) kept it
    in ``extra``; ``from_dict`` moves it and keeps the other notes."""
    old = Config.preset("small", method="ce").to_dict()
    old.pop("num_classes")
    for new_field in ("lr_schedule", "ema_decay", "rotations_per_image", "aux_ce"):
        old.pop(new_field)  # an old file has none of the new fields: defaults apply
    old["extra"] = {"num_classes": 10, "note": "kept"}
    c = Config.from_dict(old)
    assert c.num_classes == 10 and c.extra == {"note": "kept"}
    assert c.ema_decay == 0.0 and c.rotations_per_image == 4
    # an explicit field wins over a stale extra entry
    both = Config.from_dict({**old, "num_classes": 4})
    assert both.num_classes == 4


def test_fast_preset():
    c = Config.preset("fast", method="ce")
    assert (c.arch, c.nesterov, c.lr_schedule, c.ce_augment) == (
        "fastnet",
        True,
        "linear",
        "translate",
    )
    assert 0 < c.ema_decay < 1 and 0 < c.label_smoothing < 1


def test_parse_value_types():
    assert Config.parse_value("alpha", "0.1") == 0.1
    assert Config.parse_value("epochs", "3") == 3
    assert Config.parse_value("lr", "none") is None
    assert Config.parse_value("channels_last", "false") is False
    assert Config.parse_value("known_classes", "0,1,2") == [0, 1, 2]
    assert Config.parse_value("nesterov", "true") is True
    assert Config.parse_value("bn_momentum", "none") is None
    assert Config.parse_value("rotations_per_image", "1") == 1
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
