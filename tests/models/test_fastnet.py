"""Tests for mclviz.models.fastnet: shapes, the whitening stem against a slow loop, the init."""

import pytest
import torch
import torch.nn.functional as F

from mclviz.models import FastNet, build_model


@pytest.mark.parametrize("width", [0.125, 0.25, 1.0])
def test_widths_and_shapes(width):
    net = FastNet(width)
    assert [g.conv2.out_channels for g in (net.group1, net.group2, net.group3)] == [
        max(1, round(c * width)) for c in (64, 256, 256)
    ]
    assert net.whiten.out_channels == 24 and net.whiten.kernel_size == (2, 2)
    m = build_model("fastnet", width=width, proj_dim=16, num_classes=10, rot_classes=4)
    x = torch.rand(3, 3, 32, 32)
    assert m.feat_dim == round(256 * width)
    out = m(x, output=("z", "features", "logits", "rot"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "z": (3, 16),
        "features": (3, round(256 * width)),
        "logits": (3, 10),
        "rot": (3, 4),
    }


def _patches_loop(x: torch.Tensor, k: int = 2) -> torch.Tensor:
    """(P, 3 k k) float64: every k x k patch of every image, one by one, (c, dy, dx) order."""
    rows = []
    n, _, h, w = x.shape
    for i in range(n):
        for r in range(h - k + 1):
            for c in range(w - k + 1):
                rows.append(x[i, :, r : r + k, c : c + k].reshape(-1))
    return torch.stack(rows).double()


@pytest.mark.parametrize("n, size", [(2, 5), (7, 8)])
def test_whitening_filters_whiten_the_patches(n, size):
    """The 12 filters w_i = v_i / sqrt(l_i + eps) of the uncentred patch covariance
    C = P^T P / |P| give W C W^T = diag(l / (l + eps)), largest eigenvalue first; the other
    12 filters are their negatives."""
    torch.manual_seed(n)
    x = torch.randn(n, 3, size, size) * torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1) + 0.3
    eps = 5e-4
    net = FastNet(0.125)
    net.init_whitening(x, eps=eps)
    filters = net.whiten.weight.detach().double().reshape(24, 12)  # (24, 3*2*2)
    torch.testing.assert_close(filters[12:], -filters[:12])
    patches = _patches_loop(x)  # (P, 12)
    cov = patches.T @ patches / len(patches)
    eig = torch.linalg.eigvalsh(cov).flip(0)  # descending
    w = filters[:12]
    torch.testing.assert_close(w @ cov @ w.T, torch.diag(eig / (eig + eps)), rtol=1e-4, atol=1e-4)
    # the convolution is the dot product of each filter with each patch
    with torch.no_grad():
        conv = F.conv2d(x, net.whiten.weight)  # (n, 24, size-1, size-1), bias 0 at start
    torch.testing.assert_close(
        conv.permute(0, 2, 3, 1).reshape(-1, 24).double(),
        patches @ filters.T,
        rtol=1e-4,
        atol=1e-4,
    )


def test_forward_matches_its_parts():
    net = FastNet(0.125).eval()
    net.init_whitening(torch.randn(4, 3, 16, 16))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h = F.gelu(net.whiten(x))  # (2, 24, 31, 31)
        for g in (net.group1, net.group2, net.group3):
            h = F.gelu(g.norm1(F.max_pool2d(g.conv1(h), 2)))
            h = F.gelu(g.norm2(g.conv2(h)))
        assert h.shape[-2:] == (3, 3)  # 31 -> 15 -> 7 -> 3
        torch.testing.assert_close(net(x), h.amax(dim=(-2, -1)) / 9)


def test_initialisation_and_frozen_parameters():
    net = FastNet(0.25)
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad
    assert torch.equal(net.whiten.bias, torch.zeros(24))
    for g in (net.group1, net.group2, net.group3):
        for norm in (g.norm1, g.norm2):
            assert not norm.weight.requires_grad and norm.bias.requires_grad
            assert norm.momentum == 0.4
        for conv in (g.conv1, g.conv2):
            w = conv.weight
            c = min(w.shape[0], w.shape[1])
            eye = torch.zeros_like(w[:c])
            torch.nn.init.dirac_(eye)
            assert torch.equal(w[:c], eye)  # identity on the first channels
    m = build_model("fastnet", width=0.125, bn_momentum=0.2)
    assert m.backbone.group2.norm1.momentum == 0.2


def test_whitening_needs_images():
    with pytest.raises(ValueError, match=r"x has shape \(3, 8, 8\); expected \(n, 3, H, W\)"):
        FastNet(0.125).init_whitening(torch.rand(3, 8, 8))
