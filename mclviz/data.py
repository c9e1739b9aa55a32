"""Image data sets as uint8 tensors, plus open-set and one-class splits.

Every loader returns ``(images, labels)``: ``images`` a uint8 tensor (N, 3, H, W), ``labels`` an
int64 tensor (N,). Out-of-distribution sets without classes carry the label -1.

Data sets (``DATASETS``), looked up in the data root (``root=`` -> ``$MCLVIZ_DATA`` -> ``./data``):

- ``cifar10``, ``cifar100``, ``svhn``: torchvision's own files (``cifar-10-batches-py/``,
  ``cifar-100-python/``, ``{train,test,extra}_32x32.mat``), read with torchvision's classes; or a
  ``<name>/`` folder / ``<name>.zip`` archive in image-folder layout (``<split>/<class>/<image>``,
  e.g. the shared ``cifar10.zip``). If none is there, torchvision's download into the root is
  tried; if that fails too, a ``FileNotFoundError`` says where to put the files.
- ``tinyimagenet-resize``: ODIN's "ImageNet (resize)": the 10,000 Tiny ImageNet test images
  (``tinyimagenet-test.zip`` or ``tinyimagenet-test/``, ``test/images/*.JPEG``, 64x64) reduced to
  32x32 with PIL's ``BOX`` filter (each output pixel is the mean of a 2x2 block); labels -1.
- ``digits``: scikit-learn's 8x8 digits (bundled, offline), bilinearly upsampled to 32x32 RGB.
- ``gaussian``, ``uniform``: synthetic noise images, 32x32, labels -1.
- any path to an image folder or a zip archive of one (``<split>/<class>/<image>``).

Image-folder labels index the sorted union of the class-folder names of all splits, so train
and test share one labelling (for CIFAR-10 this equals torchvision's class order).

Decoded image folders / zips are cached as ``.npy`` files in ``cache_dir`` (argument ->
``$MCLVIZ_CACHE`` -> ``~/.cache/mclviz``), keyed by the source's path, size and mtime, the split
and the resize; a new entry replaces the stale ones of the same source and split;
``cache_dir=False`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import io
import json
import operator
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ._io import atomic_write

__all__ = [
    "DATASETS",
    "class_names",
    "data_root",
    "decode_image",
    "load_images",
    "one_class",
    "open_set_split",
    "validation_split",
]

DATASETS: tuple[str, ...] = (
    "cifar10",
    "cifar100",
    "svhn",
    "digits",
    "tinyimagenet-resize",
    "gaussian",
    "uniform",
)

_SPLITS: dict[str, tuple[str, ...]] = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "svhn": ("train", "test", "extra"),
    "digits": ("train", "test"),
}
_TORCHVISION_FILES = {
    "cifar10": "cifar-10-batches-py/",
    "cifar100": "cifar-100-python/",
    "svhn": "train_32x32.mat, test_32x32.mat, extra_32x32.mat",
}
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")
_DIGITS_N_TRAIN = 1437  # first 1,437 of sklearn's 1,797 digits are "train", the last 360 "test"
_SYNTHETIC_N = 10_000
_TINYIMAGENET = "tinyimagenet-test"
_CACHE_VERSION = 1

CacheDir = str | os.PathLike[str] | Literal[False] | None


# ----------------------------------------------------------------------------- paths


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the data sets.

    Args:
        root: explicit folder; if None, ``$MCLVIZ_DATA``; if unset, ``./data``.

    Returns:
        The folder as a ``Path`` (``~`` expanded; not checked for existence).
    """
    if root is None:
        root = os.environ.get("MCLVIZ_DATA") or "data"
    return Path(root).expanduser()


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache folder: ``cache_dir`` -> ``$MCLVIZ_CACHE`` -> ``~/.cache/mclviz``."""
    if cache_dir is None:
        cache_dir = os.environ.get("MCLVIZ_CACHE") or Path.home() / ".cache" / "mclviz"
    return Path(cache_dir).expanduser()


# ----------------------------------------------------------------------------- public API


def load_images(
    name: str | os.PathLike[str],
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    *,
    n: int | None = None,
    seed: int = 0,
    cache_dir: CacheDir = None,
) -> tuple[Tensor, Tensor]:
    """Load a data set as uint8 images and int64 labels.

    Args:
        name: one of ``DATASETS``, or a path to an image folder / zip archive laid out as
            ``<split>/<class>/<image>`` (a zip may wrap that in one enclosing folder; a
            relative path is tried as given, then inside the data root).
        split: ``"train"`` or ``"test"`` (``svhn`` also ``"extra"``; image folders: their
            top-level folders). ``tinyimagenet-resize`` maps every split to the Tiny ImageNet
            test images; ``gaussian`` / ``uniform`` ignore the split.
        root: data root; None means ``$MCLVIZ_DATA``, then ``./data``.
        n: if given, a random subset of exactly n images, drawn with ``seed`` and returned in
            source order. For ``gaussian`` / ``uniform`` it is the number of images to generate
            (default 10,000). Never applied unless asked.
        seed: seed of the subset, and of the noise for ``gaussian`` / ``uniform``.
        cache_dir: cache of decoded image folders / zips (the first load decodes with a tqdm
            progress bar and writes ``<source>-<hash>-<split>-<key>.{images,labels}.npy``);
            None means ``$MCLVIZ_CACHE``, then ``~/.cache/mclviz``; ``False`` disables the cache.
            torchvision files, digits and the noise sets are not cached (they load fast).

    Returns:
        images: uint8 (N, 3, H, W). labels: int64 (N,), -1 for sets without classes.

    Raises:
        ValueError: unknown name, bad split, bad ``n`` or ``seed``, corrupt archive/image, a
            folder without images, images of different sizes in one split.
        FileNotFoundError: the data set or path does not exist (the message names the paths
            looked at and where to put the files).

    >>> x, y = load_images("gaussian", n=4)
    >>> x.shape, x.dtype, y.tolist()
    (torch.Size([4, 3, 32, 32]), torch.uint8, [-1, -1, -1, -1])
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n={n!r} must be a positive int (the subset size) or None (all images)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed={seed!r} must be an int")
    if not isinstance(split, str):
        raise ValueError(f"split={split!r} must be a string such as 'train' or 'test'")
    key = str(name)
    if key in ("gaussian", "uniform"):
        return _synthetic(key, _SYNTHETIC_N if n is None else n, seed)
    if key in _SPLITS:
        _check_split(key, split, _SPLITS[key])
    if key == "digits":
        images, labels = _digits(split)
    elif key in _TORCHVISION_FILES:
        images, labels = _torchvision_or_folder(key, split, data_root(root), cache_dir)
    elif key == "tinyimagenet-resize":
        images, labels = _tinyimagenet_resize(data_root(root), cache_dir)
    else:
        path = _as_image_folder_path(name, root)
        images, labels = _load_folder_source(_FolderSource(path), split, None, cache_dir)
    return _subset(images, labels, n, seed)


def class_names(
    name: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> list[str]:
    """Class names, indexed by label.

    Args:
        name: as in ``load_images``.
        root: data root, as in ``load_images``.

    Returns:
        ``names[label]`` for every label >= 0; an empty list for sets whose labels are all -1
        (``tinyimagenet-resize``, ``gaussian``, ``uniform``).
    """
    key = str(name)
    if key in ("gaussian", "uniform", "tinyimagenet-resize"):
        return []
    if key in ("digits", "svhn"):
        return [str(d) for d in range(10)]
    if key in ("cifar10", "cifar100"):
        root_path = data_root(root)
        if _has_torchvision_files(key, root_path):
            return list(_torchvision_dataset(key, root_path, "test", download=False).classes)
        folder = _find_folder_source(key, root_path)
        if folder is None:
            _torchvision_or_folder(key, "test", root_path, False)  # tries a download or raises
            return class_names(key, root)
        return folder.classes
    return _FolderSource(_as_image_folder_path(name, root)).classes


def open_set_split(
    labels: Tensor, known: Sequence[int] = (0, 1, 2, 3, 4, 5)
) -> tuple[Tensor, Tensor]:
    """Split labels into known and unknown classes (open-set recognition).

    Args:
        labels: int (N,) class labels.
        known: the known classes, distinct non-negative ints; ``known[i]`` is relabelled ``i``.

    Returns:
        known_mask: bool (N,), True where the label is a known class.
        relabel: int64 (N,), ``i`` where ``labels == known[i]``, -1 for unknown classes.

    >>> open_set_split(torch.tensor([5, 0, 9]), known=(0, 5))
    (tensor([ True,  True, False]), tensor([ 1,  0, -1]))
    """
    labels = _check_labels(labels)
    known_list = _int_list(known, "known")
    if not known_list:
        raise ValueError("known=() is empty; pass at least one known class, e.g. known=(0, 1)")
    if len(set(known_list)) != len(known_list) or min(known_list) < 0:
        raise ValueError(f"known={tuple(known_list)} must be distinct non-negative class labels")
    known_t = torch.tensor(known_list, dtype=labels.dtype, device=labels.device)
    hit = labels[:, None] == known_t[None, :]  # (N, K)
    known_mask = hit.any(dim=1)
    relabel = torch.where(known_mask, hit.to(torch.int8).argmax(dim=1), -1).to(torch.int64)
    return known_mask, relabel


def validation_split(labels: Tensor, n: int, seed: int = 0) -> Tensor:
    """A seeded, class-stratified validation mask of ``n`` training images.

    Every class gives ``n * (its share of the images)`` images (rounded, the remainder to
    the largest classes), drawn without replacement with a generator seeded by ``seed``;
    the rest stays for training. Tune on these images, never on the test or OOD sets.

    Args:
        labels: int (N,) class labels.
        n: size of the validation set, 0 <= n < N.
        seed: the draw's seed.

    Returns:
        bool (N,), True for the validation images.

    >>> int(validation_split(torch.arange(10).repeat(10), 20).sum())
    20
    """
    labels = _check_labels(labels)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < len(labels):
        raise ValueError(
            f"n={n!r} must be an int in [0, {len(labels)}) (the number of validation images)"
        )
    classes, counts = torch.unique(labels, return_counts=True)
    quota = (counts.double() * n / len(labels)).floor().long()
    order = torch.argsort(counts, descending=True, stable=True)
    quota[order[: n - int(quota.sum())]] += 1  # the remainder to the largest classes
    gen = torch.Generator().manual_seed(int(seed))
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c, q in zip(classes.tolist(), quota.tolist(), strict=True):  # over classes, not images
        idx = torch.nonzero(labels.cpu() == c).squeeze(1)
        mask[idx[torch.randperm(len(idx), generator=gen)[:q]]] = True
    return mask.to(labels.device)


def one_class(labels: Tensor, normal: int | Sequence[int]) -> Tensor:
    """Mask of the normal class(es) for one-class anomaly detection.

    Args:
        labels: int (N,) class labels.
        normal: the normal class, or a sequence of normal classes.

    Returns:
        bool (N,), True where the sample is normal.

    >>> one_class(torch.tensor([0, 3, 3]), normal=3).tolist()
    [False, True, True]
    """
    labels = _check_labels(labels)
    normal_list = _int_list(normal, "normal")
    if not normal_list:
        raise ValueError("normal=() is empty; pass a class label, e.g. normal=0")
    return torch.isin(labels, torch.tensor(normal_list, dtype=labels.dtype, device=labels.device))


# ----------------------------------------------------------------------------- checks


def _check_split(name: str, split: str, valid: Sequence[str]) -> None:
    if split not in valid:
        raise ValueError(
            f"split={split!r} is not a split of {name}; valid splits: {', '.join(valid)}"
        )


def _check_labels(labels: Tensor) -> Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D integer tensor (N,), got dtype {labels.dtype} and shape "
            f"{tuple(labels.shape)}"
        )
    return labels


def _int_list(values: int | Sequence[int], arg: str) -> list[int]:
    """``values`` (an int or a sequence of ints) as a list of Python ints."""
    items = [values] if _is_int(values) else values
    try:
        items = list(items)  # type: ignore[arg-type]
    except TypeError:
        items = [None]
    if not all(_is_int(v) for v in items):
        raise ValueError(f"{arg}={values!r} must be an int or a sequence of ints")
    return [operator.index(v) for v in items]


def _is_int(v: object) -> bool:
    if isinstance(v, bool):
        return False
    try:
        operator.index(v)
    except TypeError:
        return False
    return True


def _subset(images: Tensor, labels: Tensor, n: int | None, seed: int) -> tuple[Tensor, Tensor]:
    if n is None:
        return images, labels
    total = images.shape[0]
    if n > total:
        raise ValueError(f"n={n} is larger than the data set ({total} images); pass n <= {total}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(total, generator=g)[:n].sort().values
    return images[idx], labels[idx]


# ----------------------------------------------------------------------------- synthetic sets


def _synthetic(kind: str, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Noise images (n, 3, 32, 32) uint8 = round(255 * x).

    gaussian: x = clip(N(0.5, 1), 0, 1), as in the ODIN / Mahalanobis repositories.
    uniform: x ~ U[0, 1]. The first n images of the stream for a given seed do not depend on n.
    """
    g = torch.Generator().manual_seed(seed)
    shape = (n, 3, 32, 32)
    x = (
        torch.randn(shape, generator=g).add_(0.5).clamp_(0, 1)
        if kind == "gaussian"
        else torch.rand(shape, generator=g)
    )
    images = x.mul_(255).round_().to(torch.uint8)
    return images, torch.full((n,), -1, dtype=torch.int64)


def _digits(split: str) -> tuple[Tensor, Tensor]:
    """scikit-learn digits (8x8, values 0..16) as (N, 3, 32, 32) uint8.

    Pixels are scaled to 0..255, upsampled bilinearly (align_corners=False) to 32x32 and
    repeated over 3 channels. Split: the first 1,437 images are "train", the last 360 "test".
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).mul_(255.0 / 16.0)[
        :, None
    ]  # (N, 1, 8, 8)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    images = x.round_().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    part = slice(0, _DIGITS_N_TRAIN) if split == "train" else slice(_DIGITS_N_TRAIN, None)
    return images[part].clone(), labels[part].clone()


# ----------------------------------------------------------------------------- torchvision sets


def _has_torchvision_files(name: str, root: Path) -> bool:
    if name == "svhn":
        return any((root / f"{s}_32x32.mat").exists() for s in _SPLITS["svhn"])
    return (root / _TORCHVISION_FILES[name].rstrip("/")).is_dir()


def _torchvision_dataset(name: str, root: Path, split: str, *, download: bool):
    import torchvision.datasets as tvd

    if name == "svhn":
        return tvd.SVHN(str(root), split=split, download=download)
    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    return cls(str(root), train=split == "train", download=download)


def _from_torchvision(name: str, ds) -> tuple[Tensor, Tensor]:
    if name == "svhn":  # data (N, 3, 32, 32); torchvision maps label 10 to 0
        images = torch.from_numpy(np.ascontiguousarray(ds.data))
        labels = torch.as_tensor(np.asarray(ds.labels), dtype=torch.int64)
    else:  # data (N, 32, 32, 3)
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return images, labels


def _find_folder_source(name: str, root: Path) -> _FolderSource | None:
    for candidate in (root / name, root / f"{name}.zip"):
        if candidate.exists():
            return _FolderSource(candidate)
    return None


def _torchvision_or_folder(
    name: str, split: str, root: Path, cache_dir: CacheDir
) -> tuple[Tensor, Tensor]:
    """torchvision files -> ``<name>/`` folder -> ``<name>.zip`` -> torchvision download -> error."""
    problems: list[str] = []
    if _has_torchvision_files(name, root):
        try:
            return _from_torchvision(name, _torchvision_dataset(name, root, split, download=False))
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
            problems.append(f"torchvision files in {root} rejected by torchvision ({e})")
    folder = _find_folder_source(name, root)
    if folder is not None:
        return _load_folder_source(folder, split, None, cache_dir)
    try:
        return _from_torchvision(name, _torchvision_dataset(name, root, split, download=True))
    except Exception as e:  # any download failure (no network, bad archive) ends in the error below
        problems.append(f"torchvision download failed ({type(e).__name__}: {e})")
    raise FileNotFoundError(
        f"{name} ({split}) not found in data root {root}: looked for torchvision's files "
        f"({_TORCHVISION_FILES[name]} in {root}), an image folder {root / name} and a zip "
        f"{root / (name + '.zip')} (layout <split>/<class>/<image>); "
        + "; ".join(problems)
        + ". Fix: put either layout in that folder and set MCLVIZ_DATA to it or pass root=."
    )


# ----------------------------------------------------------------------------- image folders / zips


@dataclass(frozen=True)
class _Member:
    split: str
    cls: str
    ref: str  # zip member name or file path


class _FolderSource:
    """An image folder or a zip of one, laid out as ``[<enclosing>/]<split>/<class>/<image>``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_zip = path.is_file()
        self._members: list[_Member] | None = None

    def _list(self) -> list[_Member]:
        if self._members is not None:
            return self._members
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as z:
                    names = [i.filename for i in z.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                raise ValueError(
                    f"cannot read zip archive {self.path}: {e}; the file is corrupt or not a zip, "
                    "replace it with a good copy"
                ) from e
            rels = [(tuple(nm.split("/")), nm) for nm in names]
        else:
            rels = [
                (p.relative_to(self.path).parts, str(p))
                for p in self.path.rglob("*")
                if p.is_file()
            ]
        rels = [
            (parts, ref)
            for parts, ref in rels
            if parts[-1].lower().endswith(_IMAGE_EXTENSIONS)
            and not any(p.startswith(".") or p == "__MACOSX" for p in parts)
        ]
        # a zip may wrap everything in one enclosing folder (cifar10.zip: cifar10/train/cat/x.jpg)
        deep = bool(rels) and all(len(p) >= 4 for p, _ in rels)
        if self.is_zip and deep and len({p[0] for p, _ in rels}) == 1:
            rels = [(p[1:], ref) for p, ref in rels]
        members = [_Member(p[0], p[1], ref) for p, ref in rels if len(p) >= 3]
        if not members:
            raise ValueError(
                f"{self.path} holds no images in the layout <split>/<class>/<image> "
                f"(image extensions: {', '.join(_IMAGE_EXTENSIONS)})"
            )
        members.sort(key=lambda m: (m.split, m.cls, m.ref))
        self._members = members
        return members

    @property
    def splits(self) -> list[str]:
        return sorted({m.split for m in self._list()})

    @property
    def classes(self) -> list[str]:
        return sorted({m.cls for m in self._list()})

    def members(self, split: str) -> list[_Member]:
        found = [m for m in self._list() if m.split == split]
        if not found:
            raise ValueError(
                f"split={split!r} not found in {self.path}; valid splits: {', '.join(self.splits)}"
            )
        return found

    def fingerprint(self) -> dict[str, object]:
        """What the cache key depends on: path, size and mtime (of every image for a folder)."""
        if self.is_zip:
            st = self.path.stat()
            return {
                "path": str(self.path.resolve()),
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
            }
        h = hashlib.sha256()
        for m in self._list():
            st = os.stat(m.ref)
            h.update(f"{m.ref}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"path": str(self.path.resolve()), "listing": h.hexdigest()}


def _as_image_folder_path(
    name: str | os.PathLike[str], root: str | os.PathLike[str] | None
) -> Path:
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [path, data_root(root) / path]
    for c in candidates:
        if c.is_dir() or c.is_file():
            return c
    looks_like_path = (
        isinstance(name, os.PathLike)
        or "/" in str(name)
        or os.sep in str(name)
        or str(name).lower().endswith(".zip")
    )
    if looks_like_path:
        raise FileNotFoundError(
            f"image folder / zip {str(name)!r} not found (looked at "
            f"{', '.join(str(c) for c in candidates)}); pass an existing path, or a path relative "
            "to the data root (set MCLVIZ_DATA or pass root=)"
        )
    raise ValueError(
        f"unknown data set name={str(name)!r}; valid names: {', '.join(DATASETS)}, or a path to an "
        "image folder / zip archive laid out as <split>/<class>/<image>"
    )


def _tinyimagenet_resize(root: Path, cache_dir: CacheDir) -> tuple[Tensor, Tensor]:
    source = _find_folder_source(_TINYIMAGENET, root)
    if source is None:
        raise FileNotFoundError(
            f"tinyimagenet-resize: neither {root / (_TINYIMAGENET + '.zip')} nor the folder "
            f"{root / _TINYIMAGENET} exists (layout test/images/test_N.JPEG). Fix: put the Tiny "
            "ImageNet test split there and set MCLVIZ_DATA to that folder or pass root=."
        )
    images, _ = _load_folder_source(source, "test", 32, cache_dir)
    return images, torch.full((images.shape[0],), -1, dtype=torch.int64)


def _decode_image(data: bytes, where: str, resize: int | None) -> np.ndarray:
    """Decode one image file to an RGB uint8 array (H, W, 3).

    Args:
        data: the encoded file.
        where: a name for error messages.
        resize: if given, the output is resize x resize, reduced with PIL's BOX filter.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im if im.mode == "RGB" else im.convert("RGB")
            if resize is not None and im.size != (resize, resize):
                im = im.resize((resize, resize), Image.Resampling.BOX)
            return np.asarray(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(
            f"cannot decode image {where}: {e}; the file is corrupt, replace it"
        ) from e


def decode_image(data: bytes, where: str = "<bytes>", resize: int | None = None) -> np.ndarray:
    """Decode one encoded image file the way the image folders and zips are decoded.

    Any mode PIL reads (grayscale, RGBA, palette, ...) is converted to RGB (alpha dropped);
    with ``resize`` the image is reduced to ``resize x resize`` with PIL's ``BOX`` filter
    (the rule of ``tinyimagenet-resize``; the aspect ratio is not kept). EXIF orientation
    is not applied.

    Args:
        data: the encoded file (PNG, JPEG, ...).
        where: a name for error messages.
        resize: the output side, or None to keep the size.

    Returns:
        uint8 (H, W, 3).

    Raises:
        ValueError: the bytes are not an image PIL can decode (the message names ``where``).
    """
    return _decode_image(data, where, resize)


def _decode_members(
    source: _FolderSource, members: list[_Member], resize: int | None
) -> np.ndarray:
    """Decode every member to (N, 3, H, W) uint8.

    Single process on purpose: a thread pool was slower (PIL holds the GIL for tiny images) and
    a process pool gains little on 2 shared cores.
    """
    from tqdm.auto import tqdm

    zf = zipfile.ZipFile(source.path) if source.is_zip else None
    out: np.ndarray = np.empty(0, dtype=np.uint8)
    try:
        for k, m in enumerate(
            tqdm(members, desc=f"decoding {source.path.name}", unit="img", leave=False)
        ):
            where = f"{source.path}::{m.ref}" if zf is not None else m.ref
            try:
                data = zf.read(m.ref) if zf is not None else Path(m.ref).read_bytes()
            except (zipfile.BadZipFile, OSError) as e:
                raise ValueError(
                    f"cannot read {where}: {e}; the file is corrupt, replace it"
                ) from e
            arr = _decode_image(data, where, resize)  # (H, W, 3)
            if k == 0:
                out = np.empty((len(members), *arr.shape), dtype=np.uint8)  # (N, H, W, 3)
            elif arr.shape != out.shape[1:]:
                raise ValueError(
                    f"image {where} is {arr.shape[1]}x{arr.shape[0]} but the first image of the "
                    f"split is {out.shape[2]}x{out.shape[1]}; all images of a split must have one size"
                )
            out[k] = arr
    finally:
        if zf is not None:
            zf.close()
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (N, 3, H, W)


def _load_folder_source(
    source: _FolderSource,
    split: str,
    resize: int | None,
    cache_dir: CacheDir,
) -> tuple[Tensor, Tensor]:
    """Images and class-folder labels of one split, through the decoded cache."""
    paths = None
    if cache_dir is not False:
        key = {"v": _CACHE_VERSION, "split": split, "resize": resize, **source.fingerprint()}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        where = hashlib.sha256(str(source.path.resolve()).encode()).hexdigest()[:8]
        prefix = f"{source.path.name}-{where}-{split}-"
        folder = _cache_root(cache_dir)
        paths = (
            folder / f"{prefix}{digest[:16]}.images.npy",
            folder / f"{prefix}{digest[:16]}.labels.npy",
        )
        if paths[0].exists() and paths[1].exists():
            try:
                images = np.load(paths[0], allow_pickle=False)
                labels = np.load(paths[1], allow_pickle=False)
                return torch.from_numpy(images), torch.from_numpy(labels)
            except (OSError, ValueError) as e:
                warnings.warn(
                    f"ignoring unreadable cache file in {folder} ({e}); decoding again",
                    stacklevel=3,
                )
    members = source.members(split)
    index = {c: i for i, c in enumerate(source.classes)}
    images = _decode_members(source, members, resize)
    labels = np.array([index[m.cls] for m in members], dtype=np.int64)
    if paths is not None:
        _write_cache(paths, (images, labels), prefix)
    return torch.from_numpy(images), torch.from_numpy(labels)


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to a name
        np.save(fh, arr, allow_pickle=False)


def _write_cache(
    paths: tuple[Path, Path], arrays: tuple[np.ndarray, np.ndarray], prefix: str
) -> None:
    """Write the arrays atomically (temp file + os.replace) and drop stale entries of the source."""
    folder = paths[0].parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, arr in zip(paths, arrays, strict=True):
            atomic_write(path, lambda tmp, arr=arr: _save_npy(tmp, arr))
        for old in folder.iterdir():  # entries of the same source and split with an older key
            if old.name.startswith(prefix) and old.suffix == ".npy" and old not in paths:
                old.unlink(missing_ok=True)
    except OSError as e:
        warnings.warn(
            f"could not write the decoded cache in {folder} ({e}); the next load decodes again. "
            "Set MCLVIZ_CACHE or pass cache_dir= to a writable folder",
            stacklevel=4,
        )
