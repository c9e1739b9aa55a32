"""Inputs shared by the one-class tests (``tests/training/test_fine_tune.py`` tests the
fine-tuning, ``tests/evaluation/test_one_class_eval.py`` its evaluation): "ship" as the
normal class against the animal classes, the tiny fine-tuning config, and a SimCLR
backbone pre-trained for a few seconds. The fixtures are imported by name into each test
module (pytest finds fixtures among a module's globals)."""

from __future__ import annotations

import pytest
import torch

from mclviz.config import Config
from mclviz.training import MSC_RECIPE, OneClassData, load_one_class_data, train

SHIP = 8
ANIMALS = (2, 3, 4, 5, 6, 7)  # bird, cat, deer, dog, frog, horse
SEED = 0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread here: these runs are many small ops, and on a shared 2-core machine
    two threads spin-wait (measured: 7x the CPU time, 5x the wall time of one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def msc_cfg(**kw) -> Config:
    """Tiny fine-tuning config: the authors' recipe with a larger lr and momentum, so that a
    few steps move the weights (their lr 1e-5 is for hours of ImageNet-scale fine-tuning)."""
    values = {
        **MSC_RECIPE,
        "epochs": 3,
        "batch_size": 32,
        "lr": 3e-4,
        "momentum": 0.9,
        "method": "msc",
        "normal_class": SHIP,
        "precision": "fp32",
        "train_subset": 300,
        "seed": SEED,
    }
    return Config.preset("tiny", **{**values, **kw})


@pytest.fixture(scope="module")
def cifar(data_root) -> OneClassData:
    return load_one_class_data(data_root=data_root, test_subset=2000)


@pytest.fixture(scope="module")
def ships_vs_animals(cifar) -> OneClassData:
    keep = torch.isin(cifar.test_labels, torch.tensor((SHIP, *ANIMALS)))
    return OneClassData(
        cifar.train_images,
        cifar.train_labels,
        cifar.test_images[keep],
        cifar.test_labels[keep],
        cifar.names,
    )


@pytest.fixture(scope="module")
def simclr_ckpt(tmp_path_factory, cifar):
    """A backbone pre-trained without labels (tiny SimCLR, 512 images, 3 epochs)."""
    g = torch.Generator().manual_seed(SEED)
    idx = torch.randperm(len(cifar.train_labels), generator=g)[:512]
    cfg = Config.preset(
        "tiny", method="simclr", epochs=3, batch_size=64, precision="fp32", seed=SEED
    )
    out = tmp_path_factory.mktemp("simclr")
    train(cfg, out=out, data=(cifar.train_images[idx], cifar.train_labels[idx]), progress=False)
    return out / "checkpoint.safetensors"
