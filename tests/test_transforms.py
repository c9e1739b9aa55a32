"""Tests for mclviz.transforms.

The batched colour ops are compared with torchvision's per-image functions and with
``colorsys`` (float64, random inputs, several sizes); the crop with a per-pixel bilinear loop
written from the affine map; the jitter order with a per-image loop over the drawn order.
"""

from __future__ import annotations

import colorsys
import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from mclviz.transforms import (
    AugmentParams,
    SimCLRAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    hflip,
    rgb_to_grayscale,
    rotate,
    rotations4,
    sei_view,
    to_float,
    two_views,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(
    n: int = 6, size: int = 16, seed: int = 0, dtype: torch.dtype = torch.uint8
) -> torch.Tensor:
    x = torch.randint(0, 256, (n, 3, size, size), generator=_gen(seed), dtype=torch.uint8)
    return x if dtype == torch.uint8 else x.to(dtype) / 255


NO_COLOUR = {"p_jitter": 0.0, "p_gray": 0.0}


# ----------------------------------------------------------------------------- basic ops


def test_to_float() -> None:
    x = _images()
    y = to_float(x)
    assert y.dtype == torch.float32 and torch.equal(y * 255, x.float())
    z = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert to_float(z) is z


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("shape", [(8, 8), (6, 10)])
def test_rotate_matches_rot90(n: int, shape: tuple[int, int]) -> None:
    x = torch.randn(n, 3, *shape)
    for k in range(-5, 6):
        assert torch.equal(rotate(x, k), torch.rot90(x, k, dims=(-2, -1)))
    square = shape[0] == shape[1]
    for parity in (0, 1):  # non-square images: one parity per call
        ks = torch.randint(-4, 8, (n,), generator=_gen(n + parity))
        ks = ks if square else 2 * (ks // 2) + parity
        out = rotate(x, ks)
        for i in range(n):
            assert torch.equal(out[i], torch.rot90(x[i], int(ks[i]), dims=(-2, -1)))


def test_rotate_per_image_k_square_and_negative() -> None:
    x = torch.randn(9, 3, 7, 7)
    ks = torch.arange(-4, 5)
    out = rotate(x, ks)
    for i in range(9):
        assert torch.equal(out[i], torch.rot90(x[i], int(ks[i]), dims=(-2, -1)))
    x_odd = torch.randn(3, 3, 4, 6)
    out = rotate(x_odd, torch.tensor([1, 3, 1]))
    assert out.shape == (3, 3, 6, 4)
    assert torch.equal(out[1], torch.rot90(x_odd[1], 3, dims=(-2, -1)))
    with pytest.raises(
        ValueError, match="k mixes odd and even rotations but the images are not square"
    ):
        rotate(x_odd, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"k must be an int or an integer tensor of shape \(9,\)"):
        rotate(x, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="k=1.5 must be an int"):
        rotate(x, 1.5)  # type: ignore[arg-type]


def test_rotations4_order_and_labels() -> None:
    x = torch.randn(5, 3, 8, 8)
    labels = torch.tensor([3, 1, 4, 1, 5])
    x4, y4, rot = rotations4(x, labels)
    assert x4.shape == (20, 3, 8, 8) and y4.shape == rot.shape == (20,)
    assert rot.dtype == torch.int64 and rot.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for r in range(4):
        for i in range(5):
            assert torch.equal(x4[r * 5 + i], torch.rot90(x[i], r, dims=(-2, -1)))
            assert y4[r * 5 + i] == labels[i]
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        rotations4(x, labels[:3])
    with pytest.raises(ValueError, match="square images"):
        rotations4(torch.randn(2, 3, 4, 6), torch.zeros(2))


def test_hflip_and_sei_views() -> None:
    x = torch.randn(4, 3, 6, 6)
    assert torch.equal(hflip(x)[..., 0], x[..., -1])
    views = [sei_view(x, m) for m in range(8)]
    for m in range(8):
        base = x.flip(-1) if m >= 4 else x
        assert torch.equal(views[m], torch.rot90(base, m % 4, dims=(-2, -1)))
    # the 8 views of a generic image are all different
    for a in range(8):
        for b in range(a + 1, 8):
            assert not torch.equal(views[a], views[b])
    ms = torch.tensor([7, 0, 4, 3])
    out = sei_view(x, ms)
    for i in range(4):
        assert torch.equal(out[i], views[int(ms[i])][i])
    with pytest.raises(ValueError, match="m=8 must be a SEI view index in 0..7"):
        sei_view(x, 8)
    with pytest.raises(ValueError, match="m must hold SEI view indices in 0..7"):
        sei_view(x, torch.tensor([0, 1, 2, -1]))


# ----------------------------------------------------------------------------- colour ops vs slow twins


@pytest.mark.parametrize(("n", "size"), [(1, 3), (4, 5), (7, 8)])
@pytest.mark.parametrize(
    ("ours", "theirs", "low", "high"),
    [
        (adjust_brightness, TF.adjust_brightness, 0.0, 2.0),
        (adjust_contrast, TF.adjust_contrast, 0.0, 2.0),
        (adjust_saturation, TF.adjust_saturation, 0.0, 2.0),
        (adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
)
def test_colour_ops_match_torchvision_per_image(
    n: int, size: int, ours, theirs, low: float, high: float
) -> None:
    g = _gen(n * size)
    x = torch.rand(n, 3, size, size, generator=g, dtype=torch.float64)
    factor = low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)
    got = ours(x, factor)
    want = torch.stack([theirs(x[i], float(factor[i])) for i in range(n)])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)  # torchvision's hue is float32-exact


@pytest.mark.parametrize("n", [1, 3])
def test_adjust_hue_matches_colorsys(n: int) -> None:
    g = _gen(n)
    x = torch.rand(n, 3, 4, 4, generator=g, dtype=torch.float64)
    x[0, :, 0, 0] = 0.5  # gray pixel: undefined hue
    x[0, :, 0, 1] = torch.tensor([0.9, 0.9, 0.1], dtype=torch.float64)  # tie between R and G
    shift = torch.rand(n, generator=g, dtype=torch.float64) - 0.5
    got = adjust_hue(x, shift)
    for i in range(n):
        for r in range(4):
            for c in range(4):
                h, s, v = colorsys.rgb_to_hsv(*x[i, :, r, c].tolist())
                want = colorsys.hsv_to_rgb((h + float(shift[i])) % 1.0, s, v)
                torch.testing.assert_close(
                    got[i, :, r, c], torch.tensor(want, dtype=torch.float64), atol=1e-12, rtol=0
                )


def test_rgb_to_grayscale_weights() -> None:
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    want = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(rgb_to_grayscale(x)[:, 0], want)


# ----------------------------------------------------------------------------- SimCLRAugment


def test_output_range_dtype_and_size() -> None:
    aug = SimCLRAugment(size=12)
    out = aug(_images(8, 16), generator=_gen())
    assert out.shape == (8, 3, 12, 12) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    out64 = aug(_images(8, 16, dtype=torch.float64), generator=_gen())
    assert out64.dtype == torch.float64 and out64.min() >= 0 and out64.max() <= 1


def test_determinism_with_generator() -> None:
    aug = SimCLRAugment(size=16)
    x = _images(8, 16)
    a = aug(x, generator=_gen(7))
    b = aug(x, generator=_gen(7))
    c = aug(x, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = aug(x)
    torch.manual_seed(3)
    assert torch.equal(d, aug(x))


def test_full_crop_without_flip_or_colour_is_identity() -> None:
    aug = SimCLRAugment(size=16, scale=(1.0, 1.0), p_flip=0.0, **NO_COLOUR)
    x = _images(5, 16, dtype=torch.float64)
    torch.testing.assert_close(aug(x, generator=_gen()), x, atol=1e-6, rtol=0)


def test_full_crop_with_flip_is_hflip() -> None:
    aug = SimCLRAugment(size=16, scale=(1.0, 1.0), p_flip=1.0, **NO_COLOUR)
    x = _images(5, 16, dtype=torch.float64)
    torch.testing.assert_close(aug(x, generator=_gen()), hflip(x), atol=1e-6, rtol=0)


def _bilinear_crop_loop(img: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Output pixel (r, c) samples the input at theta @ (x, y, 1) in align_corners=False coords."""
    _, h_in, w_in = img.shape
    out = torch.empty(3, size, size, dtype=img.dtype)
    for r in range(size):
        for c in range(size):
            xo, yo = (2 * c + 1) / size - 1, (2 * r + 1) / size - 1
            xi = float(theta[0, 0] * xo + theta[0, 1] * yo + theta[0, 2])
            yi = float(theta[1, 0] * xo + theta[1, 1] * yo + theta[1, 2])
            px = min(max(((xi + 1) * w_in - 1) / 2, 0.0), w_in - 1)  # pixel coords, border clamp
            py = min(max(((yi + 1) * h_in - 1) / 2, 0.0), h_in - 1)
            x0, y0 = math.floor(px), math.floor(py)
            x1, y1 = min(x0 + 1, w_in - 1), min(y0 + 1, h_in - 1)
            fx, fy = px - x0, py - y0
            out[:, r, c] = (
                img[:, y0, x0] * (1 - fx) * (1 - fy)
                + img[:, y0, x1] * fx * (1 - fy)
                + img[:, y1, x0] * (1 - fx) * fy
                + img[:, y1, x1] * fx * fy
            )
    return out


@pytest.mark.parametrize(("in_size", "out_size"), [(8, 8), (10, 6)])
def test_crop_matches_bilinear_loop(in_size: int, out_size: int) -> None:
    aug = SimCLRAugment(size=out_size, **NO_COLOUR)
    x = _images(4, in_size, dtype=torch.float64)
    params = aug.sample(4, in_size, in_size, generator=_gen(in_size))
    got = aug.apply(x, params)
    for i in range(4):
        want = _bilinear_crop_loop(x[i], params.theta[i].double(), out_size)
        torch.testing.assert_close(got[i], want, atol=1e-5, rtol=0)


def test_crop_box_distribution() -> None:
    aug = SimCLRAugment(p_flip=0.5)
    p = aug.sample(4000, 32, 32, generator=_gen())
    sx, sy = p.theta[:, 0, 0], p.theta[:, 1, 1]
    area = sx.abs() * sy
    aspect = sx.abs() / sy
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert aspect.min() >= 3 / 4 - 1e-6 and aspect.max() <= 4 / 3 + 1e-6
    # the box stays inside the image
    assert (p.theta[:, 0, 2].abs() + sx.abs()).max() <= 1 + 1e-6
    assert (p.theta[:, 1, 2].abs() + sy).max() <= 1 + 1e-6
    assert abs((sx < 0).float().mean().item() - 0.5) < 0.03  # flips
    assert p.theta[:, 0, 1].eq(0).all() and p.theta[:, 1, 0].eq(0).all()


def test_grayscale_makes_channels_equal() -> None:
    aug = SimCLRAugment(p_gray=1.0)
    out = aug(_images(8, 16), generator=_gen())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    out = SimCLRAugment(p_gray=0.0, p_jitter=0.0)(_images(8, 16), generator=_gen())
    assert not torch.equal(out[:, 0], out[:, 1])


def test_jitter_parameter_ranges() -> None:
    s = 0.5
    p = SimCLRAugment(strength=s).sample(5000, 32, 32, generator=_gen())
    b, c, sat, hue = p.factors.unbind(dim=1)
    for f in (b, c, sat):
        assert f.min() >= 1 - 0.8 * s and f.max() <= 1 + 0.8 * s
        assert f.min() < 1 - 0.8 * s + 0.01 and f.max() > 1 + 0.8 * s - 0.01
    assert hue.abs().max() <= 0.2 * s and hue.abs().max() > 0.2 * s - 0.01
    assert abs(p.jitter.float().mean().item() - 0.8) < 0.02
    assert abs(p.gray.float().mean().item() - 0.2) < 0.02
    assert torch.equal(p.order.sort(dim=1).values, torch.arange(4).expand(5000, 4))
    assert set(p.order[:, 0].tolist()) == {0, 1, 2, 3}  # every op comes first for some images


def test_jitter_statistics_on_gray_images() -> None:
    """On a uniform gray image only brightness acts: out = 0.5 * b, b ~ U[0.6, 1.4] (s = 0.5)."""
    aug = SimCLRAugment(scale=(1.0, 1.0), p_flip=0.0, p_gray=0.0, strength=0.5, p_jitter=0.8)
    x = torch.full((2000, 3, 2, 2), 0.5)
    out = aug(x, generator=_gen())
    v = out.mean(dim=(1, 2, 3))
    assert (out - v.view(-1, 1, 1, 1)).abs().max() < 1e-4  # stays uniform and gray
    unchanged = (v - 0.5).abs() < 1e-3
    assert abs(unchanged.float().mean().item() - 0.2) < 0.03
    b = v[~unchanged] / 0.5
    assert b.min() > 0.6 - 1e-3 and b.max() < 1.4 + 1e-3
    assert abs(b.mean().item() - 1.0) < 0.02 and abs(b.std().item() - 0.8 / 12**0.5) < 0.02


def test_jitter_applies_drawn_order_per_image() -> None:
    aug = SimCLRAugment(
        size=8, scale=(1.0, 1.0), p_flip=0.0, p_jitter=1.0, p_gray=0.0, strength=1.0
    )
    x = torch.rand(24, 3, 8, 8, generator=_gen(), dtype=torch.float64)
    params = aug.sample(24, 8, 8, generator=_gen(1))
    got = aug.apply(x, params)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(24):
        img = x[i]
        for op_index in params.order[i].tolist():
            img = ops[op_index](img, float(params.factors[i, op_index]))
        torch.testing.assert_close(got[i], img, atol=1e-5, rtol=0)
    # the order matters: with a fixed order the result differs for some images
    fixed = AugmentParams(
        params.theta, params.jitter, params.factors, torch.arange(4).expand(24, 4), params.gray
    )
    assert not torch.allclose(aug.apply(x, fixed), got, atol=1e-4)


def test_two_views_layout() -> None:
    n = 6
    values = torch.arange(n, dtype=torch.float32) / n
    x = values.view(n, 1, 1, 1).expand(n, 3, 16, 16).contiguous()  # image k is constant k / n
    views = two_views(x, SimCLRAugment(size=16, **NO_COLOUR), generator=_gen())
    assert views.shape == (2 * n, 3, 16, 16)
    for k in range(n):
        for row in (2 * k, 2 * k + 1):
            torch.testing.assert_close(views[row], torch.full_like(views[row], float(values[k])))
    textured = _images(n, 16)
    pairs = two_views(textured, SimCLRAugment(size=16), generator=_gen())
    for k in range(n):  # the two views of one image are independent draws
        assert not torch.equal(pairs[2 * k], pairs[2 * k + 1])


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (
            torch.zeros(3, 8, 8, dtype=torch.uint8),
            r"x must have shape \(n, 3, H, W\), got \(3, 8, 8\)",
        ),
        (
            torch.zeros(2, 1, 8, 8, dtype=torch.uint8),
            r"x must have shape \(n, 3, H, W\), got \(2, 1, 8, 8\)",
        ),
        (
            torch.zeros(2, 3, 8, 8, dtype=torch.int32),
            "x must be uint8 .* or float .*, got dtype torch.int32",
        ),
    ],
)
def test_bad_images(x: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimCLRAugment()(x)
    with pytest.raises(ValueError, match=match):
        two_views(x, SimCLRAugment())


def test_bad_images_to_float_and_type() -> None:
    with pytest.raises(ValueError, match=r"images must have shape \(n, 3, H, W\)"):
        to_float(torch.zeros(8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        SimCLRAugment()([[0]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strength": -0.1}, r"strength=-0.1 must be a number in \[0, 2.5\]"),
        ({"strength": 3}, r"strength=3 must be a number in \[0, 2.5\]"),
        ({"p_jitter": 1.5}, r"p_jitter=1.5 must be a probability in \[0, 1\]"),
        ({"p_gray": -1}, r"p_gray=-1 must be a probability"),
        ({"p_flip": "half"}, r"p_flip='half' must be a probability"),
        ({"scale": (0.5, 0.1)}, r"scale=\(0.5, 0.1\) must satisfy 0.0 < min <= max <= 1.0"),
        ({"scale": (0.0, 1.0)}, r"scale=\(0.0, 1.0\) must satisfy"),
        ({"scale": 0.5}, r"scale=0.5 must be a pair"),
        ({"ratio": (2.0, 1.0)}, r"ratio=\(2.0, 1.0\) must satisfy"),
        ({"size": 0}, r"size=0 must be a positive int"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimCLRAugment(**kwargs)


def test_bad_generator() -> None:
    with pytest.raises(ValueError, match="generator must be a torch.Generator or None"):
        SimCLRAugment()(_images(), generator=0)  # type: ignore[arg-type]
