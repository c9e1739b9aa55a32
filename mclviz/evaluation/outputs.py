"""A model's outputs on an evaluation's images, computed once on demand and kept.

:class:`Outputs` is what detectors are fitted and scored on: ``outputs.get("z", "test",
views=8)`` is the (n, 8, d) projection of the test images in SEI views 0..7. Asking for
fewer views of something already embedded slices it; asking for more embeds only the
missing views. ``"scored"`` names the output the model's method is scored on
(``Method.scored_on``). With ``cache_dir`` every embedding is also kept on disk
(:func:`mclviz.embed.embed`'s content-hashed cache), and so are the outputs after a
detector's input pre-processing (keyed by the model, the images and the fitted detector:
:func:`.perturb.fitted_fingerprint`), the costliest part of an evaluation with ODIN or
Lee's Mahalanobis with pre-processing.

Splits: ``"train"``, ``"test"`` and ``"ood:<name>"`` for each OOD set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .._io import atomic_write
from ..device import Precision, resolve_precision
from ..embed import cache_file, embed, images_fingerprint, view_indices
from .data import EvalData
from .perturb import fitted_fingerprint, perturbed_outputs

__all__ = ["Outputs", "ood_split"]


def ood_split(name: str) -> str:
    """The split name of OOD set ``name``."""
    return f"ood:{name}"


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


class Outputs:
    """Embeddings of an :class:`EvalData` by one model, on demand.

    Args:
        model: the model (``MCLModel``), or None for outputs given as tensors
            (:meth:`from_tensors`).
        data: the images.
        scored_on: what ``"scored"`` means for this model (``"z"`` or ``"features"``).
        precision: ``"auto"`` / ``"fp32"`` / ``"bf16"`` / ``"fp16"`` or a resolved
            :class:`~mclviz.device.Precision` (:mod:`mclviz.device` decides ``"auto"``).
        batch_size: images per forward pass.
        cache_dir, cache_key: a disk cache (``cache_key`` names the model, e.g. its
            checkpoint's sha256).
        progress: tqdm.auto bars while embedding.
    """

    def __init__(
        self,
        model: torch.nn.Module | None,
        data: EvalData,
        *,
        scored_on: str = "z",
        precision: str | Precision = "auto",
        batch_size: int = 512,
        cache_dir: str | Path | None = None,
        cache_key: str | None = None,
        progress: bool = True,
    ) -> None:
        self.model, self.data, self.scored_on = model, data, scored_on
        dev = _model_device(model) if model is not None else torch.device("cpu")
        self.precision = (
            precision if isinstance(precision, Precision) else resolve_precision(precision, dev)
        )
        self.batch_size, self.progress = batch_size, progress
        self.cache_dir, self.cache_key = cache_dir, cache_key
        self._kept: dict[tuple[str, str], dict[int, torch.Tensor]] = {}  # view -> (n, d)
        self._perturbed: dict[tuple[str, str], torch.Tensor] = {}

    @classmethod
    def from_tensors(
        cls,
        tensors: Mapping[tuple[str, str], torch.Tensor],
        data: EvalData,
        *,
        scored_on: str = "z",
    ) -> Outputs:
        """Outputs computed elsewhere: ``{(output, split): (n, W, d)}`` (the sliders' heads)."""
        out = cls(None, data, scored_on=scored_on, precision="fp32", progress=False)
        for (name, split), t in tensors.items():
            out._kept[(out.resolve(name), split)] = {m: t[:, m] for m in range(t.shape[1])}
        return out

    def resolve(self, output: str) -> str:
        return self.scored_on if output == "scored" else output

    def images(self, split: str) -> torch.Tensor:
        if split == "train":
            return self.data.train[0]
        if split == "test":
            return self.data.test[0]
        if split.startswith("ood:") and split[4:] in self.data.ood:
            return self.data.ood[split[4:]]
        raise ValueError(
            f"split={split!r} is unknown; choose 'train', 'test' or one of "
            f"{[ood_split(n) for n in self.data.ood]}"
        )

    @property
    def splits(self) -> list[str]:
        return ["train", "test", *(ood_split(n) for n in self.data.ood)]

    def get(self, output: str, split: str, views: int | Sequence[int] = 1) -> torch.Tensor:
        """(n, W, d) float32 CPU outputs of ``split`` in SEI views ``views`` (a count W for
        views 0..W-1, or a list of view indices, e.g. ``[0, 4]``: the image and its mirror)."""
        name = self.resolve(output)
        wanted = view_indices(views)
        kept = self._kept.setdefault((name, split), {})
        missing = [m for m in wanted if m not in kept]
        if missing:
            if self.model is None and not kept:
                given = sorted(k for k, v in self._kept.items() if v)
                raise ValueError(
                    f"no {name!r} outputs of {split!r} are given (these outputs hold "
                    f"{given}); pass them to Outputs.from_tensors or build Outputs with a model"
                )
            if self.model is None:
                raise ValueError(
                    f"{name!r} of {split!r} is given in views {sorted(kept)}, and views "
                    f"{missing} are asked for; compute them or ask for fewer"
                )
            images = self.images(split)
            new = embed(
                self.model,
                images,
                views=missing,
                batch_size=self.batch_size,
                precision=self.precision,
                cache_dir=self.cache_dir if self.cache_key else None,
                cache_key=f"{self.cache_key}-{split}-{len(images)}" if self.cache_key else None,
                output=name,
                progress=self.progress,
            )  # (n, len(missing), d)
            for j, m in enumerate(missing):
                kept[m] = new[:, j]
        return torch.stack([kept[m] for m in wanted], dim=1)

    def _perturbed_path(self, name: str, split: str, detector) -> Path | None:
        """The disk cache file of a detector's pre-processed outputs, or None (no cache)."""
        fitted = fitted_fingerprint(detector)
        if self.cache_dir is None or not self.cache_key or fitted is None:
            return None
        images = self.images(split)
        key = f"{self.cache_key}|{split}|{name}|{fitted}|{images_fingerprint(images)}"
        stem = f"{self.cache_key}-{split}-{len(images)}"
        return cache_file(self.cache_dir, stem, f"perturbed-{name}", key)

    def perturbed(self, output: str, split: str, detector) -> torch.Tensor:
        """(n, 1, d) outputs of ``split`` after the detector's input pre-processing
        (:func:`.perturb.perturbed_outputs`; ``detector.epsilon > 0``), kept per detector."""
        name = self.resolve(output)
        key = (f"{name}|{detector.key}", split)
        if key not in self._perturbed:
            if self.model is None:
                raise ValueError(
                    f"{type(detector).__name__} pre-processes its inputs (epsilon="
                    f"{detector.epsilon}), which needs the model; these outputs have none"
                )
            path = self._perturbed_path(name, split, detector)
            if path is not None and path.is_file():
                from safetensors.torch import load_file

                self._perturbed[key] = load_file(str(path))["outputs"]
            else:
                out = perturbed_outputs(
                    self.model,
                    self.images(split),
                    name,
                    detector.differentiable_score,
                    detector.epsilon,
                    batch_size=self.batch_size,
                    progress=self.progress,
                )
                if path is not None:
                    from safetensors.torch import save_file

                    atomic_write(path, lambda tmp: save_file({"outputs": out.contiguous()}, tmp))
                self._perturbed[key] = out
        return self._perturbed[key]
