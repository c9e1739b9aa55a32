"""Score a user's own images with a trained checkpoint: in- or out-of-distribution?

:func:`score_images` is what ``python -m mclviz score CKPT PATH ...`` runs (the command
also writes the HTML gallery, :func:`mclviz.report.gallery.write_gallery`):

1. **Inputs.** Image files, folders (searched recursively, zip archives in them opened
   too) and zip archives, in the order given (a folder's or archive's files sorted by
   name). Hidden files and ``__MACOSX`` folders are left out; every other file is tried,
   whatever its extension: PIL recognises images by their content. A file that cannot be
   decoded is reported by name (a :class:`UndecodableImageWarning`) and skipped; the
   result counts and names them.
2. **Decoding**, as the OOD sets are decoded (:func:`mclviz.data.decode_image`): any mode
   (grayscale, RGBA, palette, ...) to RGB, alpha dropped, then reduced to the
   in-distribution images' size (32x32 for CIFAR) with PIL's ``BOX`` filter, the rule of
   ``tinyimagenet-resize``. The aspect ratio is not kept (no crop), and EXIF orientation
   is not applied: rotate such photos first (MCL's scores depend on the rotation).
3. **Detector.** The method's default (:func:`mclviz.evaluation.recommended_detector`): MCL's class Gaussians
   with 8-way SEI w-avg (Eq. 15-20) for a model trained with rotation labels (``mcl``),
   the maximum softmax probability for a classifier (``ce``, ``rot``), the class
   Gaussians on the plain image for the other contrastive models (SEI hurts them, Table
   5), the cosine kNN for a one-class ``msc`` model; or any name of
   :data:`~.pipeline.DETECTOR_NAMES`. It is fitted on the model's training images by the
   one scoring pipeline (:func:`~.pipeline.score`), which also scores the in-distribution
   test set.
4. **Threshold.** Eq. 14's delta: the largest score that keeps a fraction ``tpr`` (0.95)
   of the in-distribution test images at or above it
   (:func:`mclviz.metrics.threshold_at_tpr`), or a ``threshold`` given. A user image
   with ``score >= threshold`` is "in-distribution", else "out-of-distribution".
5. **Output.** With ``out``, a CSV written as the images are scored: the header first,
   then each batch's rows appended and flushed, so an interrupted run keeps what it
   scored. Columns: ``file, score, predicted_class, verdict, threshold, id_test_tpr,
   detector`` (``predicted_class`` is empty for a detector that does not classify).

Scores: higher = more in-distribution (Eq. 14), as everywhere in mclviz. The images are
embedded exactly as the evaluation embeds its sets (:class:`~.outputs.Outputs`, the same
precision, input pre-processing for ODIN-like detectors), so an image file scores what
the same image scores in :func:`~.evaluate.evaluate`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..checkpoint import Checkpoint, load
from ..data import class_names, decode_image, one_class
from ..device import resolve_device
from ..metrics import threshold_at_tpr
from ..scoring import Detector
from .data import EvalData, load_eval_data, subset
from .evaluate import checkpoint_outputs
from .outputs import Outputs
from .pipeline import (
    make_detectors,
    recommended_detector,
    recommended_gaussians,
    run_detector,
    score,
)

__all__ = [
    "CSV_COLUMNS",
    "IN",
    "OUT",
    "ImageInput",
    "ScoredImages",
    "UndecodableImageWarning",
    "list_inputs",
    "score_images",
]

IN = "in-distribution"
OUT = "out-of-distribution"
#: the columns of the streamed CSV, in order
CSV_COLUMNS = (
    "file",
    "score",
    "predicted_class",
    "verdict",
    "threshold",
    "id_test_tpr",
    "detector",
)


class UndecodableImageWarning(UserWarning):
    """A file given to :func:`score_images` could not be read or decoded; it is skipped."""


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ImageInput:
    """One file to score: a file on disk, or a member of a zip archive.

    Attributes:
        name: how the outputs name it: the path, or ``<archive>::<member>``.
        path: the file, or the archive.
        member: the member's name in the archive (None for a file).
    """

    name: str
    path: Path
    member: str | None = None


def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _zip_members(path: Path, skipped: list[tuple[str, str]]) -> list[ImageInput]:
    try:
        with zipfile.ZipFile(path) as z:
            names = [i.filename for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        _skip(skipped, str(path), f"cannot read the zip archive ({e})")
        return []
    names = sorted(n for n in names if not _hidden(n.split("/")))
    return [ImageInput(f"{path}::{n}", path, n) for n in names]


def list_inputs(
    paths: Sequence[str | os.PathLike],
) -> tuple[list[ImageInput], list[tuple[str, str]]]:
    """The files to score, and the archives that could not be opened (name, reason; each
    also warned about with :class:`UndecodableImageWarning`).

    Args:
        paths: image files, folders (recursive; zip archives in them are opened) and zip
            archives.

    Raises:
        FileNotFoundError: a path does not exist (nothing is scored: fix the path first).
        ValueError: ``paths`` is empty.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise ValueError("paths is empty; pass image files, folders or zip archives")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)}: no such file or folder; pass existing image files, "
            "folders or zip archives"
        )
    inputs: list[ImageInput] = []
    skipped: list[tuple[str, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*") if f.is_file() and not _hidden(f.relative_to(p).parts)
            )
        else:
            files = [p]
        for f in files:
            if _is_zip(f):
                inputs += _zip_members(f, skipped)
            else:
                inputs.append(ImageInput(str(f), f))
    return inputs, skipped


def _read(item: ImageInput, archives: dict[Path, zipfile.ZipFile], stack) -> bytes:
    if item.member is None:
        return item.path.read_bytes()
    if item.path not in archives:
        archives[item.path] = stack.enter_context(zipfile.ZipFile(item.path))
    return archives[item.path].read(item.member)


def _decoded(
    inputs: Sequence[ImageInput], side: int, skipped: list[tuple[str, str]]
) -> Iterator[tuple[ImageInput, torch.Tensor | None]]:
    """(input, uint8 (3, side, side)) for every input; None for one that cannot be read or
    decoded, which is warned about and appended to ``skipped``."""
    from PIL import Image

    archives: dict[Path, zipfile.ZipFile] = {}
    with contextlib.ExitStack() as stack:
        for item in inputs:
            try:
                arr = decode_image(_read(item, archives, stack), item.name, side)  # (H, W, 3)
            except (ValueError, OSError, zipfile.BadZipFile, Image.DecompressionBombError) as e:
                _skip(skipped, item.name, _reason(e))
                yield item, None
                continue
            yield item, torch.from_numpy(arr.transpose(2, 0, 1).copy())  # (3, side, side)


def _reason(err: Exception) -> str:
    """Why a file was skipped, in words (PIL's error, without decode_image's wrapping)."""
    from PIL import UnidentifiedImageError

    cause = err.__cause__ if isinstance(err, ValueError) and err.__cause__ else err
    if isinstance(cause, UnidentifiedImageError):
        return "not an image PIL can read (unknown format)"
    text = re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(cause)).strip()
    if isinstance(cause, OSError) and not isinstance(err, ValueError):
        return f"cannot read the file ({text})"
    return f"corrupt image ({text})" if text else "corrupt image"


def _skip(skipped: list[tuple[str, str]], name: str, reason: str) -> None:
    skipped.append((name, reason))
    warnings.warn(f"skipped {name}: {reason}", UndecodableImageWarning, stacklevel=4)


# ----------------------------------------------------------------------------- detector


def _detector(detector: str | Detector | None, config) -> Detector:
    method = config.method_entry
    if detector is None:
        return recommended_detector(method)
    if isinstance(detector, Detector):
        return detector
    if detector == "gaussians":  # one setting, not make_detectors' whole SEI set
        return recommended_gaussians(method)
    (det,) = make_detectors([detector], config)
    return det


# ----------------------------------------------------------------------------- result


@dataclass
class ScoredImages:
    """What :func:`score_images` returns.

    Attributes:
        table: one row per scored image, in input order: ``file, score,
            predicted_class, verdict``.
        images: (n, 3, S, S) uint8, the images as the model saw them (row i = table row i).
        skipped: (file, reason) of every file that could not be read or decoded.
        threshold: Eq. 14's delta; ``score >= threshold`` is in-distribution.
        tpr: the fraction of the in-distribution test images at or above ``threshold``.
        tpr_target: the TPR the threshold was chosen for (None when it was given).
        test_scores: (n_test,) the in-distribution test images' scores.
        detector: the detector's label; detector_key: its key (settings).
        method, dataset: the model's method and in-distribution data set.
        checkpoint: the checkpoint's path ("" for one given in memory).
        n_train: training images the detector was fitted on.
        csv: the streamed CSV (None without ``out``).
    """

    table: pd.DataFrame
    images: torch.Tensor
    skipped: list[tuple[str, str]]
    threshold: float
    tpr: float
    tpr_target: float | None
    test_scores: torch.Tensor
    detector: str
    detector_key: str
    method: str
    dataset: str
    checkpoint: str = ""
    n_train: int = 0
    csv: Path | None = None
    side: int = 32

    @property
    def n_scored(self) -> int:
        return len(self.table)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @property
    def n_in(self) -> int:
        return int((self.table["verdict"] == IN).sum())

    @property
    def n_out(self) -> int:
        return int((self.table["verdict"] == OUT).sum())

    @property
    def threshold_rule(self) -> str:
        """One sentence: the threshold and how it was chosen."""
        n = len(self.test_scores)
        measured = (
            f"{100 * self.tpr:.1f}% of the {n} {self.dataset} test images score at or above it"
        )
        if self.tpr_target is None:
            return f"threshold {self.threshold:.6g} (given); {measured}"
        return (
            f"threshold {self.threshold:.6g}: the largest score keeping "
            f"{100 * self.tpr_target:.1f}% of the {n} in-distribution ({self.dataset}) test "
            f"images at or above it (TPR {self.tpr_target:g}; measured {100 * self.tpr:.1f}%)"
        )

    def by_score(self) -> pd.DataFrame:
        """The table sorted by score, most in-distribution first; ``index`` = row in
        ``table`` / ``images``."""
        return self.table.reset_index(names="index").sort_values(
            "score", ascending=False, kind="stable"
        )


# ----------------------------------------------------------------------------- scoring


def _eval_data(ck: Checkpoint, data_root, train_subset, test_subset) -> EvalData:
    cfg = ck.config
    root = data_root or cfg.data_root
    if cfg.method_entry.one_class:  # fit and threshold on the normal class's images
        data = load_eval_data(cfg.dataset, ood=(), data_root=root)
        (xtr, ytr), (xte, yte) = data.train, data.test
        ktr, kte = one_class(ytr, cfg.normal_class), one_class(yte, cfg.normal_class)
        train = subset(xtr[ktr], torch.zeros(int(ktr.sum()), dtype=torch.long), train_subset)
        test = subset(xte[kte], torch.zeros(int(kte.sum()), dtype=torch.long), test_subset)
        return EvalData(train, test)
    return load_eval_data(
        cfg.dataset,
        ood=(),
        known_classes=cfg.known_classes,
        data_root=root,
        train_subset=train_subset,
        test_subset=test_subset,
    )


def _names(ck: Checkpoint, data_root) -> list[str]:
    cfg = ck.config
    if cfg.method_entry.one_class:
        return []
    names = class_names(cfg.dataset, data_root or cfg.data_root)
    if cfg.known_classes:
        names = [names[k] for k in cfg.known_classes]
    return names


def _check_rate(tpr: float, threshold: float | None) -> None:
    if threshold is not None:
        try:
            ok = not isinstance(threshold, bool) and math.isfinite(float(threshold))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"threshold={threshold!r} must be a finite number, a score of the detector "
                "(or pass tpr= to choose it on the test set)"
            )
        return
    try:
        ok = 0 < float(tpr) <= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"tpr={tpr!r} must be in (0, 1], the fraction of in-distribution test images "
            "kept at or above the threshold (e.g. 0.95)"
        )


class _BatchScorer:
    """The CSV rows of one batch of user images: scored as the pipeline scores a split,
    with the fitted detector, against the threshold ``delta``."""

    def __init__(self, det, outputs, data, delta, measured, names, batch_size) -> None:
        self.det, self.outputs, self.data = det, outputs, data
        self.delta, self.measured, self.names = delta, measured, names
        self.batch_size = batch_size

    def __call__(self, items: list[ImageInput], xb: torch.Tensor) -> pd.DataFrame:
        one = Outputs(
            self.outputs.model,
            EvalData(self.data.train, (xb, torch.full((len(xb),), -1, dtype=torch.long))),
            scored_on=self.outputs.scored_on,
            precision=self.outputs.precision,
            batch_size=self.batch_size,
            progress=False,
        )
        pred, s = run_detector(self.det, one, "test")  # the pipeline's own scoring of a split
        s = s.double()
        names = self.names
        return pd.DataFrame(
            {
                "file": [i.name for i in items],
                "score": s.tolist(),
                "predicted_class": (
                    [names[p] if 0 <= p < len(names) else str(p) for p in pred.tolist()]
                    if pred is not None
                    else [""] * len(items)
                ),
                "verdict": [IN if v >= self.delta else OUT for v in s.tolist()],
                "threshold": self.delta,
                "id_test_tpr": self.measured,
                "detector": self.det.label,
            },
            columns=list(CSV_COLUMNS),
        )


def _stream(inputs, side, skipped, rows_of, csv_path, batch_size, progress, on_batch):
    """Decode, score and write the inputs batch by batch (the CSV is flushed after every
    batch); returns the batches' rows and images. Undecodable files go to ``skipped``."""
    from tqdm.auto import tqdm

    parts: list[pd.DataFrame] = []
    kept: list[torch.Tensor] = []
    with contextlib.ExitStack() as stack:
        writer = None
        if csv_path is not None:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(open(csv_path, "w", newline="", encoding="utf-8"))
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            fh.flush()
        bar = stack.enter_context(
            tqdm(total=len(inputs), desc="scoring images", unit="img", disable=not progress)
        )
        items: list[ImageInput] = []
        xs: list[torch.Tensor] = []

        def flush() -> None:
            xb = torch.stack(xs)  # (b, 3, side, side)
            rows = rows_of(items, xb)
            if writer is not None:
                writer.writerows(rows.itertuples(index=False, name=None))
                fh.flush()
            parts.append(rows)
            kept.append(xb)
            bar.update(len(items))
            items.clear()
            xs.clear()
            if on_batch is not None:
                on_batch(rows)

        for item, x in _decoded(inputs, side, skipped):
            if x is None:
                bar.update(1)
                bar.set_postfix_str(f"skipped {len(skipped)}", refresh=False)
                continue
            items.append(item)
            xs.append(x)
            if len(xs) == batch_size:
                flush()
        if xs:
            flush()
    return parts, kept


def score_images(
    checkpoint: str | os.PathLike | Checkpoint,
    paths: Sequence[str | os.PathLike],
    *,
    detector: str | Detector | None = None,
    tpr: float = 0.95,
    threshold: float | None = None,
    out: str | os.PathLike | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    data_root: str | None = None,
    batch_size: int = 256,
    precision: str = "auto",
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    on_batch: Callable[[pd.DataFrame], None] | None = None,
) -> ScoredImages:
    """Score image files with a checkpoint and call each in- or out-of-distribution.

    See the module docstring for the inputs, the decoding, the detector and the threshold.

    Args:
        checkpoint: a checkpoint path or a loaded :class:`~mclviz.checkpoint.Checkpoint`.
        paths: image files, folders (recursive) and zip archives.
        detector: a name of :data:`~.pipeline.DETECTOR_NAMES` (``"gaussians"``: the
            method's default Gaussians; ``+flip`` adds flip TTA), an unfitted
            :class:`~mclviz.scoring.Detector`, or None for :func:`mclviz.evaluation.recommended_detector`.
        tpr: the fraction of in-distribution test images the threshold keeps, in (0, 1].
        threshold: a threshold to use instead (then ``tpr`` is only measured).
        out: the CSV to stream the rows into (created or overwritten); None writes nothing.
        train_subset, test_subset: seeded subsets of the training images (to fit the
            detector) and of the test images (for the threshold); default all of them.
        data_root: where the in-distribution data set is (default: the config's, then
            ``$MCLVIZ_DATA``).
        batch_size: user images decoded, embedded and written to the CSV per batch (the
            training and test images are embedded in ``evaluate``'s batches).
        precision: embedding precision, as :func:`~.evaluate.evaluate`.
        device: where a checkpoint given as a path runs (``"auto"``: a GPU when there is one).
        cache_dir: keep the training and test embeddings on disk (keyed by the
            checkpoint's sha256), so the next call with this checkpoint skips them.
        progress: tqdm.auto bars (embedding the training and test images, scoring).
        on_batch: called with each batch's rows (a DataFrame of :data:`CSV_COLUMNS`)
            once they are written.

    Returns:
        :class:`ScoredImages`.

    Raises:
        FileNotFoundError: a path does not exist (checked before any work).
        ValueError: a bad ``tpr`` / ``threshold`` / ``batch_size``, an unknown detector,
            or no file that decodes.

    >>> r = score_images("runs/mcl/checkpoint.safetensors", ["photos/"], out="s.csv")  # doctest: +SKIP
    >>> r.n_in, r.n_out, r.n_skipped, r.threshold_rule  # doctest: +SKIP
    """
    _check_rate(tpr, threshold)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (e.g. 256)")
    inputs, skipped = list_inputs(paths)
    ck = (
        checkpoint
        if isinstance(checkpoint, Checkpoint)
        else load(checkpoint, device=resolve_device(device))
    )
    cfg = ck.config
    det = _detector(detector, cfg)
    data = _eval_data(ck, data_root, train_subset, test_subset)
    side = int(data.test[0].shape[-1])

    # the training and test images are embedded as evaluate() embeds them (its batches)
    outputs = checkpoint_outputs(
        ck, data, precision=precision, cache_dir=cache_dir, progress=progress
    )
    fitted = score(outputs, [det], method=cfg.method)[det.key]
    test_scores = fitted.score_in
    delta = float(threshold) if threshold is not None else threshold_at_tpr(test_scores, tpr)
    measured = float((test_scores >= delta).double().mean())
    rows_of = _BatchScorer(det, outputs, data, delta, measured, _names(ck, data_root), batch_size)
    csv_path = Path(out) if out is not None else None
    parts, kept = _stream(inputs, side, skipped, rows_of, csv_path, batch_size, progress, on_batch)
    if not parts:
        raise ValueError(
            f"none of the {len(inputs)} files could be decoded as an image (skipped: "
            + "; ".join(f"{n}: {r}" for n, r in skipped[:5])
            + ("; ..." if len(skipped) > 5 else "")
            + "); pass image files (PNG, JPEG, ...), folders or zip archives of them"
        )
    table = pd.concat(parts, ignore_index=True)[["file", "score", "predicted_class", "verdict"]]
    return ScoredImages(
        table=table,
        images=torch.cat(kept),
        skipped=skipped,
        threshold=delta,
        tpr=measured,
        tpr_target=None if threshold is not None else float(tpr),
        test_scores=test_scores,
        detector=det.label,
        detector_key=det.key,
        method=cfg.method,
        dataset=str(cfg.dataset),
        checkpoint=str(ck.path) if ck.path is not None else "",
        n_train=len(data.train[1]),
        csv=csv_path,
        side=side,
    )
