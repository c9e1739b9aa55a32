"""The shipped checkpoints (``checkpoints/``) and a load-or-train helper for notebooks.

``checkpoints/manifest.json`` lists one entry per method (``mcl``, ``simclr``, ...): the
file, the full config, the metrics measured when it was shipped and its sha256. The
checkpoints folder is found next to the package (a source checkout), or at
``$MCLVIZ_CHECKPOINTS``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint, load, read_manifest, sha256
from .config import Config

__all__ = ["checkpoints_dir", "load_or_train", "manifest", "shipped_checkpoint"]


def checkpoints_dir() -> Path:
    """``$MCLVIZ_CHECKPOINTS``, else the ``checkpoints/`` folder of the source checkout."""
    env = os.environ.get("MCLVIZ_CHECKPOINTS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "checkpoints"


def manifest(folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest of shipped checkpoints ({} when there is none)."""
    return read_manifest(folder or checkpoints_dir())


def shipped_checkpoint(
    method: str, folder: str | os.PathLike | None = None, *, verify: bool = True
) -> Path | None:
    """Path of the shipped checkpoint for ``method``, or None when none is shipped.

    With ``verify``, a file whose sha256 differs from the manifest raises ``ValueError``.
    """
    folder = Path(folder or checkpoints_dir())
    entry = manifest(folder).get(method)
    if entry is None:
        return None
    path = folder / entry["file"]
    if not path.exists():
        return None
    if verify and sha256(path) != entry["sha256"]:
        raise ValueError(
            f"{path} does not match its manifest sha256 ({entry['sha256'][:12]}...); "
            "restore it with `git checkout checkpoints/` or retrain it"
        )
    return path


def load_or_train(
    method: str = "mcl",
    *,
    use_shipped: bool = True,
    preset: str = "tiny",
    out: str | os.PathLike | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Checkpoint:
    """Load the shipped checkpoint of ``method``, or train one with ``preset``.

    Args:
        method: a method name of the registry (``mclviz.methods.names()``).
        use_shipped: load ``checkpoints/<method>`` when it is shipped.
        preset: the preset to train with otherwise (``tiny`` takes seconds).
        out: run folder for the trained checkpoint (reused, resumed, when it exists);
            default ``runs/<method>-<preset>``.
        overrides: config fields for the training run (e.g. ``train_subset=2000``).
    """
    if use_shipped:
        path = shipped_checkpoint(method)
        if path is not None:
            return load(path)
    from .training import train

    config = Config.preset(preset, method=method, **overrides)
    out = Path(out or f"runs/{method}-{preset}")
    if use_shipped:  # the caller asked for a shipped model and gets a trained one: say so
        warnings.warn(
            f"no shipped checkpoint for {method!r} in {checkpoints_dir()}; training the "
            f"{preset!r} preset into {out} instead (see scripts/train_shipped.py to ship one)",
            stacklevel=2,
        )
    result = train(config, out=out, resume=True, progress=progress)
    return load(result.checkpoint)


def ship(
    run_checkpoint: str | os.PathLike,
    name: str,
    folder: str | os.PathLike | None = None,
    *,
    total_steps: int | None = None,
) -> Path:
    """Copy a run's checkpoint into the shipped folder as float16 weights, update the manifest.

    The shipped file drops the optimizer state (notebooks only need the model) and keeps
    the config, progress and metrics. ``total_steps`` (the run's full schedule) lets the
    manifest say how far the run got: ``metrics["complete"]`` and ``metrics["fraction"]``.
    """
    from .checkpoint import save, update_manifest

    folder = Path(folder or checkpoints_dir())
    ck = load(run_checkpoint)
    metrics = dict(ck.metrics)
    metrics.pop("partial", None)
    if ck.config.method != "msc":
        metrics.pop("center", None)
    if total_steps:
        metrics["fraction"] = round(ck.step / total_steps, 4)
        metrics["complete"] = ck.step >= total_steps
    path = save(
        folder / f"{name}.safetensors",
        ck.model,
        ck.config,
        epoch=ck.epoch,
        step=ck.step,
        metrics=metrics,
        half=True,
    )
    update_manifest(folder, name, path, metrics)
    return path
