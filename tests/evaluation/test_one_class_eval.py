"""Tests for mclviz.evaluation.one_class: the one-class protocol of Reiss & Hoshen 2021.

``knn_auroc``, ``one_class_table`` and ``evaluate_one_class`` on tiny real runs: a SimCLR
backbone pre-trained for a few seconds (tiny preset, 512 CIFAR-10 images, as in
``tests/training/test_fine_tune.py``, which tests the fine-tuning itself), "ship" as the
normal class and the animal classes as anomalies.
"""

# ruff: noqa: F811 (the fixtures imported from one_class_inputs are test arguments here)
from __future__ import annotations

import json

import pytest
import torch
from one_class_inputs import (  # noqa: F401 (fixtures, found by name)
    ANIMALS,
    SEED,
    SHIP,
    cifar,
    msc_cfg,
    one_thread,
    ships_vs_animals,
    simclr_ckpt,
)

from mclviz import checkpoint as ckpt
from mclviz.__main__ import main
from mclviz.evaluation import evaluate_one_class, knn_auroc, one_class_table
from mclviz.training import load_one_class_data, prepare_data


def test_cli_msc_from_checkpoint_and_evaluate(tmp_path, data_root, simclr_ckpt, capsys):
    args = [
        "train",
        "--method",
        "msc",
        "--normal-class",
        "3",
        "--pretrained",
        str(simclr_ckpt),
        "--preset",
        "tiny",
        "--train-subset",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--precision",
        "fp32",
        "--data-root",
        str(data_root),
        "--quiet",
    ]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    out = json.loads(capsys.readouterr().out)
    ck = ckpt.load(out["checkpoint"])
    assert (ck.config.method, ck.config.normal_class) == ("msc", 3)
    assert ck.config.pretrained == str(simclr_ckpt) and len(ck.metrics["center"]) == 64

    # the checkpoint's config draws the same 64 cat images as OneClassData.normal_train
    data = load_one_class_data(data_root=data_root, test_subset=300)
    assert torch.equal(prepare_data(ck.config)[0], data.normal_train(3, 64, ck.config.seed))
    res = evaluate_one_class(out["checkpoint"], data_root=data_root, test_subset=300)
    assert res["normal_class"] == 3 and res["name"] == "cat"
    assert (res["n_train"], res["n_test"]) == (64, 300)
    assert res["auroc"] == pytest.approx(knn_auroc(ck.model, 3, data=data, train_subset=64))
    assert "simclr checkpoint" in res["backbone"]  # recorded by the run (metrics["backbone"])

    # a config whose backbone does not fit the checkpoint: a clear error, exit code 2
    assert main([*args, "--width", "0.25", "--out", str(tmp_path / "bad")]) == 2
    assert "width=0.125 (config: 0.25)" in capsys.readouterr().err


def test_one_class_table(simclr_ckpt, ships_vs_animals):
    df = one_class_table(
        [SHIP],
        pretrained=simclr_ckpt,
        epochs=1,
        train_subset=64,
        mcl_checkpoint=simclr_ckpt,
        config=msc_cfg(),
        data=ships_vs_animals,
        progress=False,
    )
    assert list(df.columns) == [
        "class",
        "name",
        "knn_pretrained",
        "msc",
        "mcl_mahalanobis",
        "backbone",
    ]
    assert df["class"].tolist() == [SHIP, "mean"] and df["name"].tolist() == ["ship", "mean"]
    for col in ("knn_pretrained", "msc", "mcl_mahalanobis"):
        assert 0.0 <= df[col].iloc[0] <= 1.0 and df[col].iloc[1] == df[col].iloc[0]
    start = ckpt.load(simclr_ckpt).model
    assert df["knn_pretrained"].iloc[0] == pytest.approx(
        knn_auroc(start, SHIP, data=ships_vs_animals, train_subset=64)
    )
    assert "simclr checkpoint" in df["backbone"].iloc[0]
    assert df.attrs["config"]["epochs"] == 1 and df.attrs["n_test"] == len(
        ships_vs_animals.test_labels
    )


def test_evaluate_one_class_refuses_other_methods(simclr_ckpt):
    """(Was the last check of test_one_class.py's test_errors.)"""
    with pytest.raises(ValueError, match="is a 'simclr' checkpoint"):
        evaluate_one_class(simclr_ckpt)
