import pytest
import torch

from mclviz.models import ARCHS, build_model


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
