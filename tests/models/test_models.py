"""Tests for mclviz.models: the CIFAR ResNets, the heads, and MCLModel's outputs."""

import pytest
import torch

from mclviz.models import ARCHS, BACKBONES, build_model, projection_head


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("width", [0.125, 0.25])
def test_shapes(arch, width):
    m = build_model(arch, width=width, proj_dim=16, num_classes=10, rot_classes=4)
    x = torch.rand(3, 3, 32, 32)
    assert m.features(x).shape == (3, round(512 * width))
    assert m(x).shape == (3, 16)
    assert m.logits(x).shape == (3, 10)
    assert m.rot_head(m.features(x)).shape == (3, 4)


def test_depths_match_the_paper():
    # ResNet-18 has 8 basic blocks, ResNet-34 has 16
    for arch, blocks in (("resnet18", 8), ("resnet34", 16)):
        m = build_model(arch, width=0.125)
        n = sum(
            1
            for name, _ in m.named_modules()
            if name.count(".") == 2 and "layer" in name and name.split(".")[-1].isdigit()
        )
        assert n == blocks


def test_stem_is_cifar_style():
    m = build_model("resnet18", width=0.25)
    assert m.backbone.conv1.kernel_size == (3, 3) and m.backbone.conv1.stride == (1, 1)
    assert not any(isinstance(mod, torch.nn.MaxPool2d) for mod in m.modules())


def test_width_scales_parameters():
    full = sum(p.numel() for p in build_model("resnet18").backbone.parameters())
    quarter = sum(p.numel() for p in build_model("resnet18", width=0.25).backbone.parameters())
    assert 11_000_000 < full < 11_300_000  # the standard CIFAR ResNet-18
    assert quarter < full / 12


def test_input_normalisation_switch():
    a = build_model("resnet18", width=0.125, normalize_input=True).eval()
    b = build_model("resnet18", width=0.125, normalize_input=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 32, 32)
    assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("arch", BACKBONES)
def test_one_pass_gives_every_output_as_the_single_heads_do(arch):
    """``forward(x, output=(...))`` runs the backbone once and returns what each head gives
    on its own (eval mode: batch norm uses running statistics in every call)."""
    m = build_model(arch, width=0.125, proj_dim=8, num_classes=5, rot_classes=4).eval()
    x = torch.rand(4, 3, 32, 32)
    calls = []
    m.backbone.register_forward_hook(lambda mod, args, out: calls.append(len(args[0])))
    with torch.no_grad():
        out = m(x, output=("z", "features", "logits", "rot"))
        assert calls == [4]
        torch.testing.assert_close(out["z"], m(x))
        torch.testing.assert_close(out["features"], m.features(x))
        torch.testing.assert_close(out["logits"], m.logits(x))
        torch.testing.assert_close(out["rot"], m.rot_head(m.features(x)))
        logits, rot = m(x, output="rot")  # the single-name form: (class, rotation) logits
        torch.testing.assert_close((logits, rot), (out["logits"], out["rot"]))
    assert {k: v.shape for k, v in out.items()} == {
        "z": (4, 8),
        "features": (4, m.feat_dim),
        "logits": (4, 5),
        "rot": (4, 4),
    }


def test_head_norm_and_bn_momentum():
    plain = projection_head(16, 8)
    normed = projection_head(16, 8, 32, norm=True)
    assert [type(m).__name__ for m in plain] == ["Linear", "ReLU", "Linear"]
    assert [type(m).__name__ for m in normed] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert normed[0].out_features == 32 and normed[0].bias is None
    m = build_model("resnet18", width=0.125, head_norm=True, bn_momentum=0.3)
    assert any(isinstance(mod, torch.nn.BatchNorm1d) for mod in m.head)
    bns = [mod for mod in m.backbone.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert bns and all(b.momentum == 0.3 for b in bns)
    default = build_model("resnet18", width=0.125)
    assert all(
        mod.momentum == 0.1
        for mod in default.backbone.modules()
        if isinstance(mod, torch.nn.BatchNorm2d)
    )


def test_errors():
    with pytest.raises(ValueError, match="arch='resnet50'"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="width"):
        build_model("resnet18", width=0)
    m = build_model("resnet18", width=0.125)
    with pytest.raises(ValueError, match="no classifier head"):
        m.logits(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(n, 3, H, W\)"):
        m(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="output 'logits' needs a model built with num_classes"):
        m(torch.rand(1, 3, 32, 32), output=("z", "logits"))
    with pytest.raises(ValueError, match="output 'rot' needs a model built with rot_classes"):
        m(torch.rand(1, 3, 32, 32), output=("rot",))
    with pytest.raises(ValueError, match="output 'zz' is unknown"):
        m(torch.rand(1, 3, 32, 32), output=("zz",))
    with pytest.raises(ValueError, match="output='zz': choose"):
        m(torch.rand(1, 3, 32, 32), output="zz")
