"""Input checks shared by the scoring modules (host-side, cheap)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """A detector was used before ``fit()`` (like scikit-learn's ``NotFittedError``)."""


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}"
        ) from err


def _float_tensor(x, name: str) -> torch.Tensor:
    """A floating tensor (float32 / float64 kept, other dtypes -> float32)."""
    t = _as_tensor(x, name)
    if t.dtype not in (torch.float32, torch.float64):
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
        t = t.float()
    return t


def _check_finite(t: torch.Tensor, name: str, offset: int = 0) -> None:
    ok = torch.isfinite(t)
    if not bool(ok.all()):
        bad = (~ok).nonzero()[0].tolist()
        bad[0] += offset
        raise ValueError(
            f"{name} holds NaN or infinite values (first at index {tuple(bad)}); "
            "remove or fix those rows before scoring"
        )


def _labels(y, n: int, name: str = "y") -> torch.Tensor:
    t = _as_tensor(y, name)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}, but z has {n} rows; pass one integer label per row"
        )
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        if t.is_floating_point() and bool((t == t.round()).all()):
            t = t.long()
        else:
            raise TypeError(f"{name} must hold integer class labels 0..C-1, got dtype {t.dtype}")
    return t.long()


def _chunk(chunk_size: int) -> int:
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer (e.g. 2048)")
    return int(chunk_size)


def _check_fitted(est, attr: str) -> None:
    if getattr(est, attr, None) is None:
        raise NotFittedError(
            f"this {type(est).__name__} is not fitted yet; call fit() first with the "
            "training embeddings"
        )


def _rows(z, name: str, dim: int | None = None) -> torch.Tensor:
    t = _float_tensor(z, name)
    if t.ndim != 2:
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected (n, d) embeddings")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"{name} has {t.shape[1]} features, but the detector was fitted on {dim}; pass "
            "the model output it was fitted on (its `output`), from the same model"
        )
    _check_finite(t, name)
    return t
