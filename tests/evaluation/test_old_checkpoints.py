"""A checkpoint of the first round's ``small`` recipe still loads and evaluates.

Every shipped model is on the ``fast`` recipe now, so ``checkpoints/`` no longer holds a
file in the old format. ``tests/fixtures/ccm-small.safetensors`` is the ``ccm`` model the
first round shipped (git history: ``checkpoints/ccm.safetensors`` at 6769eaa; a
quarter-width CIFAR ResNet-18, 15 epochs of 128-image batches), byte for byte: its saved
config predates the fields the ``fast`` recipe added (``ema_decay``, ``nesterov``,
``lr_schedule``, ``rotations_per_image``, ``aux_ce``, ...), which must read as their
defaults, and its weights must still score CIFAR-10 far above chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from mclviz.checkpoint import Checkpoint, load
from mclviz.config import Config
from mclviz.data import load_images
from mclviz.evaluation import EvalData, evaluate

OLD = Path(__file__).parents[1] / "fixtures" / "ccm-small.safetensors"
OLD_SHA256 = "f17c4aad9fb8eb705c7e6bef41e5fbe40d123300ea7152bf80ffdbd66793b13b"


@pytest.fixture(scope="module")
def old() -> Checkpoint:
    return load(OLD)


@pytest.fixture(scope="module")
def eval_data(data_root) -> EvalData:
    x, y = load_images("cifar10", "train", root=data_root, n=2000, seed=5)
    xt, yt = load_images("cifar10", "test", root=data_root, n=1000, seed=5)
    xo, _ = load_images("gaussian", root=data_root, n=500, seed=5)
    xi, _ = load_images("tinyimagenet-resize", root=data_root, n=1000, seed=5)
    return EvalData((x, y), (xt, yt), {"tinyimagenet-resize": xi, "gaussian": xo})


def test_the_fixture_is_the_first_rounds_file(old):
    assert old.sha256 == OLD_SHA256  # load() hashes the file it read


def test_an_old_config_reads_the_fields_it_predates_as_their_defaults(old):
    with safe_open(str(OLD), framework="pt") as f:
        saved = json.loads(f.metadata()["config"])
    added = {"ema_decay", "nesterov", "lr_schedule", "rotations_per_image", "aux_ce"}
    assert added.isdisjoint(saved), "the fixture should predate the fast recipe's fields"
    assert (old.config.arch, old.config.width, old.config.method) == ("resnet18", 0.25, "ccm")
    assert (old.config.epochs, old.config.batch_size, old.step) == (15, 128, 5850)
    defaults = Config()
    for name in sorted(added):
        assert getattr(old.config, name) == getattr(defaults, name), name


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_old_small_checkpoint_evaluates_far_above_chance(old, eval_data, precision):
    table = evaluate(
        old, data=eval_data, sei=(1,), variants=("paper",), precision=precision, progress=False
    )
    assert set(table["ood"]) == {"tinyimagenet-resize", "gaussian"}
    acc = float(table["accuracy"].iloc[0])
    tin = float(table.loc[table["ood"] == "tinyimagenet-resize", "auroc"].iloc[0])
    # the first round measured 59% / AUROC 62.5 on the full sets (50,000 training images)
    assert acc > 0.40, acc
    assert tin > 0.55, tin
