"""mclviz.evaluation.outputs: embeddings on demand, each SEI view embedded once and kept."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from mclviz.embed import embed
from mclviz.evaluation import EvalData, Outputs, ood_split
from mclviz.transforms import sei_view


class Counting(nn.Module):
    """model(x) -> z (n, 5), features(x) -> (n, 6); records every forward pass's input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3 * 4 * 4, 5)
        self.calls: list[tuple[str, torch.Tensor]] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(("features", x.clone()))
        return x.flatten(1)[:, :6] * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(("z", x.clone()))
        return self.lin(x.flatten(1))


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g)


@pytest.fixture
def data() -> EvalData:
    y = torch.arange(12) % 3
    return EvalData((_images(12, 0), y), (_images(9, 1), y[:9]), {"noise": _images(7, 2)})


@pytest.fixture
def model() -> Counting:
    torch.manual_seed(0)
    return Counting()


def _outputs(model, data, **kwargs) -> Outputs:
    kwargs.setdefault("precision", "fp32")
    return Outputs(model, data, batch_size=64, progress=False, **kwargs)


def test_each_view_is_embedded_once(model, data):
    out = _outputs(model, data)
    x = data.test[0]
    first = out.get("z", "test", views=[0, 1, 2, 3])
    assert len(model.calls) == 4  # one batch per view
    all8 = out.get("z", "test", views=8)
    assert len(model.calls) == 8  # only views 4..7 were embedded
    for (name, seen), m in zip(model.calls[4:], range(4, 8), strict=True):
        assert name == "z"
        torch.testing.assert_close(seen, sei_view(x, m).float() / 255)
    assert all8.shape == (9, 8, 5) and all8.dtype == torch.float32
    assert all8.device.type == "cpu"
    torch.testing.assert_close(all8[:, :4], first)
    torch.testing.assert_close(all8, embed(model, x, views=8, progress=False))
    out.get("z", "test", views=4)
    out.get("z", "test", views=[6, 0])
    assert len(model.calls) == 8 + 8  # the direct embed above; nothing new from the cache
    out.get("z", "train", views=1)  # another split is embedded on its own
    assert len(model.calls) == 17


def test_fewer_or_other_views_are_slices(model, data):
    out = _outputs(model, data)
    all8 = out.get("z", ood_split("noise"), 8)
    torch.testing.assert_close(out.get("z", "ood:noise", 1), all8[:, :1])
    torch.testing.assert_close(out.get("z", "ood:noise", 4), all8[:, :4])
    torch.testing.assert_close(out.get("z", "ood:noise", [5, 1]), all8[:, [5, 1]])
    torch.testing.assert_close(out.get("z", "ood:noise", [0, 4]), all8[:, [0, 4]])


def test_scored_resolves_to_the_methods_output(model, data):
    out = _outputs(model, data, scored_on="features")
    assert out.resolve("scored") == "features" and out.resolve("z") == "z"
    feats = out.get("features", "test", 4)
    n = len(model.calls)
    torch.testing.assert_close(out.get("scored", "test", 4), feats)  # the same kept tensor
    assert len(model.calls) == n
    assert {name for name, _ in model.calls} == {"features"}
    torch.testing.assert_close(feats[:, 0], data.test[0].float().flatten(1)[:, :6] * 2 / 255)
    z_out = _outputs(model, data)  # scored_on="z" by default
    torch.testing.assert_close(z_out.get("scored", "test", 1), z_out.get("z", "test", 1))


def test_splits_and_unknown_split(model, data):
    out = _outputs(model, data)
    assert out.splits == ["train", "test", "ood:noise"]
    assert torch.equal(out.images("ood:noise"), data.ood["noise"])
    assert torch.equal(out.images("train"), data.train[0])
    for bad in ("valid", "ood:missing", "noise"):
        with pytest.raises(ValueError, match=rf"split='{bad}' is unknown; choose 'train', "):
            out.get("z", bad, 1)
    with pytest.raises(ValueError, match=r"\['ood:noise'\]"):
        out.images("ood")


def test_precomputed_outputs(data):
    g = torch.Generator().manual_seed(3)
    z_test = torch.randn(9, 2, 5, generator=g)
    z_train = torch.randn(12, 4, 5, generator=g)
    out = Outputs.from_tensors({("scored", "train"): z_train, ("z", "test"): z_test}, data)
    assert out.model is None and out.precision.name == "fp32"
    torch.testing.assert_close(out.get("z", "train", 4), z_train)  # "scored" -> "z"
    torch.testing.assert_close(out.get("scored", "test", [1, 0]), z_test[:, [1, 0]])
    with pytest.raises(
        ValueError,
        match=r"'z' of 'test' is given in views \[0, 1\], and views "
        r"\[2, 3\] are asked for",
    ):
        out.get("z", "test", 4)
    with pytest.raises(ValueError, match=r"views \[4\] are asked for"):
        out.get("z", "test", [0, 4])
    with pytest.raises(ValueError, match="no 'z' outputs of 'ood:noise' are given"):
        out.get("z", "ood:noise", 1)
    with pytest.raises(ValueError, match="no 'features' outputs of 'test' are given"):
        out.get("features", "test", 1)


def test_perturbed_needs_the_model(data):
    from mclviz.scoring import ODIN

    out = Outputs.from_tensors({("logits", "test"): torch.randn(9, 1, 3)}, data)
    with pytest.raises(
        ValueError,
        match=r"ODIN pre-processes its inputs \(epsilon=0.0014\), "
        "which needs the model",
    ):
        out.perturbed("logits", "test", ODIN())


def test_disk_cache_serves_a_second_outputs(model, data, tmp_path):
    first = _outputs(model, data, cache_dir=tmp_path, cache_key="m1")
    a = first.get("z", "test", 4)
    n, files = len(model.calls), sorted(os.listdir(tmp_path))
    assert n == 4 and len(files) == 1
    second = _outputs(model, data, cache_dir=tmp_path, cache_key="m1")
    assert torch.equal(second.get("z", "test", 4), a)
    assert len(model.calls) == n and sorted(os.listdir(tmp_path)) == files
    _outputs(model, data, cache_dir=tmp_path).get("z", "test", 1)  # no key: no file
    assert sorted(os.listdir(tmp_path)) == files


def test_precision_is_resolved_once_for_the_models_device(model, data):
    out = _outputs(model, data, precision="bf16")
    assert (out.precision.name, out.precision.device_type) == ("bf16", "cpu")
    with pytest.raises(ValueError, match="precision='fp16' is for CUDA"):
        _outputs(model, data, precision="fp16")
