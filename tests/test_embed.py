"""mclviz.embed with a tiny stand-in model (flatten + linear), no real ResNet; its
precision handling (``precision=``, which replaced the old ``amp=`` flag)."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
from torch import nn

from mclviz.device import Precision
from mclviz.embed import cache_file, embed, embed_features, view_indices


class Tiny(nn.Module):
    """model(x) -> z (n, 5); features(x) -> (n, 7); logits(x) -> (n, 3). Records calls."""

    def __init__(self, h: int = 4, w: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * h * w, 7))
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(7, 5)
        self.cls = nn.Linear(7, 3)
        self.calls: list[tuple[int, bool, bool]] = []  # (batch, training, grad enabled)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.shape[0], self.training, torch.is_grad_enabled()))
        if not (x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1):
            raise AssertionError("model expects float images in [0, 1]")
        return self.drop(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.features(x))


def _sei(x: torch.Tensor, m: int) -> torch.Tensor:
    """The SEI view definition of docs/CONVENTIONS.md."""
    if m >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k=m % 4, dims=(-2, -1))


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(
        0, 256, (23, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


@pytest.fixture
def model() -> Tiny:
    torch.manual_seed(0)
    return Tiny()


@pytest.mark.parametrize("views", [1, 4, 8, [0, 5, 7]])
@pytest.mark.parametrize("output", ["z", "features", "logits"])
def test_embed_matches_per_view_forward(model, images, views, output):
    out = embed(model, images, views=views, batch_size=5, progress=False, output=output)
    vs = view_indices(views)
    fn = {"z": model, "features": model.features, "logits": model.logits}[output]
    model.eval()
    with torch.no_grad():
        want = torch.stack([fn(_sei(images, m).float() / 255) for m in vs], dim=1)
    assert out.shape == (23, len(vs), want.shape[-1])
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)


def test_sei_views_are_rotations_and_flips():
    img = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).expand(1, 3, 4, 4).contiguous()

    class Identity(nn.Module):
        def forward(self, x):
            return x[:, 0].flatten(1)

    out = embed(Identity(), img, views=8, progress=False)  # (1, 8, 16)
    base = img[0, 0].float() / 255
    for m in range(8):
        want = torch.rot90(base.flip(-1) if m >= 4 else base, k=m % 4, dims=(0, 1))
        torch.testing.assert_close(out[0, m], want.flatten())
    # view 1 is a 90 degree counter-clockwise turn: the top row becomes the left column
    v1 = out[0, 1].view(4, 4)
    torch.testing.assert_close(v1[:, 0], base[0].flip(0))


def test_batches_no_grad_eval_and_mode_restored(model, images):
    model.train()
    model.head.eval()  # a mixed state must come back exactly
    embed(model, images, views=4, batch_size=6, progress=False)
    assert max(b for b, _, _ in model.calls) <= 6
    assert len(model.calls) == 4 * 4  # ceil(23 / 6) batches x 4 views
    assert not any(training or grad for _, training, grad in model.calls)
    assert model.training and model.body.training and not model.head.training


def test_deterministic_despite_dropout_and_float_images(model, images):
    a = embed(model, images, progress=False)
    b = embed(model, images.float() / 255, progress=False)
    torch.testing.assert_close(a, b)


def test_embed_features_wrapper(model, images):
    torch.testing.assert_close(
        embed_features(model, images, views=4, progress=False),
        embed(model, images, views=4, output="features", progress=False),
    )


def test_cache_written_atomically_and_reused(model, images, tmp_path):
    first = embed(
        model, images, views=4, cache_dir=tmp_path, cache_key="ckpt-abc/cifar", progress=False
    )
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".safetensors") and "/" not in files[0]
    assert not [f for f in files if f.endswith(".tmp")]
    n_calls = len(model.calls)
    again = embed(
        model, images, views=4, cache_dir=tmp_path, cache_key="ckpt-abc/cifar", progress=False
    )
    assert len(model.calls) == n_calls  # served from the cache
    assert torch.equal(again, first)
    # another view set, output or image set is another file
    embed(
        model, images, views=[0, 4], cache_dir=tmp_path, cache_key="ckpt-abc/cifar", progress=False
    )
    embed(
        model,
        images,
        views=4,
        output="features",
        cache_dir=tmp_path,
        cache_key="ckpt-abc/cifar",
        progress=False,
    )
    embed(
        model,
        images.flip(0),
        views=4,
        cache_dir=tmp_path,
        cache_key="ckpt-abc/cifar",
        progress=False,
    )
    assert len(os.listdir(tmp_path)) == 4


def test_no_file_written_without_cache_dir(model, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    embed(model, images, views=2, progress=False)
    assert os.listdir(tmp_path) == []


def test_failed_save_leaves_no_temp_file(model, images, tmp_path, monkeypatch):
    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        embed(model, images, cache_dir=tmp_path, cache_key="k", progress=False)
    assert os.listdir(tmp_path) == []


def test_errors(model, images, tmp_path):
    with pytest.raises(ValueError, match="cache_key"):
        embed(model, images, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="views=9"):
        embed(model, images, views=9, progress=False)
    with pytest.raises(ValueError, match=r"views=\[0, 8\]"):
        embed(model, images, views=[0, 8], progress=False)
    with pytest.raises(ValueError, match="output='proj'"):
        embed(model, images, output="proj", progress=False)
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        embed(model, images[:, 0], progress=False)
    with pytest.raises(TypeError, match="dtype torch.int64"):
        embed(model, images.long(), progress=False)
    with pytest.raises(ValueError, match="images is empty"):
        embed(model, images[:0], progress=False)
    with pytest.raises(ValueError, match="batch_size=0"):
        embed(model, images, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="the model is on cpu"):
        embed(model, images, device="meta", progress=False)
    with pytest.raises(ValueError, match="model.features"):
        embed(nn.Flatten(), images, output="features", progress=False)

    class Pair(nn.Module):  # returns (features, projection) like the authors' model
        def forward(self, x):
            return x.flatten(1), x.flatten(1)

    with pytest.raises(ValueError, match="expected one \\(n, d\\) tensor"):
        embed(Pair(), images, progress=False)


def test_views_agree_with_mclviz_transforms():
    from mclviz import transforms

    x = torch.randint(0, 256, (2, 3, 5, 6), dtype=torch.uint8)

    class Identity(nn.Module):
        def forward(self, x):
            return x.flatten(1)

    out = embed(Identity(), x, views=8, progress=False)
    for m in range(8):
        torch.testing.assert_close(out[:, m], transforms.sei_view(x, m).float().flatten(1) / 255)


class AutocastProbe(nn.Module):
    """A conv net that records, per forward pass, what autocast and the input look like."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[dict] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        self.seen.append(
            {
                "autocast": torch.is_autocast_enabled("cpu"),
                "dtype": torch.get_autocast_dtype("cpu")
                if torch.is_autocast_enabled("cpu")
                else None,
                "input": x.dtype,
                "conv_out": y.dtype,
                "channels_last": x.is_contiguous(memory_format=torch.channels_last)
                and not x.is_contiguous(),
            }
        )
        return y.flatten(1)


@pytest.mark.parametrize(
    "precision, dtype, channels_last",
    [
        ("fp32", None, False),
        ("bf16", torch.bfloat16, True),
        (Precision("fp32", "cpu", False), None, False),
        (Precision("bf16", "cpu", True), torch.bfloat16, True),
        (Precision("bf16", "cpu", False), torch.bfloat16, False),
        (Precision("fp32", "cpu", True), None, True),
    ],
)
def test_autocast_dtype_and_memory_format_come_from_the_precision(
    images, precision, dtype, channels_last
):
    torch.manual_seed(0)
    probe = AutocastProbe()
    out = embed(probe, images, views=2, batch_size=10, precision=precision, progress=False)
    assert out.dtype == torch.float32 and len(probe.seen) == 3 * 2
    for seen in probe.seen:
        assert seen["autocast"] is (dtype is not None)
        assert seen["dtype"] is dtype
        assert seen["input"] is torch.float32  # autocast casts inside the ops
        assert seen["conv_out"] is (dtype or torch.float32)
        assert seen["channels_last"] is channels_last
    exact = embed(probe, images, views=2, precision="fp32", progress=False)
    if dtype is None:
        torch.testing.assert_close(out, exact)
    else:  # bf16 rounds: close to fp32, not equal
        assert not torch.equal(out, exact)
        torch.testing.assert_close(out, exact, rtol=0.05, atol=0.05)


def test_embed_never_changes_the_callers_model(images):
    """The old evaluate turned the model channels-last as a side effect; embed converts
    only its input batches."""
    torch.manual_seed(0)
    probe = AutocastProbe()
    weight = probe.conv.weight
    before = (weight.stride(), weight.dtype, weight.data_ptr(), weight.clone())
    for precision in ("bf16", Precision("bf16", "cpu", True), "fp32"):
        embed(probe, images, views=4, precision=precision, progress=False)
        assert probe.conv.weight is weight and weight.is_contiguous()
        assert (weight.stride(), weight.dtype, weight.data_ptr()) == before[:3]
        assert torch.equal(weight, before[3])


def test_precision_errors_name_the_fix(model, images):
    with pytest.raises(ValueError, match="precision='fp16' is for CUDA.*use 'bf16' or 'fp32'"):
        embed(model, images, precision="fp16", progress=False)
    with pytest.raises(ValueError, match="precision='half': choose 'auto', 'fp32'"):
        embed(model, images, precision="half", progress=False)
    with pytest.raises(TypeError, match="amp"):
        embed(model, images, amp=True, progress=False)  # the old flag is gone


def test_precision_keys_the_cache(model, images, tmp_path):
    exact = embed(model, images, cache_dir=tmp_path, cache_key="k", progress=False)
    fast = embed(model, images, precision="bf16", cache_dir=tmp_path, cache_key="k", progress=False)
    assert len(os.listdir(tmp_path)) == 2 and not torch.equal(exact, fast)
    again = embed(
        model,
        images,
        precision=Precision("bf16", "cpu", True),
        cache_dir=tmp_path,
        cache_key="k",
        progress=False,
    )
    assert len(os.listdir(tmp_path)) == 2 and torch.equal(again, fast)


def test_cache_file_names_a_file_by_the_digest_of_its_key(tmp_path):
    # the names the embedding cache and the pre-processed outputs are kept under: a
    # readable stem (made safe for file names, 80 characters at most) and tag, then the
    # digest of everything the tensor depends on; a changed format would orphan a cache
    digest = hashlib.sha256(b"model|test|z").hexdigest()[:16]
    path = cache_file(tmp_path, "ck 1/cifar10:test", "z-v0", "model|test|z")
    assert path == tmp_path / f"ck_1_cifar10_test-z-v0-{digest}.safetensors"
    assert cache_file(tmp_path, "ck 1/cifar10:test", "z-v0", "model|test|z ") != path
    long = cache_file(tmp_path, "k" * 200, "t", "x")
    assert long.name.startswith("k" * 80 + "-t-") and len(long.name) == 80 + 3 + 16 + 12
