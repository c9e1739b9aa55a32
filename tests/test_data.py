"""Tests for mclviz.data.

Small synthetic folders, zips and torchvision-format files in ``tmp_path`` stand in for the data
sets that are not on this machine; the real CIFAR-10 / Tiny ImageNet zips are used through the
``data_root`` fixture. No test touches the network (torchvision's downloads are patched to fail)
or the user's cache (``$MCLVIZ_CACHE`` points into ``tmp_path``).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from PIL import Image

import mclviz.data as data
from mclviz.data import DATASETS, class_names, data_root, load_images, one_class, open_set_split

# ----------------------------------------------------------------------------- fixtures / helpers


@pytest.fixture(autouse=True)
def _offline_and_private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_download(self: object) -> None:
        raise OSError("no network in tests")

    monkeypatch.setattr(tvd.CIFAR10, "download", no_download)
    monkeypatch.setattr(tvd.SVHN, "download", no_download)
    monkeypatch.setenv("MCLVIZ_CACHE", str(tmp_path / "env-cache"))


@pytest.fixture()
def trust_torchvision_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision checks the md5 of the real files; synthetic stand-ins only need to exist."""

    def exists(fpath: str, md5: str | None = None) -> bool:
        return os.path.isfile(fpath)

    monkeypatch.setattr(tvd.cifar, "check_integrity", exists)
    monkeypatch.setattr(tvd.svhn, "check_integrity", exists)


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-cache")


def _image(value: int, size: int = 4) -> np.ndarray:
    """(size, size, 3) uint8 with a per-image value and a per-pixel pattern."""
    pattern = np.arange(size * size * 3, dtype=np.int64).reshape(size, size, 3)
    return ((pattern + value * 7) % 256).astype(np.uint8)


def _value(split: str, cls: str, i: int) -> int:
    return zlib.crc32(f"{split}/{cls}/{i}".encode()) % 97


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# layout: split -> class -> number of images; "b_dog" sorts after "a_cat"
LAYOUT = {"train": {"b_dog": 3, "a_cat": 2}, "test": {"a_cat": 1, "b_dog": 2}}


def _expected(split: str, size: int = 4) -> tuple[np.ndarray, list[int]]:
    """Images (N, 3, H, W) and labels in load order: sorted class, then sorted file name."""
    images, labels = [], []
    for label, cls in enumerate(sorted({c for s in LAYOUT.values() for c in s})):
        for i in range(LAYOUT[split].get(cls, 0)):
            images.append(_image(_value(split, cls, i), size).transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), labels


def _make_folder(folder: Path, size: int = 4) -> Path:
    for split, classes in LAYOUT.items():
        for cls, count in classes.items():
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                (folder / split / cls / f"{i:04d}.png").write_bytes(
                    _png(_image(_value(split, cls, i), size))
                )
    return folder


def _make_zip(path: Path, prefix: str = "", size: int = 4) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for split, classes in LAYOUT.items():
            for cls, count in classes.items():
                for i in range(count):
                    name = f"{prefix}{split}/{cls}/{i:04d}.png"
                    z.writestr(name, _png(_image(_value(split, cls, i), size)))
    return path


def _assert_matches(images: torch.Tensor, labels: torch.Tensor, split: str) -> None:
    want_images, want_labels = _expected(split)
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    np.testing.assert_array_equal(images.numpy(), want_images)
    assert labels.tolist() == want_labels


class _CountingDecoder:
    def __init__(self) -> None:
        self.calls = 0
        self._real = data._decode_image

    def __call__(self, *args: object, **kwargs: object) -> np.ndarray:
        self.calls += 1
        return self._real(*args, **kwargs)


# ----------------------------------------------------------------------------- roots, names


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCLVIZ_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("MCLVIZ_DATA")
    assert data_root() == Path("data")


def test_datasets_names() -> None:
    assert DATASETS == (
        "cifar10",
        "cifar100",
        "svhn",
        "digits",
        "tinyimagenet-resize",
        "gaussian",
        "uniform",
    )


# ----------------------------------------------------------------------------- synthetic OOD sets


@pytest.mark.parametrize("name", ["gaussian", "uniform"])
def test_synthetic_shape_labels_determinism(name: str) -> None:
    x, y = load_images(name, n=64, seed=3)
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and (y == -1).all()
    x2, _ = load_images(name, "test", n=64, seed=3)  # split is ignored
    assert torch.equal(x, x2)
    assert not torch.equal(x, load_images(name, n=64, seed=4)[0])
    assert torch.equal(load_images(name, n=16, seed=3)[0], x[:16])  # first n of the stream


def test_synthetic_default_size_and_distribution() -> None:
    g, yg = load_images("gaussian")
    u, _ = load_images("uniform")
    assert g.shape == u.shape == (10_000, 3, 32, 32) and yg.shape == (10_000,)
    # clip(N(0.5, 1), 0, 1): P(x <= 0) = P(x >= 1) = Phi(-0.5) = 0.3085
    assert abs((g == 0).float().mean().item() - 0.3085) < 0.005
    assert abs((g == 255).float().mean().item() - 0.3085) < 0.005
    assert abs(u.float().mean().item() - 127.5) < 0.5
    assert abs(u.float().std().item() - 255 / 12**0.5) < 0.5


# ----------------------------------------------------------------------------- digits


def test_digits() -> None:
    xtr, ytr = load_images("digits", "train")
    xte, yte = load_images("digits", "test")
    assert xtr.shape == (1437, 3, 32, 32) and xte.shape == (360, 3, 32, 32)
    assert xtr.dtype == torch.uint8 and ytr.dtype == torch.int64
    assert set(ytr.tolist()) == set(range(10)) and set(yte.tolist()) == set(range(10))
    assert xtr.max() == 255 and xtr.min() == 0
    assert torch.equal(xtr[:, 0], xtr[:, 1]) and torch.equal(xtr[:, 0], xtr[:, 2])
    from sklearn.datasets import load_digits

    bunch = load_digits()
    assert ytr.tolist() == bunch.target[:1437].tolist()
    # bilinear upsampling: the 4x4 block means follow the 8x8 original (scaled to 0..255)
    blocks = xte[:, 0].float().reshape(360, 8, 4, 8, 4).mean(dim=(2, 4))
    orig = torch.as_tensor(bunch.images[1437:], dtype=torch.float32) * 255 / 16
    assert torch.corrcoef(torch.stack([blocks.flatten(), orig.flatten()]))[0, 1] > 0.95
    assert abs(blocks.mean() - orig.mean()) < 2
    assert class_names("digits") == [str(d) for d in range(10)]


# ----------------------------------------------------------------------------- image folders / zips


def test_image_folder_path(tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "myset")
    for split in ("train", "test"):
        x, y = load_images(folder, split, cache_dir=tmp_path / "cache")
        _assert_matches(x, y, split)
    assert class_names(folder) == ["a_cat", "b_dog"]


@pytest.mark.parametrize("prefix", ["", "enclosing/"])
def test_zip_path(tmp_path: Path, prefix: str) -> None:
    archive = _make_zip(tmp_path / "myset.zip", prefix)
    for split in ("train", "test"):
        x, y = load_images(str(archive), split, cache_dir=tmp_path / "cache")
        _assert_matches(x, y, split)
    assert class_names(archive) == ["a_cat", "b_dog"]


def test_path_relative_to_data_root(tmp_path: Path) -> None:
    _make_zip(tmp_path / "lsun-like.zip")
    x, y = load_images("lsun-like.zip", "test", root=tmp_path, cache_dir=False)
    _assert_matches(x, y, "test")


def test_subset_n_is_deterministic_and_in_source_order(tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "myset")
    full, full_y = load_images(folder, "train", cache_dir=False)
    x, y = load_images(folder, "train", n=3, seed=1, cache_dir=False)
    x2, _ = load_images(folder, "train", n=3, seed=1, cache_dir=False)
    assert x.shape[0] == 3 and torch.equal(x, x2)
    rows = [next(i for i in range(full.shape[0]) if torch.equal(full[i], img)) for img in x]
    assert rows == sorted(rows) and y.tolist() == full_y[rows].tolist()
    with pytest.raises(ValueError, match=r"n=99 is larger than the data set \(5 images\)"):
        load_images(folder, "train", n=99, cache_dir=False)
    with pytest.raises(ValueError, match="n=0 must be a positive int"):
        load_images(folder, "train", n=0, cache_dir=False)


# ----------------------------------------------------------------------------- cifar10 / 100, svhn


def test_cifar10_folder_and_zip_layouts(tmp_path: Path) -> None:
    _make_folder(tmp_path / "folder-root" / "cifar10")
    x, y = load_images("cifar10", "test", root=tmp_path / "folder-root", cache_dir=False)
    _assert_matches(x, y, "test")
    (tmp_path / "zip-root").mkdir()
    _make_zip(tmp_path / "zip-root" / "cifar10.zip")
    x, y = load_images("cifar10", "train", root=tmp_path / "zip-root", cache_dir=False)
    _assert_matches(x, y, "train")
    assert class_names("cifar10", tmp_path / "zip-root") == ["a_cat", "b_dog"]


def _write_cifar(
    root: Path, folder: str, files: dict[str, int], label_key: str, meta: tuple[str, str, list[str]]
) -> dict[str, tuple[np.ndarray, list[int]]]:
    (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for fname, count in files.items():
        arr = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)  # rows: R plane, G, B
        labels = rng.integers(0, len(meta[2]), size=count).tolist()
        with open(root / folder / fname, "wb") as f:
            pickle.dump({"data": arr, label_key: labels}, f)
        written[fname] = (arr.reshape(count, 3, 32, 32), labels)
    with open(root / folder / meta[0], "wb") as f:
        pickle.dump({meta[1]: meta[2]}, f)
    return written


def test_cifar10_torchvision_files(tmp_path: Path, trust_torchvision_files: None) -> None:
    names = [f"class{i}" for i in range(10)]
    files = {f"data_batch_{i}": 2 for i in range(1, 6)} | {"test_batch": 3}
    written = _write_cifar(
        tmp_path, "cifar-10-batches-py", files, "labels", ("batches.meta", "label_names", names)
    )
    x, y = load_images("cifar10", "test", root=tmp_path)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), written["test_batch"][0])
    assert y.tolist() == written["test_batch"][1]
    xtr, _ = load_images("cifar10", "train", root=tmp_path)
    assert xtr.shape == (10, 3, 32, 32)
    assert class_names("cifar10", tmp_path) == names


def test_cifar100_torchvision_files(tmp_path: Path, trust_torchvision_files: None) -> None:
    names = [f"fine{i:02d}" for i in range(100)]
    written = _write_cifar(
        tmp_path,
        "cifar-100-python",
        {"train": 5, "test": 4},
        "fine_labels",
        ("meta", "fine_label_names", names),
    )
    for split in ("train", "test"):
        x, y = load_images("cifar100", split, root=tmp_path)
        np.testing.assert_array_equal(x.numpy(), written[split][0])
        assert y.tolist() == written[split][1] and y.dtype == torch.int64
    assert class_names("cifar100", tmp_path) == names


def test_svhn_torchvision_files(tmp_path: Path, trust_torchvision_files: None) -> None:
    import scipy.io as scipy_io  # scikit-learn depends on scipy

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(32, 32, 3, 6), dtype=np.uint8)  # (H, W, C, N)
    y = np.array([[10], [1], [2], [10], [9], [5]], dtype=np.uint8)  # torchvision maps 10 -> 0
    scipy_io.savemat(tmp_path / "test_32x32.mat", {"X": X, "y": y})
    x, labels = load_images("svhn", "test", root=tmp_path)
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.uint8
    np.testing.assert_array_equal(x.numpy(), X.transpose(3, 2, 0, 1))
    assert labels.tolist() == [0, 1, 2, 0, 9, 5]
    assert class_names("svhn") == [str(d) for d in range(10)]


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("cifar10", "cifar-10-batches-py/"),
        ("cifar100", "cifar-100-python/"),
        ("svhn", "train_32x32.mat"),
    ],
)
def test_missing_torchvision_set_says_where_to_put_it(
    tmp_path: Path, name: str, files: str
) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_images(name, "train", root=tmp_path)
    msg = str(info.value)
    for part in (
        str(tmp_path),
        files,
        f"{name}.zip",
        "<split>/<class>/<image>",
        "MCLVIZ_DATA",
        "root=",
        "download failed",
    ):
        assert part in msg


def test_corrupt_torchvision_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(FileNotFoundError, match="rejected by torchvision"):
        load_images("cifar10", "train", root=tmp_path)


# ----------------------------------------------------------------------------- real data


def test_real_cifar10_test_split(data_root: Path, real_cache: Path) -> None:
    x, y = load_images("cifar10", "test", root=data_root, cache_dir=real_cache)
    assert x.shape == (10_000, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [1000] * 10
    assert class_names("cifar10", data_root)[:3] == ["airplane", "automobile", "bird"]
    x2, y2 = load_images("cifar10", "test", root=data_root, cache_dir=real_cache, n=100, seed=0)
    assert x2.shape == (100, 3, 32, 32) and y2.shape == (100,)


def test_real_tinyimagenet_resize(data_root: Path, real_cache: Path) -> None:
    x, y = load_images("tinyimagenet-resize", "test", root=data_root, cache_dir=real_cache)
    assert x.shape == (10_000, 3, 32, 32) and x.dtype == torch.uint8
    assert (y == -1).all() and class_names("tinyimagenet-resize") == []
    x_train, _ = load_images("tinyimagenet-resize", "train", root=data_root, cache_dir=real_cache)
    assert torch.equal(x, x_train)  # every split maps to the test images
    # BOX filter: each output pixel is the mean of a 2x2 block of the 64x64 original
    with zipfile.ZipFile(data_root / "tinyimagenet-test.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith(".JPEG"))
        with Image.open(io.BytesIO(z.read(names[0]))) as im:
            big = torch.as_tensor(np.array(im.convert("RGB")), dtype=torch.float32)
    box = big.reshape(32, 2, 32, 2, 3).mean(dim=(1, 3)).permute(2, 0, 1)
    assert (box - x[0].float()).abs().max() <= 1.0


# ----------------------------------------------------------------------------- cache


def test_cache_hit_does_not_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _make_zip(tmp_path / "myset.zip")
    cache = tmp_path / "cache"
    x1, y1 = load_images(archive, "train", cache_dir=cache)
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and all(f.startswith("myset.zip-") and f.endswith(".npy") for f in files)
    assert not any(f.startswith(".tmp") for f in files)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(data, "_decode_image", fail)
    x2, y2 = load_images(archive, "train", cache_dir=cache)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    with pytest.raises(AssertionError, match="decoded although cached"):
        load_images(archive, "test", cache_dir=cache)  # another split is another entry


def test_cache_invalidated_when_mtime_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _make_zip(tmp_path / "myset.zip")
    cache = tmp_path / "cache"
    counter = _CountingDecoder()
    monkeypatch.setattr(data, "_decode_image", counter)
    load_images(archive, "train", cache_dir=cache)
    assert counter.calls == 5
    load_images(archive, "train", cache_dir=cache)
    assert counter.calls == 5
    st = archive.stat()
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_images(archive, "train", cache_dir=cache)
    assert counter.calls == 10
    assert len(list(cache.iterdir())) == 2  # the stale entry was replaced


def test_folder_cache_invalidated_when_an_image_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _make_folder(tmp_path / "myset")
    counter = _CountingDecoder()
    monkeypatch.setattr(data, "_decode_image", counter)
    load_images(folder, "test", cache_dir=tmp_path / "cache")
    load_images(folder, "test", cache_dir=tmp_path / "cache")
    assert counter.calls == 3
    image = folder / "test" / "a_cat" / "0000.png"
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_images(folder, "test", cache_dir=tmp_path / "cache")
    assert counter.calls == 6


def test_cache_location_env_and_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _make_zip(tmp_path / "myset.zip")
    monkeypatch.setenv("MCLVIZ_CACHE", str(tmp_path / "from-env"))
    load_images(archive, "test")
    assert len(list((tmp_path / "from-env").iterdir())) == 2
    load_images(archive, "test", cache_dir=False)
    assert len(list((tmp_path / "from-env").iterdir())) == 2


def test_unwritable_cache_warns_and_still_loads(tmp_path: Path) -> None:
    archive = _make_zip(tmp_path / "myset.zip")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="could not write the decoded cache"):
        x, y = load_images(archive, "test", cache_dir=blocker)
    _assert_matches(x, y, "test")


# ----------------------------------------------------------------------------- errors


def test_unknown_name() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown data set name='cifar11'.*cifar10, cifar100, svhn.*image folder / zip",
    ):
        load_images("cifar11")


def test_missing_path() -> None:
    with pytest.raises(
        FileNotFoundError, match=r"image folder / zip '/no/such/set.zip' not found.*MCLVIZ_DATA"
    ):
        load_images("/no/such/set.zip")


def test_missing_tinyimagenet(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"tinyimagenet-test.zip.*test/images/test_N.JPEG.*MCLVIZ_DATA"
    ):
        load_images("tinyimagenet-resize", root=tmp_path)


def test_bad_split_names_valid_splits(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"split='val' is not a split of cifar10; valid splits: train, test"
    ):
        load_images("cifar10", "val", root=tmp_path)
    with pytest.raises(ValueError, match=r"valid splits: train, test, extra"):
        load_images("svhn", "valid", root=tmp_path)
    with pytest.raises(
        ValueError, match="split='val' not found in .*myset.zip; valid splits: test, train"
    ):
        load_images(_make_zip(tmp_path / "myset.zip"), "val", cache_dir=False)


def test_corrupt_zip_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match=r"cannot read zip archive .*broken.zip"):
        load_images(bad, "train", cache_dir=False)


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    archive = _make_zip(tmp_path / "myset.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("train/a_cat/9999.png", b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode image .*myset.zip::train/a_cat/9999.png"):
        load_images(archive, "train", cache_dir=False)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty" / "train" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "cls" / "notes.txt").write_text("no images")
    with pytest.raises(
        ValueError, match=r"empty holds no images in the layout <split>/<class>/<image>"
    ):
        load_images(tmp_path / "empty", "train", cache_dir=False)


def test_mixed_image_sizes(tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "myset")
    (folder / "test" / "b_dog" / "0005.png").write_bytes(_png(_image(1, size=5)))
    with pytest.raises(
        ValueError, match=r"0005.png is 5x5 but the first image of the split is 4x4"
    ):
        load_images(folder, "test", cache_dir=False)


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("known", [(0, 1, 2, 3, 4, 5), (7, 2), (3,)])
def test_open_set_split_matches_loop(known: tuple[int, ...]) -> None:
    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(len(known)))
    mask, relabel = open_set_split(labels, known=known)
    assert mask.dtype == torch.bool and relabel.dtype == torch.int64
    for i, lab in enumerate(labels.tolist()):
        assert mask[i].item() == (lab in known)
        assert relabel[i].item() == (known.index(lab) if lab in known else -1)


def test_open_set_split_default_and_errors() -> None:
    mask, relabel = open_set_split(torch.arange(10))
    assert mask.tolist() == [True] * 6 + [False] * 4
    assert relabel.tolist() == [0, 1, 2, 3, 4, 5, -1, -1, -1, -1]
    with pytest.raises(ValueError, match=r"known=\(\) is empty"):
        open_set_split(torch.arange(3), known=())
    with pytest.raises(ValueError, match=r"known=\(1, 1\) must be distinct"):
        open_set_split(torch.arange(3), known=(1, 1))
    with pytest.raises(ValueError, match="known=.* must be an int or a sequence of ints"):
        open_set_split(torch.arange(3), known=(1.5,))
    with pytest.raises(ValueError, match=r"labels must be a 1-D integer tensor"):
        open_set_split(torch.zeros(3, 2, dtype=torch.int64))


def test_one_class() -> None:
    labels = torch.tensor([0, 3, 3, 1, -1])
    assert one_class(labels, normal=3).tolist() == [False, True, True, False, False]
    assert one_class(labels, normal=(0, 1)).tolist() == [True, False, False, True, False]
    assert one_class(labels, normal=np.int64(0)).tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError, match="normal='cat' must be an int"):
        one_class(labels, normal="cat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels must be a 1-D integer tensor"):
        one_class(torch.tensor([0.5]), normal=0)
