"""mclviz._io: atomic writes (the old file survives a failed writer, no temp files left,
the usual file mode) and sha256 against hashlib."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path

import pytest

from mclviz._io import atomic_write, atomic_write_text, sha256


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _write_bytes(data: bytes):
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    return write


def test_atomic_write_writes_and_returns_the_path(tmp_path):
    target = tmp_path / "sub" / "dir" / "f.bin"  # missing folders are created
    assert atomic_write(target, _write_bytes(b"abc")) == target
    assert target.read_bytes() == b"abc"
    assert atomic_write(str(target), _write_bytes(b"xyz")) == target  # replaces
    assert target.read_bytes() == b"xyz"
    assert os.listdir(target.parent) == ["f.bin"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path, error):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old contents")

    def half_then_fail(tmp: str) -> None:
        Path(tmp).write_bytes(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_a_failing_writer_creates_no_file(tmp_path):
    def fail(tmp: str) -> None:
        raise ValueError("nothing to write")

    with pytest.raises(ValueError, match="nothing to write"):
        atomic_write(tmp_path / "new.txt", fail)
    assert os.listdir(tmp_path) == []


def test_the_temp_file_is_in_the_target_folder(tmp_path):
    """os.replace is atomic within one file system: the temporary sits next to the target."""
    seen = []

    def write(tmp: str) -> None:
        seen.append(Path(tmp))
        Path(tmp).write_text("x")

    atomic_write(tmp_path / "a.txt", write)
    (tmp,) = seen
    assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.") and tmp.suffix == ".tmp"
    assert not tmp.exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_file_mode_follows_the_umask_not_mkstemp(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "t.txt", "hello")
        assert os.umask(umask) == umask  # atomic_write left the process umask as it was
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # mkstemp alone gives 0600


def test_atomic_write_text_is_utf8(tmp_path, umask_022):
    path = atomic_write_text(tmp_path / "t.txt", "Mahalanobis \u03a3\u207b\u00b9 \u2713\n")
    assert path.read_bytes() == "Mahalanobis \u03a3\u207b\u00b9 \u2713\n".encode()


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 5])
def test_sha256_matches_hashlib(tmp_path, size):
    data = random.Random(size).randbytes(size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256(path) == hashlib.sha256(data).hexdigest()
    assert sha256(str(path)) == sha256(path)


def test_sha256_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        sha256(tmp_path / "missing")
