"""mclviz.evaluation.evaluate: the precision choice (bf16 against the exact fp32), the
precision handling of ``evaluate`` / ``Outputs``, and ``split="val"``."""

from __future__ import annotations

import pytest
import torch

from mclviz.checkpoint import Checkpoint
from mclviz.config import Config
from mclviz.data import load_images, validation_split
from mclviz.device import Precision
from mclviz.embed import embed
from mclviz.evaluation import EvalData, Outputs, evaluate, load_eval_data
from mclviz.training import train


@pytest.fixture(scope="module")
def setup(data_root):
    x, y = load_images("cifar10", "train", root=data_root, n=400, seed=3)
    xt, yt = load_images("cifar10", "test", root=data_root, n=200, seed=3)
    xo, _ = load_images("tinyimagenet-resize", root=data_root, n=200, seed=3)
    cfg = Config.preset("tiny", method="mcl", epochs=1, precision="fp32")
    model = train(cfg, data=(x[:96], y[:96]), progress=False).model
    data = EvalData((x, y), (xt, yt), {"tinyimagenet-resize": xo})
    return Checkpoint(model=model, config=cfg), data


def _run(ck, data, precision, cache_dir=None, **kwargs):
    return evaluate(
        ck,
        data=data,
        sei=(1, 8),
        variants=("paper",),
        covariance="tied",
        precision=precision,
        cache_dir=cache_dir,
        progress=False,
        **kwargs,
    )


def test_bf16_evaluation_is_close_to_fp32(setup):
    ck, data = setup
    x = data.test[0]
    z32 = embed(ck.model, x, views=8, precision="fp32", progress=False)
    z16 = embed(ck.model, x, views=8, precision="bf16", progress=False)
    err = (z16 - z32).norm(dim=-1) / z32.norm(dim=-1)  # (n, 8)
    # bf16 keeps 8 bits of mantissa: ~0.4% per rounding; a ResNet accumulates a few
    assert 0 < float(err.median()) < 0.02 and float(err.max()) < 0.1
    exact, fast = _run(ck, data, "fp32"), _run(ck, data, "bf16")
    assert len(exact) == len(fast) == 4  # W=1, and W=8 x 3 aggregations
    # this barely trained model has near-ties between classes, so predictions may flip
    # (the shipped model moved by 0.1-0.3 points, see mclviz.evaluation.evaluate); AUROC
    # is stable
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


def test_precision_choices_of_outputs_and_evaluate(setup):
    """Was ``embedding_amp``: the precision is resolved by ``mclviz.device`` and kept on the
    outputs; the caller's model is never converted (the old code made it channels-last)."""
    ck, data = setup
    convs = [m for m in ck.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous() for m in convs)
    exact = Outputs(ck.model, data, precision="fp32", progress=False)
    assert exact.precision == Precision("fp32", "cpu", False) and exact.precision.dtype is None
    fast = Outputs(ck.model, data, precision="bf16", progress=False)
    assert fast.precision == Precision("bf16", "cpu", True)
    assert fast.precision.dtype is torch.bfloat16
    given = Precision("bf16", "cpu", False)
    assert Outputs(ck.model, data, precision=given, progress=False).precision is given
    fast.get("z", "test", 1)  # embedding under bf16 leaves the model's memory format alone
    _run(ck, data, "bf16")
    assert all(m.weight.is_contiguous() for m in convs)  # not turned channels-last
    with pytest.raises(ValueError, match="precision='fp8'"):
        Outputs(ck.model, data, precision="fp8")
    with pytest.raises(ValueError, match="precision='fp16' is for CUDA.*use 'bf16' or 'fp32'"):
        Outputs(ck.model, data, precision="fp16")
    with pytest.raises(ValueError, match="precision='fp8'"):
        _run(ck, data, "fp8")
    with pytest.raises(ValueError, match="precision='fp16' is for CUDA"):
        _run(ck, data, "fp16")


def test_evaluate_table_columns_and_detectors(setup):
    ck, data = setup
    table, scores = _run(ck, data, "fp32", return_scores=True)
    assert list(table.columns) == [
        "method",
        "detector",
        "ways",
        "aggregation",
        "variant",
        "normalize",
        "covariance",
        "output",
        "label",
        "key",
        "accuracy",
        "ood",
        "auroc",
        "aupr_in",
        "aupr_out",
        "fpr95",
    ]
    assert set(table["method"]) == {"mcl"} and set(table["output"]) == {"z"}
    assert sorted(zip(table["ways"], table["aggregation"], strict=True)) == [
        (1, "none"),
        (8, "avg"),
        (8, "max"),
        (8, "w-avg"),
    ]
    assert table.attrs["seconds"] > 0
    assert len(scores.results) == 4 and scores.outputs.model is ck.model


def test_split_val_scores_the_held_out_training_images(data_root, monkeypatch):
    """``split="val"``: the test set is the run's hold-out (stratified
    ``validation_split(labels, holdout, seed)``), the rest of the training images fit."""
    x, y = load_images("cifar10", "train", root=data_root, n=300, seed=4)
    real = load_images

    def fake_load_images(name, split="train", root=None, **kwargs):
        if name == "cifar10" and split == "train":
            return x, y
        return real(name, split, root=root, **kwargs)

    monkeypatch.setattr("mclviz.evaluation.data.load_images", fake_load_images)
    cfg = Config.preset("tiny", method="mcl", epochs=1, precision="fp32", holdout=60, seed=7)
    val = validation_split(y, 60, seed=7)
    model = train(cfg, data=(x[~val][:64], y[~val][:64]), progress=False).model
    ck = Checkpoint(model=model, config=cfg)
    table, scores = evaluate(
        ck,
        ood=("gaussian",),
        sei=(1,),
        variants=("paper",),
        covariance="tied",
        data_root=str(data_root),
        test_subset=60,
        split="val",
        precision="fp32",
        progress=False,
        return_scores=True,
    )
    data = scores.outputs.data
    assert torch.equal(data.test[0], x[val]) and torch.equal(data.test[1], y[val])
    assert torch.equal(data.train[0], x[~val]) and torch.equal(data.train[1], y[~val])
    assert (
        torch.bincount(data.test[1], minlength=10).tolist()
        == torch.bincount(y[val], minlength=10).tolist()
    )
    (result,) = scores
    assert result.score_in.shape == (60,) and result.pred.shape == (60,)
    assert list(table["ood"]) == ["gaussian"]
    # the same images as load_eval_data gives with the config's hold-out and seed
    direct = load_eval_data(
        "cifar10", ood=(), data_root=str(data_root), split="val", holdout=60, seed=7
    )
    assert torch.equal(direct.test[0], data.test[0])
    assert torch.equal(direct.train[0], data.train[0])


def test_split_val_errors(setup, data_root):
    ck, _ = setup  # its config held nothing out (holdout=0)
    with pytest.raises(ValueError, match="holdout=0"):
        evaluate(ck, ood=(), data_root=str(data_root), split="val", progress=False)
    with pytest.raises(ValueError, match="split='train'"):
        load_eval_data("cifar10", ood=(), data_root=str(data_root), split="train")
    with pytest.raises(ValueError, match="known_classes"):
        load_eval_data(
            "cifar10", ood=(), data_root=str(data_root), split="val", known_classes=(0, 1)
        )
