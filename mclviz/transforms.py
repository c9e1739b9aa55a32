"""Batched image transforms: SimCLR augmentation, two views, rotations, flips, SEI views.

Everything works on whole batches (n, 3, H, W), uint8 or float in [0, 1], on the input's device;
no Python loop runs over the images of a batch. Randomness comes from the ``generator`` argument
when one is given (same generator state -> same output), else from torch's global RNG.

The SimCLR family ``T`` of the paper (section 4: inception crop, horizontal flip, colour jitter
with strength 0.5, grayscale) is ``SimCLRAugment``:

1. random resized ("inception") crop + horizontal flip, one per-sample affine grid
   (``F.affine_grid`` + bilinear ``F.grid_sample``);
2. with probability ``p_jitter``: brightness, contrast, saturation, hue, applied in a random
   order drawn per sample (as torchvision's ``ColorJitter``), clamping to [0, 1] after each;
   the hue shift is batched RGB -> HSV -> RGB (torchvision's definition, not the YIQ rotation);
3. with probability ``p_gray``: grayscale (luma 0.2989 R + 0.587 G + 0.114 B on all channels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "AugmentParams",
    "SimCLRAugment",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "hflip",
    "rgb_to_grayscale",
    "rotate",
    "rotations4",
    "sei_view",
    "to_float",
    "translate_flip",
    "two_views",
]

_LUMA = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
_CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 boxes before its fallback


# ----------------------------------------------------------------------------- checks


def _check_images(x: Tensor, arg: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{arg} must be a torch.Tensor (n, 3, H, W), got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            f"{arg} must have shape (n, 3, H, W), got {tuple(x.shape)}; add a batch dimension "
            "with x[None] or convert to RGB"
        )
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"{arg} must be uint8 (0..255) or float (0..1), got dtype {x.dtype}")


def _check_prob(value: float, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{arg}={value!r} must be a probability in [0, 1]")
    return float(value)


def _check_range(
    value: tuple[float, float], arg: str, low: float, high: float
) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{arg}={value!r} must be a pair (min, max) of numbers") from None
    if not low < a <= b <= high:
        raise ValueError(f"{arg}={value!r} must satisfy {low} < min <= max <= {high}")
    return a, b


def _per_sample(k: int | Tensor, n: int, device: torch.device, arg: str) -> Tensor:
    """``k`` as an int64 (n,) tensor on ``device``."""
    if isinstance(k, Tensor):
        if k.ndim != 1 or k.shape[0] != n or k.is_floating_point() or k.dtype == torch.bool:
            raise ValueError(
                f"{arg} must be an int or an integer tensor of shape ({n},), got dtype {k.dtype} "
                f"and shape {tuple(k.shape)}"
            )
        return k.to(device=device, dtype=torch.int64)
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"{arg}={k!r} must be an int or an integer tensor of shape ({n},)")
    return torch.full((n,), k, dtype=torch.int64, device=device)


# ----------------------------------------------------------------------------- basic ops


def to_float(images: Tensor) -> Tensor:
    """uint8 images to float32 in [0, 1]; float input is returned unchanged.

    Args:
        images: uint8 (n, 3, H, W) in 0..255, or float (n, 3, H, W) in [0, 1].

    Returns:
        float (n, 3, H, W) in [0, 1] (float32 for uint8 input).
    """
    _check_images(images, "images")
    if images.is_floating_point():
        return images
    return images.to(torch.float32).div_(255.0)


def hflip(x: Tensor) -> Tensor:
    """Mirror left-right. x: (..., H, W) -> (..., H, W)."""
    return x.flip(-1)


def rotate(x: Tensor, k: int | Tensor) -> Tensor:
    """Rotate by k * 90 degrees counter-clockwise (``torch.rot90(x, k, dims=(-2, -1))``).

    Args:
        x: (n, C, H, W) images (any dtype).
        k: an int, or an integer tensor (n,) with one k per image (then H must equal W unless
            all k have the same parity).

    Returns:
        (n, C, H, W) rotated images ((n, C, W, H) for an odd int k).
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (n, C, H, W), got {tuple(x.shape)}")
    if not isinstance(k, Tensor):
        if isinstance(k, bool) or not isinstance(k, int):
            raise ValueError(
                f"k={k!r} must be an int or an integer tensor of shape ({x.shape[0]},)"
            )
        return torch.rot90(x, k % 4, dims=(-2, -1))
    kk = _per_sample(k, x.shape[0], x.device, "k") % 4
    odd = kk % 2 == 1
    any_odd = bool(odd.any())
    if x.shape[-1] != x.shape[-2] and any_odd and not bool(odd.all()):
        raise ValueError(
            f"k mixes odd and even rotations but the images are not square "
            f"({x.shape[-2]}x{x.shape[-1]}); crop them square first"
        )
    shape = (*x.shape[:-2], x.shape[-1], x.shape[-2]) if any_odd else x.shape
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    square = x.shape[-1] == x.shape[-2]
    for r in range(4) if square else ((1, 3) if any_odd else (0, 2)):  # over rotations, not images
        sel = kk == r
        out[sel] = torch.rot90(x[sel], r, dims=(-2, -1))
    return out


def rotations4(x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every image in its 4 rotations, rotation-major, for the auxiliary rotation task.

    Args:
        x: (n, C, H, W) images with H == W.
        labels: (n,) labels.

    Returns:
        x4: (4n, C, H, W), ``x4[r * n + i] = rotate(x[i], r)`` (all images at 0 degrees, then all
            at 90, 180, 270).
        labels4: (4n,), ``labels4[r * n + i] = labels[i]``.
        rot: int64 (4n,), ``rot[r * n + i] = r``, the auxiliary label.
    """
    if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must have shape (n, C, H, H) with square images, got {tuple(x.shape)}")
    labels = torch.as_tensor(labels, device=x.device)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(labels.shape)}")
    x4 = torch.cat([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)])  # (4n, C, H, W)
    rot = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])  # (4n,)
    return x4, labels.repeat(4), rot


def sei_view(x: Tensor, m: int | Tensor) -> Tensor:
    """The image in SEI view m: flipped first if m >= 4, then rotated by (m % 4) * 90 degrees.

    Args:
        x: (n, C, H, W) images.
        m: view index in 0..7, an int or an integer tensor (n,) with one view per image.

    Returns:
        (n, C, H, W) ``rotate(hflip(x) if m >= 4 else x, m % 4)``.
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (n, C, H, W), got {tuple(x.shape)}")
    if not isinstance(m, Tensor):
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= 7:
            raise ValueError(f"m={m!r} must be a SEI view index in 0..7")
        return rotate(hflip(x) if m >= 4 else x, m % 4)
    mm = _per_sample(m, x.shape[0], x.device, "m")
    if bool(((mm < 0) | (mm > 7)).any()):
        raise ValueError(
            f"m must hold SEI view indices in 0..7, got values in {mm.min()}..{mm.max()}"
        )
    flipped = torch.where((mm >= 4).view(-1, 1, 1, 1), hflip(x), x)
    return rotate(flipped, mm % 4)


# ----------------------------------------------------------------------------- colour ops


def _luma_weights(x: Tensor) -> Tensor:
    return torch.tensor(_LUMA, dtype=x.dtype, device=x.device)


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """Luma ``0.2989 R + 0.587 G + 0.114 B``. x: float (n, 3, H, W) -> (n, 1, H, W)."""
    return (x * _luma_weights(x).view(3, 1, 1)).sum(dim=-3, keepdim=True)


def _factor(f: Tensor | float, x: Tensor) -> Tensor:
    """A per-sample factor (n,) or scalar, shaped (n, 1, 1, 1) to broadcast over x."""
    f = torch.as_tensor(f, dtype=x.dtype, device=x.device)
    return f.view(-1, 1, 1, 1) if f.ndim == 1 else f


def adjust_brightness(x: Tensor, factor: Tensor | float) -> Tensor:
    """``clamp(factor * x, 0, 1)``. x: float (n, 3, H, W); factor: (n,) or scalar."""
    return (x * _factor(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor | float) -> Tensor:
    """Blend with the image's mean luma: ``clamp(f * x + (1 - f) * mean(gray(x)), 0, 1)``.

    x: float (n, 3, H, W); factor: (n,) or scalar.
    """
    f = _factor(factor, x)
    mean = x.mean(dim=(-2, -1)) @ _luma_weights(x)  # (n,), = mean of the luma image
    return (f * x + (1 - f) * mean.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def adjust_saturation(x: Tensor, factor: Tensor | float) -> Tensor:
    """Blend with the grayscale image: ``clamp(f * x + (1 - f) * gray(x), 0, 1)``.

    x: float (n, 3, H, W); factor: (n,) or scalar.
    """
    f = _factor(factor, x)
    return (f * x + (1 - f) * rgb_to_grayscale(x)).clamp_(0.0, 1.0)


def adjust_hue(x: Tensor, shift: Tensor | float) -> Tensor:
    """Shift the HSV hue by ``shift`` turns, keeping saturation and value (torchvision's definition).

    Batched RGB -> HSV -> RGB in closed form: with M, m the max and min over channels and h the
    hue in sixths of a turn, channel c becomes ``M - (M - m) * clamp(min(k, 4 - k), 0, 1)``,
    ``k = (n_c + h + 6 * shift) mod 6``, n = (5, 3, 1) for (R, G, B).

    Args:
        x: float (n, 3, H, W) in [0, 1].
        shift: (n,) or scalar, in turns, usually in [-0.5, 0.5].

    Returns:
        float (n, 3, H, W) in [0, 1].
    """
    maxc, argmax = x.max(dim=-3, keepdim=True)  # (n, 1, H, W); ties take the first channel
    delta = maxc - x.amin(dim=-3, keepdim=True)
    # hue in sixths: (g - b) / d if R is the max, 2 + (b - r) / d if G, 4 + (r - g) / d if B
    gbr, brg = (torch.tensor(i, device=x.device) for i in ((1, 2, 0), (2, 0, 1)))
    diff = x.index_select(-3, gbr) - x.index_select(-3, brg)  # (n, 3, H, W): g-b, b-r, r-g
    h6 = diff.gather(-3, argmax).div_(torch.where(delta > 0, delta, 1.0)).add_(argmax * 2)
    h6 = h6.add_(6.0 * _factor(shift, x))  # (n, 1, H, W)
    n_c = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(3, 1, 1)
    k = torch.remainder(h6 + n_c, 6.0)  # (n, 3, H, W)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc - delta * ramp


_JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


# ----------------------------------------------------------------------------- SimCLR family


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one ``SimCLRAugment`` call, for n images.

    Attributes:
        theta: (n, 2, 3) affine maps from output to input coordinates (crop and flip).
        jitter: bool (n,), colour jitter applied.
        factors: (n, 4) brightness, contrast, saturation factors and hue shift.
        order: int64 (n, 4), the jitter order per image, a permutation of
            0 = brightness, 1 = contrast, 2 = saturation, 3 = hue.
        gray: bool (n,), converted to grayscale.
    """

    theta: Tensor
    jitter: Tensor
    factors: Tensor
    order: Tensor
    gray: Tensor


class SimCLRAugment:
    """SimCLR's augmentation family for 32x32 images (paper, section 4), batched.

    Per image: inception crop (area fraction ~ U(scale), log aspect ratio ~ U(log ratio), up to
    10 tries, else the largest centred crop of allowed ratio; continuous box, not rounded to
    pixels), horizontal flip with ``p_flip``, resized to ``size`` with bilinear sampling;
    then colour jitter with ``p_jitter``: brightness, contrast, saturation factors
    ~ U[max(0, 1 - 0.8 s), 1 + 0.8 s], hue shift ~ U[-0.2 s, 0.2 s] (s = ``strength``), in a random
    order per image; then grayscale with ``p_gray``. The crop is resampled without antialiasing,
    which is exact for the usual case (32x32 input, crops enlarged to 32x32) but aliases when a
    large image is reduced.

    Args:
        size: output side length.
        scale: range of the crop's area as a fraction of the image.
        strength: colour distortion strength s, 0 <= s <= 2.5 (the paper: 0.5).
        p_jitter: probability of colour jitter.
        p_gray: probability of grayscale.
        p_flip: probability of a horizontal flip.
        ratio: range of the crop's aspect ratio (width / height).

    >>> aug = SimCLRAugment()
    >>> aug(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([8, 3, 32, 32])
    """

    def __init__(
        self,
        size: int = 32,
        scale: tuple[float, float] = (0.08, 1.0),
        strength: float = 0.5,
        p_jitter: float = 0.8,
        p_gray: float = 0.2,
        p_flip: float = 0.5,
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size={size!r} must be a positive int (output side length)")
        if (
            isinstance(strength, bool)
            or not isinstance(strength, int | float)
            or not 0 <= strength <= 2.5
        ):
            raise ValueError(
                f"strength={strength!r} must be a number in [0, 2.5] (the paper uses 0.5)"
            )
        self.size = size
        self.scale = _check_range(scale, "scale", 0.0, 1.0)
        self.ratio = _check_range(ratio, "ratio", 0.0, math.inf)
        self.strength = float(strength)
        self.p_jitter = _check_prob(p_jitter, "p_jitter")
        self.p_gray = _check_prob(p_gray, "p_gray")
        self.p_flip = _check_prob(p_flip, "p_flip")

    def __repr__(self) -> str:
        return (
            f"SimCLRAugment(size={self.size}, scale={self.scale}, strength={self.strength}, "
            f"p_jitter={self.p_jitter}, p_gray={self.p_gray}, p_flip={self.p_flip}, ratio={self.ratio})"
        )

    def sample(
        self,
        n: int,
        height: int,
        width: int,
        *,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> AugmentParams:
        """Draw the random parameters for n images of size height x width.

        Args:
            n: number of images.
            height, width: input image size.
            device: where the parameters live (the images' device).
            generator: source of randomness; None uses torch's global RNG.

        Returns:
            The draws, see ``AugmentParams``.
        """
        device = torch.device(device)
        _check_generator(generator, device)

        def u(*shape: int) -> Tensor:
            return torch.rand(shape, generator=generator, device=device)

        # inception crop, in pixels: try 10 boxes per image, keep the first that fits
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        area = (self.scale[0] + (self.scale[1] - self.scale[0]) * u(n, _CROP_ATTEMPTS)) * (
            height * width
        )
        aspect = torch.exp(lo + (hi - lo) * u(n, _CROP_ATTEMPTS))  # (n, 10)
        w_try, h_try = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
        fits = (w_try <= width) & (h_try <= height)  # (n, 10)
        first = fits.to(torch.int8).argmax(dim=1, keepdim=True)  # index of the first fit
        any_fit = fits.any(dim=1)
        in_ratio = width / height  # fallback: largest centred box of allowed ratio
        fb_w = width if in_ratio <= self.ratio[1] else height * self.ratio[1]
        fb_h = height if in_ratio >= self.ratio[0] else width / self.ratio[0]
        w = torch.where(any_fit, w_try.gather(1, first).squeeze(1), fb_w)  # (n,)
        h = torch.where(any_fit, h_try.gather(1, first).squeeze(1), fb_h)
        offset = u(n, 2)
        left = torch.where(any_fit, offset[:, 0] * (width - w), (width - w) / 2)
        top = torch.where(any_fit, offset[:, 1] * (height - h), (height - h) / 2)
        flip = u(n) < self.p_flip
        # output coords in [-1, 1] (align_corners=False) -> input coords of the box, mirrored if flipped
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0] = torch.where(flip, -w / width, w / width)
        theta[:, 0, 2] = (2 * left + w) / width - 1
        theta[:, 1, 1] = h / height
        theta[:, 1, 2] = (2 * top + h) / height - 1

        jitter = u(n) < self.p_jitter
        s = self.strength
        lo_f, hi_f = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
        factors = torch.cat(
            [lo_f + (hi_f - lo_f) * u(n, 3), 0.2 * s * (2 * u(n, 1) - 1)], dim=1
        )  # (n, 4)
        order = u(n, 4).argsort(dim=1)  # a random permutation per image
        gray = u(n) < self.p_gray
        return AugmentParams(theta=theta, jitter=jitter, factors=factors, order=order, gray=gray)

    def apply(self, x: Tensor, params: AugmentParams) -> Tensor:
        """Apply drawn parameters.

        Args:
            x: uint8 or float (n, 3, H, W) in [0, 1].
            params: from ``sample(n, H, W, ...)``.

        Returns:
            float (n, 3, size, size) in [0, 1] (float32 for uint8 input).
        """
        x = to_float(x)
        n = x.shape[0]
        grid = F.affine_grid(
            params.theta.to(x.dtype), [n, 3, self.size, self.size], align_corners=False
        )
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        factors = params.factors.to(out.dtype)
        for step in range(4):  # the t-th jitter op of each image; 4 x 4 subsets, not n images
            for op_index, op in enumerate(_JITTER_OPS):
                idx = torch.nonzero(params.jitter & (params.order[:, step] == op_index)).squeeze(1)
                if idx.numel():
                    out[idx] = op(out[idx], factors[idx, op_index])
        gray = rgb_to_grayscale(out).expand_as(out)
        out = torch.where(params.gray.view(-1, 1, 1, 1), gray, out)
        return out.clamp_(0.0, 1.0)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment every image independently.

        Args:
            x: uint8 (n, 3, H, W), or float (n, 3, H, W) in [0, 1].
            generator: source of randomness, on x's device; None uses torch's global RNG.

        Returns:
            float (n, 3, size, size) in [0, 1].
        """
        _check_images(x)
        params = self.sample(
            x.shape[0], x.shape[2], x.shape[3], device=x.device, generator=generator
        )
        return self.apply(x, params)


def _check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != device.type:
        raise ValueError(
            f"generator is on {generator.device} but the images are on {device}; create it with "
            f"torch.Generator(device={str(device)!r})"
        )


def two_views(
    x: Tensor, augment: Callable[..., Tensor], generator: torch.Generator | None = None
) -> Tensor:
    """Two independently augmented views of every image (paper, Eq. 1 batch layout).

    Args:
        x: uint8 or float (n, 3, H, W).
        augment: a callable ``augment(x, generator=...)`` such as ``SimCLRAugment``.
        generator: source of randomness, on x's device.

    Returns:
        (2n, 3, size, size): rows 2k and 2k+1 are the two views of image k.
    """
    _check_images(x)
    return augment(
        x.repeat_interleave(2, dim=0), generator=generator
    )  # (2n, ...), rows 2k, 2k+1 <- k


def translate_flip(
    x: Tensor, pad: int = 2, p_flip: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """The fast records' light augmentation: random translation by up to ``pad`` pixels
    (reflect padding, then a random crop back to the input size) and a horizontal flip.

    Args:
        x: uint8 or float (n, 3, H, W).
        pad: largest shift in pixels, each axis drawn uniformly from -pad..pad.
        p_flip: probability of a horizontal flip.
        generator: source of randomness, on x's device.

    Returns:
        float (n, 3, H, W) in [0, 1].
    """
    _check_images(x)
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad={pad!r} must be a non-negative int (the fast records use 2)")
    p_flip = _check_prob(p_flip, "p_flip")
    _check_generator(generator, x.device)
    x = to_float(x)
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=x.device)
    flip = torch.rand(n, generator=generator, device=x.device) < p_flip
    x = torch.where(flip.view(-1, 1, 1, 1), hflip(x), x)
    if pad == 0:
        return x
    padded = F.pad(x, (pad,) * 4, mode="reflect")  # (n, 3, H + 2 pad, W + 2 pad)
    out = torch.empty_like(x)
    for dy in range(2 * pad + 1):  # (2 pad + 1)^2 shifts, not n images
        for dx in range(2 * pad + 1):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            if bool(sel.any()):
                out[sel] = padded[sel, :, dy : dy + h, dx : dx + w]
    return out
