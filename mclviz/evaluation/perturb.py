"""Input pre-processing (ODIN, Liang et al. 2018; Lee et al. 2018's Mahalanobis detector).

Each test image is moved by ``epsilon`` along the sign of the gradient of the detector's
own score, ``x' = x + epsilon * sign(grad_x score(f(x)))``, then scored again. ODIN writes
this as ``x - epsilon * sign(-grad_x log S_y(x; T))`` and Lee et al. as ``x + epsilon *
sign(grad_x (-M(x)))``: both raise the score, which an in-distribution image follows more
than an outlier. ``epsilon`` is in units of mclviz's [0, 1] pixels (the papers' is in units
of their normalised inputs; see each detector's docstring). Run in float32, eval mode; the
perturbed image is not clipped to [0, 1], as in the papers. The gradient is taken even
when the caller runs under ``torch.no_grad()`` (evaluation code often does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..transforms import to_float

__all__ = ["fitted_fingerprint", "perturbed_outputs"]


def perturbed_outputs(
    model: torch.nn.Module,
    images: torch.Tensor,
    output: str,
    score: Callable[[torch.Tensor], torch.Tensor],
    epsilon: float,
    *,
    batch_size: int = 256,
    progress: bool = True,
) -> torch.Tensor:
    """(n, 1, d) ``output`` of the images after one signed-gradient step that raises ``score``.

    Args:
        model: an ``MCLModel`` (``model(x, output=(name,))``); its training flags are restored.
        images: (n, 3, H, W) uint8 or float in [0, 1].
        output: the output scored (``"logits"``, ``"features"``, ``"z"``).
        score: differentiable ``(b, d) -> (b,)`` (a detector's ``differentiable_score``).
        epsilon: the step size in [0, 1] pixel units (> 0).
        batch_size: images per forward and backward pass.
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon={epsilon!r} must be > 0 for input pre-processing")
    dev = next(model.parameters()).device
    modes = {m: m.training for m in model.modules()}
    model.eval()
    parts = []
    try:
        for i in tqdm(
            range(0, len(images), batch_size), disable=not progress, desc=f"pre-process {output}"
        ):
            x = to_float(images[i : i + batch_size].to(dev)).clone().requires_grad_(True)
            with torch.enable_grad():  # the step needs a gradient even under a caller's no_grad
                s = score(model(x, output=(output,))[output].float())  # (b,)
                (grad,) = torch.autograd.grad(s.sum(), x)
            with torch.no_grad():
                moved = x + epsilon * grad.sign()
                parts.append(model(moved, output=(output,))[output].float().cpu())
    finally:
        for m, mode in modes.items():
            m.training = mode
    return torch.cat(parts)[:, None]  # (n, 1, d)


def _digest(value, h, depth: int) -> bool:
    """Feed ``value`` into hash ``h``; False when it holds something with no stable bytes."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{tuple(value.shape)}{value.dtype}".encode())
        h.update(t.view(torch.uint8).numpy())
        return True
    if isinstance(value, np.ndarray):
        h.update(f"A{value.shape}{value.dtype}".encode())
        h.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
        return True
    if value is None or isinstance(value, (bool, int, float, str)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
        return True
    if isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}[{len(value)}]".encode())
        return all(_digest(v, h, depth) for v in value)
    if isinstance(value, dict):
        h.update(f"dict[{len(value)}]".encode())
        return all(
            _digest(k, h, depth) and _digest(value[k], h, depth) for k in sorted(value, key=str)
        )
    if hasattr(value, "__dict__") and depth < 3:
        h.update(f"{type(value).__module__}.{type(value).__qualname__}".encode())
        return _digest(vars(value), h, depth + 1)
    return False


def fitted_fingerprint(detector) -> str | None:
    """A hash of a fitted detector's settings and fitted values (its attributes: tensors,
    arrays, numbers, strings and objects made of them), or None when an attribute has no
    stable bytes (then its pre-processed outputs are not kept on disk). Two detectors with
    the same fingerprint move every image the same way, so their perturbed outputs can be
    shared through a disk cache.

    The fitted values are hashed bit for bit, so the key never serves a detector fitted on
    other data; the price is that a covariance fitted with another torch thread count
    (its sums in another order) differs in its last bits and misses the cache: a rebuild
    at another thread count recomputes the pre-processed outputs (correct, only slower)."""
    h = hashlib.sha256(f"{type(detector).__module__}.{type(detector).__qualname__}".encode())
    return h.hexdigest()[:16] if _digest(vars(detector), h, 0) else None
