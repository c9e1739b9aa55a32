"""The figures' inputs as numpy arrays: conversion from torch, shape, dtype and value checks.

Every error names the argument, what it got and what it expects.
"""

from __future__ import annotations

import numpy as np


def _numpy(x, name: str, *, ndim: int | tuple[int, ...] | None = None, dtype=None) -> np.ndarray:
    """numpy array from a numpy array, a list or a (any-device) torch tensor, shape-checked."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in allowed:
            raise ValueError(
                f"{name} has shape {a.shape}; expected {' or '.join(f'{d}-D' for d in allowed)}"
            )
    if dtype is not None:
        if dtype is bool:
            if a.dtype != bool and not (
                np.issubdtype(a.dtype, np.integer) and np.isin(a, (0, 1)).all()
            ):
                raise TypeError(f"{name} must be boolean (or 0/1), got dtype {a.dtype}")
            a = a.astype(bool)
        else:
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
            a = a.astype(dtype)
    return a


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0])
        raise ValueError(
            f"{name} holds NaN or infinite values (first in row {bad}); fix or drop them"
        )
    return a


def _images(x, name: str) -> np.ndarray:
    a = _numpy(x, name)
    if a.ndim < 3 or a.shape[-3] != 3:
        raise ValueError(f"{name} has shape {a.shape}; expected uint8 images (..., 3, H, W)")
    if a.dtype != np.uint8:
        raise TypeError(
            f"{name} has dtype {a.dtype}; expected uint8 images in 0..255 (mclviz.data)"
        )
    return a


def _hwc(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(img, -3, -1))  # (3, H, W) -> (H, W, 3)
