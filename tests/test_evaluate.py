"""mclviz.evaluate's precision choice: bf16 embeddings against the exact fp32 ones."""

from __future__ import annotations

import pytest
import torch

from mclviz.checkpoint import Checkpoint
from mclviz.config import Config
from mclviz.data import load_images
from mclviz.embed import embed
from mclviz.evaluate import EvalData, embedding_amp, evaluate
from mclviz.train import train


@pytest.fixture(scope="module")
def setup(data_root):
    x, y = load_images("cifar10", "train", root=data_root, n=400, seed=3)
    xt, yt = load_images("cifar10", "test", root=data_root, n=200, seed=3)
    xo, _ = load_images("tinyimagenet-resize", root=data_root, n=200, seed=3)
    cfg = Config.preset("tiny", method="mcl", epochs=1, precision="fp32")
    model = train(cfg, data=(x[:96], y[:96]), progress=False).model
    data = EvalData((x, y), (xt, yt), {"tinyimagenet-resize": xo})
    return Checkpoint(model=model, config=cfg), data


def _run(ck, data, precision, cache_dir=None):
    return evaluate(
        ck,
        data=data,
        sei=(1, 8),
        variants=("paper",),
        covariance="tied",
        precision=precision,
        cache_dir=cache_dir,
        progress=False,
    )


def test_bf16_evaluation_is_close_to_fp32(setup):
    ck, data = setup
    x = data.test[0]
    z32 = embed(ck.model, x, views=8, amp=False, progress=False)
    z16 = embed(ck.model, x, views=8, amp=True, progress=False)
    err = (z16 - z32).norm(dim=-1) / z32.norm(dim=-1)  # (n, 8)
    # bf16 keeps 8 bits of mantissa: ~0.4% per rounding; a ResNet accumulates a few
    assert 0 < float(err.median()) < 0.02 and float(err.max()) < 0.1
    exact, fast = _run(ck, data, "fp32"), _run(ck, data, "bf16")
    assert len(exact) == len(fast) == 4  # W=1, and W=8 x 3 aggregations
    # this barely trained model has near-ties between classes, so predictions may flip
    # (the shipped model moved by 0.1-0.3 points, see mclviz.evaluate); AUROC is stable
    assert (exact["auroc"] - fast["auroc"]).abs().max() <= 0.02
    assert not exact[["auroc", "aupr_in", "aupr_out"]].equals(
        fast[["auroc", "aupr_in", "aupr_out"]]
    )


def test_precision_keys_the_cache(setup, tmp_path):
    ck, data = setup
    ck = Checkpoint(model=ck.model, config=ck.config, sha256="ab" * 32)
    _run(ck, data, "fp32", tmp_path)
    n_files = len(list(tmp_path.rglob("*.safetensors")))
    _run(ck, data, "bf16", tmp_path)  # a different precision must not hit fp32's files
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2 * n_files > 0
    again = _run(ck, data, "fp32", tmp_path)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2 * n_files
    assert again.equals(_run(ck, data, "fp32"))


def test_embedding_amp_choices():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    assert embedding_amp(model, "fp32") is False
    assert model[0].weight.is_contiguous()
    assert embedding_amp(model, "bf16") is True
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="precision='fp8'"):
        embedding_amp(model, "fp8")
    with pytest.raises(ValueError, match="precision='fp16' is for CUDA"):
        embedding_amp(model, "fp16")
