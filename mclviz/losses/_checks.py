"""Host-side validation shared by the losses: shapes, dtypes, labels and hyperparameters.

Cheap by design: the only device syncs are ``isfinite(z).all()``, the view-pair label check on
the (2N,) labels and, when given, the check of SPA ``positives``. Every error names the bad
argument, its value and the fix.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._common import VARIANTS


def _check_z(z: Any, name: str = "z") -> int:
    """Check a (2N, d) finite float tensor and return 2N."""
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (2N, d), got {type(z).__name__}")
    if z.ndim != 2:
        raise ValueError(
            f"{name} must have shape (2N, d) with rows 2k, 2k+1 the two views of image k, "
            f"got shape {tuple(z.shape)}; flatten the features first"
        )
    if not z.is_floating_point():
        raise ValueError(
            f"{name} must be a floating tensor, got dtype {z.dtype}; call {name}.float()"
        )
    n, d = z.shape
    if n == 0 or n % 2:
        raise ValueError(
            f"{name} has {n} rows; it needs an even number >= 2 (two views per image, rows 2k "
            "and 2k+1); pass both views of every image"
        )
    if d == 0:
        raise ValueError(f"{name} has feature dimension 0; it needs d >= 1")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(
            f"{name} contains NaN or inf; check the model output (e.g. a diverged run or an "
            "overflow in half precision)"
        )
    return n


def _check_labels(y: Any, n: int, device: torch.device, name: str, *, pairs: bool) -> None:
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({n},), got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer labels, got dtype {y.dtype}; call {name}.long()"
        )
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"{name} must have shape ({n},) (one label per row of z), got shape {tuple(y.shape)}"
        )
    if y.device != device:
        raise ValueError(
            f"{name} is on {y.device} but z is on {device}; move it with .to(z.device)"
        )
    if pairs and bool((y[0::2] != y[1::2]).any()):
        k = int((y[0::2] != y[1::2]).nonzero()[0, 0])
        raise ValueError(
            f"{name}[{2 * k}]={int(y[2 * k])} differs from {name}[{2 * k + 1}]={int(y[2 * k + 1])}, "
            "but rows 2k and 2k+1 are the two views of image k and share its label; if the "
            "views are stacked as [view1; view2], interleave them: "
            "torch.stack([a, b], 1).flatten(0, 1)"
        )


def _check_view_labels(y: Any, y_aux: Any) -> int:
    """Check (2N,) labels given without z (mask helpers); return 2N."""
    if not isinstance(y, Tensor) or y.ndim != 1:
        raise ValueError(f"y must be a 1-D label tensor of shape (2N,), got {y!r:.80}")
    n = y.shape[0]
    if n == 0 or n % 2:
        raise ValueError(f"y has {n} entries; it needs an even number >= 2 (two views per image)")
    _check_labels(y, n, y.device, "y", pairs=False)
    if y_aux is not None:
        _check_labels(y_aux, n, y.device, "y_aux", pairs=False)
    return n


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(
            f"{name} must be a real number, got a tensor of shape {tuple(value.shape)}"
        )
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def _check_tau(tau: Any) -> float:
    tau = _check_real("tau", tau)
    if tau <= 0:
        raise ValueError(f"tau must be > 0 (the paper uses 0.2), got {tau}")
    return tau


def _check_multiplier(name: str, value: Any, tau: float) -> float:
    value = _check_real(name, value)
    inv_tau = 1.0 / tau
    if not 0.0 < value <= inv_tau * (1.0 + 1e-12):
        raise ValueError(
            f"{name}={value} is outside (0, 1/tau] = (0, {inv_tau:g}] for tau={tau:g}; "
            f"pick 0 < {name} <= 1/tau (the paper uses alpha=0.05, beta=2.5 with tau=0.2)"
        )
    return value


def _check_lam(lam: Any) -> float:
    lam = _check_real("lam", lam)
    if lam < 0:
        raise ValueError(f"lam must be >= 0 (the paper uses 1.0), got {lam}")
    return lam


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name}={value!r}; choose one of {choices}")
    return value


def _check_hyper(tau: Any, alpha: Any, beta: Any, variant: Any) -> tuple[float, float, float, str]:
    tau = _check_tau(tau)
    return (
        tau,
        _check_multiplier("alpha", alpha, tau),
        _check_multiplier("beta", beta, tau),
        _check_choice("variant", variant, VARIANTS),
    )


def _check_positives(positives: Any, y: Tensor, y_aux: Tensor | None) -> Tensor:
    """Check a (2N,) index tensor: -1 or an element of the Eq. 7 positive set of its row."""
    n = y.shape[0]
    if not isinstance(positives, Tensor):
        raise TypeError(
            f"positives must be a torch.Tensor of shape ({n},), got {type(positives).__name__}"
        )
    if positives.is_floating_point() or positives.is_complex() or positives.dtype == torch.bool:
        raise ValueError(f"positives must hold integer indices, got dtype {positives.dtype}")
    if positives.shape != (n,):
        raise ValueError(f"positives must have shape ({n},), got {tuple(positives.shape)}")
    if positives.device != y.device:
        raise ValueError(f"positives is on {positives.device} but z is on {y.device}")
    idx = positives.long()
    if bool(((idx < -1) | (idx >= n)).any()):
        raise ValueError(f"positives must be -1 or in [0, {n}), got values outside that range")
    rows = torch.arange(n, device=y.device)
    j = idx.clamp(min=0)
    ok = (y[j] == y) & (j // 2 != rows // 2)
    if y_aux is not None:
        ok &= y_aux[j] == y_aux
    bad = (idx >= 0) & ~ok
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"positives[{i}]={int(idx[i])} is not in the SPA positive set of view {i} (Eq. 7: "
            "same label, same auxiliary label, other image); use sample_positives("
            "spa_positive_mask(y, y_aux)) or -1 for none"
        )
    return idx
