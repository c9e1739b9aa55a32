"""Checkpoints: one safetensors file holding weights, config, progress and optimizer state.

A checkpoint is a single ``.safetensors`` file:

* tensors ``model/<name>``: the model's ``state_dict`` (weights and batch-norm buffers);
* tensors ``optim/<param index>/<name>``: the optimizer's per-parameter tensors (SGD's
  momentum buffers), when an optimizer was passed;
* string metadata: ``format``, ``config`` (the full :class:`~mclviz.config.Config` as
  JSON), ``epoch``, ``step``, ``metrics`` (JSON), ``optimizer`` (the JSON-able rest of the
  optimizer's state: param groups and scalar state), ``scheduler`` (JSON).

So ``load(path)`` rebuilds the model with no other argument. Writing goes to a temporary
file in the same folder, is flushed to disk, then renamed over the target
(``os.replace`` is atomic on POSIX): killing the process during a save leaves the
previous checkpoint intact.

Safety: safetensors holds only tensors and strings, so reading one never runs code.
Files in PyTorch's pickle format (the authors' released ``epoch_800.pt``) are read only
through ``torch.load(weights_only=True)``, PyTorch's restricted unpickler, which accepts
tensors and plain containers and refuses any other object; a refused file raises
:class:`CheckpointError` saying so. Nothing here ever calls an unrestricted unpickler.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._io import atomic_write, atomic_write_text, sha256
from .config import Config
from .models import ARCHS, MCLModel, build_model

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "build_model_from_config",
    "load",
    "load_official",
    "official_to_mclviz",
    "read_manifest",
    "save",
    "sha256",
    "update_manifest",
]

FORMAT = "mclviz-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot (or must not) be loaded; the message says why and what to do."""


@dataclass
class Checkpoint:
    """What ``load`` returns: a ready model and everything saved beside it."""

    model: MCLModel
    config: Config
    epoch: int = 0
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    path: Path | None = None
    sha256: str | None = None
    live_state: dict[str, torch.Tensor] | None = (
        None  # training weights, when ``model`` is their average
    )


def build_model_from_config(config: Config) -> MCLModel:
    """The model a run with ``config`` trains (heads included), freshly initialised."""
    entry = config.method_entry
    num_classes = 0
    if entry.needs_classifier(config):
        if config.num_classes is None:
            raise ValueError(
                f"method={config.method!r} builds a classifier, but config.num_classes is None; "
                "set num_classes (mclviz.training.train sets it from the training labels)"
            )
        num_classes = config.num_classes
    return build_model(
        config.arch,
        width=config.width,
        proj_dim=config.proj_dim,
        num_classes=num_classes,
        rot_classes=4 if entry.rot_head else 0,
        head_hidden=config.head_hidden,
        normalize_input=config.normalize_input,
        head_norm=config.head_norm,
        bn_momentum=config.bn_momentum,
    )


# ----------------------------------------------------------------------------- saving
def _optimizer_payload(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save(
    path: str | os.PathLike,
    model: torch.nn.Module,
    config: Config,
    *,
    epoch: int = 0,
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler_state: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    half: bool = False,
    live: torch.nn.Module | None = None,
) -> Path:
    """Write a checkpoint atomically and return its path.

    Args:
        path: target file (``.safetensors``); its folder is created when missing.
        model: the model whose ``state_dict`` is saved.
        config: the run's config, saved as JSON.
        epoch: completed epochs. step: optimizer steps taken so far.
        optimizer: saved so that a run can resume exactly; omit for shipped weights.
        scheduler_state: JSON-able schedule position (mclviz's schedule is a pure function
            of the step, so this records its parameters).
        metrics: JSON-able metrics so far (loss history, accuracy, AUROC...).
        half: store floating-point weights as float16 (halves the size of shipped
            checkpoints; ``load`` casts back to float32).
        live: when ``model`` is a weight average, the model being trained (saved as
            ``live/<name>`` so that a run resumes exactly; ``load`` returns ``model``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        tensors[f"model/{name}"] = value
    if live is not None:
        for name, value in live.state_dict().items():
            tensors[f"live/{name}"] = value.detach().cpu().contiguous()
    meta = {
        "format": FORMAT,
        "config": config.to_json(),
        "epoch": str(int(epoch)),
        "step": str(int(step)),
        "metrics": json.dumps(dict(metrics or {})),
        "scheduler": json.dumps(dict(scheduler_state or {})),
    }
    if optimizer is not None:
        opt_tensors, opt_meta = _optimizer_payload(optimizer)
        tensors.update(opt_tensors)
        meta["optimizer"] = json.dumps(opt_meta)
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


# ---------------------------------------------------------------------------- loading
def _kind(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:2] == b"PK":
        return "torch-zip"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint ({err}); it may be truncated "
            "or corrupt: use an earlier checkpoint or retrain"
        ) from None


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save`, or the authors' released MCL format.

    The model comes back in eval mode on ``device``, in float32.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is corrupt, or is a pickle that holds more than tensors
            (it is refused without running it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train one with `python -m mclviz train ...` or pass "
            "the path of a .safetensors file written by mclviz"
        )
    kind = _kind(path)
    if kind in ("torch-zip", "pickle"):
        model = load_official(path).to(device).eval()
        cfg = Config.preset(
            "paper",
            arch=model.arch,
            width=model.width,
            proj_dim=model.proj_dim,
            head_hidden=model.head[0].out_features,
            normalize_input=False,
            extra={"source": "authors' released checkpoint", "file": path.name},
        )
        return Checkpoint(model, cfg, path=path, sha256=sha256(path))
    if kind != "safetensors":
        raise CheckpointError(
            f"{path} is neither a safetensors checkpoint nor a PyTorch file; "
            "pass a file written by mclviz.checkpoint.save"
        )
    tensors, meta = _read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not an mclviz checkpoint "
            f"(format={meta.get('format')!r}, expected {FORMAT!r})"
        )
    config = Config.from_json(meta["config"])
    model = build_model_from_config(config)
    state = {
        k[len("model/") :]: v.float() if v.is_floating_point() else v
        for k, v in tensors.items()
        if k.startswith("model/")
    }
    model.load_state_dict(state)
    live_state = {k[len("live/") :]: v for k, v in tensors.items() if k.startswith("live/")}
    optimizer_state = None
    if "optimizer" in meta:
        opt_meta = json.loads(meta["optimizer"])
        per_param: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, idx, name = key.split("/", 2)
                per_param.setdefault(int(idx), {})[name] = value
        for idx, scalars in opt_meta["scalars"].items():
            per_param.setdefault(int(idx), {}).update(scalars)
        optimizer_state = {"state": per_param, "param_groups": opt_meta["param_groups"]}
    return Checkpoint(
        model=model.to(device).eval(),
        config=config,
        epoch=int(meta.get("epoch", 0)),
        step=int(meta.get("step", 0)),
        metrics=json.loads(meta.get("metrics", "{}")),
        optimizer_state=optimizer_state,
        scheduler_state=json.loads(meta.get("scheduler", "{}")),
        path=path,
        sha256=sha256(path),
        live_state=live_state or None,
    )


# ----------------------------------------------------------------- authors' format
def official_to_mclviz(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the authors' MCL state dict onto mclviz's ``MCLModel`` names.

    Their model (``models/models.py`` of the released code) is a torchvision ResNet
    under ``enc.`` with a 3x3 stem, no max-pool and ``fc = Identity``, and a projection
    head ``projector`` = Linear(512, 2048), ReLU, Linear(2048, 128). A ``module.``
    prefix (DataParallel) is dropped. Renames: ``enc.`` -> ``backbone.``,
    ``downsample`` -> ``shortcut``, ``projector.`` -> ``head.``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name.startswith("enc.fc."):
            continue  # their fc is an Identity; a leftover Linear is not part of MCL's model
        if name.startswith("enc."):
            name = "backbone." + name[len("enc.") :].replace(".downsample.", ".shortcut.")
        elif name.startswith("projector."):
            name = "head." + name[len("projector.") :]
        else:
            raise CheckpointError(
                f"unexpected key {key!r} in the authors' checkpoint; expected keys under "
                "'enc.' (encoder) and 'projector.' (projection head)"
            )
        out[name] = value
    return out


def _unwrap(obj: Any) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if key in obj and isinstance(obj[key], Mapping):
                return obj[key]
        if all(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise CheckpointError(
        "the file holds no state dict of tensors (looked at the top level and under "
        "'state_dict', 'model_state_dict', 'model', 'net')"
    )


def load_official(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> MCLModel:
    """Build an ``MCLModel`` from the authors' released checkpoint (or its state dict).

    The depth (ResNet-18 / 34), projection sizes and head width are read from the
    tensors. Their pixels are not standardised, so the model has ``normalize_input=False``.
    """
    if isinstance(source, Mapping):
        raw = _unwrap(source)
    else:
        path = Path(source)
        try:
            raw = _unwrap(torch.load(path, map_location="cpu", weights_only=True))
        except pickle.UnpicklingError as err:
            raise CheckpointError(
                f"refused to load {path}: it is a pickle holding Python objects other than "
                "tensors, and unpickling those would run code from the file. mclviz only "
                f"reads plain tensors from pickles ({str(err).splitlines()[0]}). Re-save the "
                "weights alone (torch.save(model.state_dict(), ...)) from a trusted copy."
            ) from None
        except (RuntimeError, EOFError) as err:
            raise CheckpointError(f"{path} is not a readable PyTorch file ({err})") from None
    state = official_to_mclviz(raw)
    blocks = {
        k.split(".")[1] + "." + k.split(".")[2] for k in state if k.startswith("backbone.layer")
    }
    depths = tuple(sum(1 for b in blocks if b.startswith(f"layer{i}.")) for i in range(1, 5))
    arch = next((name for name, d in ARCHS.items() if d == depths), None)
    if arch is None:
        raise CheckpointError(f"block counts {depths} match neither resnet18 nor resnet34")
    width = state["backbone.conv1.weight"].shape[0] / 64
    model = build_model(
        arch,
        width=width,
        proj_dim=state["head.2.weight"].shape[0],
        head_hidden=state["head.0.weight"].shape[0],
        normalize_input=False,
    )
    missing, unexpected = model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False
    )
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"the authors' checkpoint does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval()


# ------------------------------------------------------------------------ manifest
def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``manifest.json`` of a checkpoints folder ({} when there is none)."""
    path = Path(folder) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def update_manifest(
    folder: str | os.PathLike,
    name: str,
    checkpoint_file: str | os.PathLike,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Add or replace the entry ``name`` (config, metrics, sha256, size) and rewrite atomically."""
    folder = Path(folder)
    ck = load(checkpoint_file)
    entry = {
        "file": Path(checkpoint_file).name,
        "method": ck.config.method,
        "config": ck.config.to_dict(),
        "epoch": ck.epoch,
        "step": ck.step,
        "metrics": dict(metrics if metrics is not None else ck.metrics),
        "sha256": ck.sha256,
        "bytes": Path(checkpoint_file).stat().st_size,
    }
    manifest = read_manifest(folder)
    manifest[name] = entry
    atomic_write_text(
        folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    )
    return entry
