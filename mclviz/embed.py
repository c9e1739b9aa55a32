"""Batched (and optionally cached) embeddings of an image set under SEI views.

``embed(model, images, views=8)`` returns the (N, W, d) float32 CPU tensor that
``mclviz.scoring`` works on: column w holds the model's output for SEI view ``views[w]``
of every image (view m: rotated by ``m % 4`` quarter turns counter-clockwise,
horizontally flipped first when ``m >= 4``; paper Sec. 3.2 and Fig. 3).

The model contract: ``model(x)`` with float ``x`` (n, 3, H, W) in [0, 1] returns the
projection z (n, d); ``model.features(x)`` the backbone features; classifier models
have ``model.logits(x)``.

The device is the model's (its first parameter or buffer; CPU for a model without
any) unless ``device=`` says otherwise. Nothing is written to disk unless ``cache_dir``
is given.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ._io import atomic_write
from .device import Precision, resolve_precision
from .transforms import sei_view

__all__ = ["OUTPUTS", "cache_file", "embed", "embed_features", "images_fingerprint", "view_indices"]

OUTPUTS = ("z", "features", "logits")
_CACHE_VERSION = "2"


def view_indices(views: int | Sequence[int]) -> list[int]:
    """``views`` (a count W -> 0..W-1, or a list of indices) -> list of SEI view indices."""
    if isinstance(views, bool):
        raise TypeError(f"views={views!r}: pass a count (1, 4, 8) or a list of view indices")
    if isinstance(views, int):
        if not 1 <= views <= 8:
            raise ValueError(f"views={views!r}: pass a count in 1..8 (1, 4 or 8) or a list")
        return list(range(views))
    try:
        v = [int(m) for m in views]
    except TypeError as err:
        raise TypeError(
            f"views={views!r}: pass a count (1, 4, 8) or a list of view indices"
        ) from err
    if not v or any(m < 0 or m > 7 or m != mm for m, mm in zip(v, views, strict=True)):
        raise ValueError(f"views={list(views)!r}: view indices are integers in 0..7, at least one")
    return v


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _forward(model: nn.Module, output: str):
    if output == "z":
        return model
    fn = getattr(model, output, None)
    if not callable(fn):
        raise ValueError(
            f"output={output!r} needs model.{output}(x), but {type(model).__name__} has no such "
            "method"
            + ("; only classifier (cross-entropy) models have logits" if output == "logits" else "")
        )
    return fn


def images_fingerprint(images: torch.Tensor) -> str:
    """Content hash of the images, so a cache file never serves another image set."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tuple(images.shape)}|{images.dtype}".encode())
    h.update(images.detach().cpu().contiguous().numpy().reshape(-1).view("uint8"))
    return h.hexdigest()


def cache_file(cache_dir, stem: str, tag: str, key: str) -> Path:
    """The file in ``cache_dir`` that caches a tensor: ``<stem>-<tag>-<digest>.safetensors``.

    ``key`` spells out everything the tensor depends on (its digest names the file, so a
    file never serves other inputs); ``stem`` (e.g. the caller's cache key, made safe
    for file names and cut to 80 characters) and ``tag`` (e.g. the output's name) only
    make the folder readable. The embedding cache and the pre-processed outputs of
    :class:`mclviz.evaluation.Outputs` both name their files with it.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80]
    return Path(cache_dir) / f"{safe}-{tag}-{digest}.safetensors"


def _cache_path(
    cache_dir, cache_key: str, views: list[int], output: str, precision: str, images
) -> Path:
    key = (
        f"v{_CACHE_VERSION}|{cache_key}|views={views}|output={output}|precision={precision}|"
        f"{images_fingerprint(images)}"
    )
    vtag = "".join(str(m) for m in views)
    return cache_file(cache_dir, cache_key, f"{output}-v{vtag}", key)


def _load(path: Path, n: int, w: int) -> torch.Tensor | None:
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    t = load_file(str(path))["embeddings"]
    if t.ndim != 3 or t.shape[0] != n or t.shape[1] != w:
        raise ValueError(
            f"cache file {path} holds embeddings of shape {tuple(t.shape)}, not ({n}, {w}, d); "
            "delete it or pass another cache_key"
        )
    return t


def embed(
    model: nn.Module,
    images: torch.Tensor,
    *,
    views: int | Sequence[int] = 1,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    precision: str | Precision = "fp32",
    cache_dir: str | os.PathLike | None = None,
    cache_key: str | None = None,
    progress: bool = True,
    output: str = "z",
) -> torch.Tensor:
    """Embed every image under every SEI view, in batches, without gradients.

    The model runs in ``eval()`` mode under ``torch.no_grad()``; each module's training
    flag is restored afterwards. One forward pass sees at most ``batch_size`` images of
    one view, and only that batch is on the device; results are gathered on the CPU.

    Args:
        model: ``nn.Module``; see the module docstring for the contract.
        images: (N, 3, H, W) uint8 images (as ``mclviz.data`` gives) or floats in [0, 1].
        views: a count W (views 0..W-1: 1 plain, 4 rotations, 8 rotations and flips) or a
            list of SEI view indices in 0..7.
        batch_size: images per forward pass.
        device: where the model runs; default (and it must be) the model's device: embed
            never moves the caller's model.
        precision: ``"fp32"`` (exact, the default), ``"bf16"``, ``"fp16"`` (CUDA), ``"auto"``
            (:func:`mclviz.device.resolve_precision` for the model's device), or a resolved
            :class:`~mclviz.device.Precision`. Half precisions run under autocast with
            channels-last inputs; the caller's model is never converted.
        cache_dir: folder for a safetensors cache; nothing is written without it.
        cache_key: required with ``cache_dir``: names the model and data, e.g.
            ``f"{checkpoint_sha}-cifar10-test"``. The file name also hashes the views,
            the output, the precision and the image contents, so only a changed model needs a
            new key.
        progress: show a tqdm progress bar.
        output: "z" (``model(x)``, the projection of Eq. 12), "features"
            (``model.features(x)``) or "logits" (``model.logits(x)``).

    Returns:
        (N, W, d) float32 CPU tensor; column w is view ``views[w]``.
    """
    batch_size = _check_inputs(model, images, output, batch_size)
    vs = view_indices(views)
    forward = _forward(model, output)
    dev = _run_device(model, device)
    prec = precision if isinstance(precision, Precision) else resolve_precision(precision, dev)

    path = None
    if cache_dir is not None:
        if not cache_key:
            raise ValueError(
                "cache_dir is given but cache_key is not; pass a key naming the model and the "
                "data, e.g. cache_key=f'{checkpoint_sha}-cifar10-test'"
            )
        path = _cache_path(cache_dir, str(cache_key), vs, output, prec.name, images)
        cached = _load(path, images.shape[0], len(vs))
        if cached is not None:
            return cached

    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        out = _embed_batches(forward, images, vs, batch_size, dev, prec, progress, output)
    finally:
        for mod, mode in modes.items():
            mod.training = mode
    if path is not None:
        from safetensors.torch import save_file

        meta = {"cache_key": str(cache_key), "views": ",".join(map(str, vs)), "output": output}
        atomic_write(path, lambda tmp: save_file({"embeddings": out.contiguous()}, tmp, meta))
    return out


def _check_inputs(model, images, output: str, batch_size) -> int:
    """Errors naming the bad argument; the batch size as an int."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r} is unknown; choose one of {OUTPUTS}")
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a uint8 torch.Tensor (N, 3, H, W), got {type(images).__name__}"
        )
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images has shape {tuple(images.shape)}; expected (N, 3, H, W)")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(f"images has dtype {images.dtype}; pass uint8 images or floats in [0, 1]")
    if images.shape[0] == 0:  # the output width is unknown without a forward pass
        raise ValueError("images is empty (N = 0); pass at least one image")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (e.g. 512)")
    return int(batch_size)


def _run_device(model: nn.Module, device) -> torch.device:
    """The model's device; ``device`` may only name it (embed never moves the model)."""
    dev = _model_device(model)
    if device is None:
        return dev
    wanted = torch.device(device)
    has_tensors = any(True for _ in model.parameters()) or any(True for _ in model.buffers())
    if has_tensors and (wanted.type, wanted.index or 0) != (dev.type, dev.index or 0):
        raise ValueError(
            f"device={str(device)!r} but the model is on {dev}; move the model first "
            f"(model.to({str(device)!r})) or leave device=None"
        )
    return wanted


def _embed_batches(forward, images, vs, batch_size, dev, prec, progress, output) -> torch.Tensor:
    """(N, len(vs), d) float32 CPU outputs, one batch of one view per forward pass."""
    from tqdm.auto import tqdm

    n = images.shape[0]
    out: torch.Tensor | None = None
    with (
        torch.no_grad(),
        tqdm(
            total=n * len(vs), disable=not progress, desc=f"embed {output}", unit="img", leave=False
        ) as bar,
    ):
        for i in range(0, n, batch_size):
            batch = images[i : i + batch_size].to(dev, non_blocking=True)  # (b, 3, H, W)
            for j, m in enumerate(vs):
                x = sei_view(batch, m)
                x = prec.prepare(x.float().div_(255) if x.dtype == torch.uint8 else x.float())
                with prec.autocast():
                    y = forward(x)
                if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape[0] != x.shape[0]:
                    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    raise ValueError(
                        f"the model's {output!r} output is {got}; expected one (n, d) tensor "
                        f"for a batch of n = {x.shape[0]} images"
                    )
                if out is None:
                    out = torch.empty(n, len(vs), y.shape[1], dtype=torch.float32)  # (N, W, d)
                out[i : i + batch.shape[0], j] = y.float().cpu()
                bar.update(batch.shape[0])
            del batch
    return out


def embed_features(model: nn.Module, images: torch.Tensor, **kwargs) -> torch.Tensor:
    """``embed(..., output="features")``: backbone features f(x) before the projection head."""
    kwargs.setdefault("output", "features")
    return embed(model, images, **kwargs)
