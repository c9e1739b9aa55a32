"""Tests for mclviz.methods: the registry, the views builders, and a toy method end to end.

The toy method is the registry's promise: one ``Method(...)`` entry and its loss function,
nothing else edited, and the method trains (``mclviz.training.train``), checkpoints and
reloads, evaluates (``mclviz.evaluation.evaluate``) and retrains head-only in the sliders'
fast mode (``mclviz.evaluation.retrain_head`` on a ``FeatureCache``).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mclviz import checkpoint as ckpt
from mclviz import losses, methods
from mclviz.config import Config
from mclviz.data import load_images
from mclviz.evaluation import evaluate, retrain_head
from mclviz.methods import Method, StepContext, Views, contrastive_views
from mclviz.training import FeatureCache, train

BUILT_IN = ("mcl", "mcl-noaux", "ccm", "supclr", "simclr", "ce", "rot", "msc")
TOY = "toy-ntxent-half-tau"


def _toy_loss(out, views, ctx):
    """NT-Xent (Eq. 2) at half the run's temperature, on the projections z (2N, d)."""
    return {"loss": losses.nt_xent(out["z"], tau=ctx.config.tau / 2)}


@pytest.fixture
def toy():
    """The toy method, registered for one test and removed again whatever happens."""
    entry = methods.register(
        Method(
            name=TOY,
            description="NT-Xent at tau / 2 on the projection (a toy)",
            make_views=contrastive_views,
            outputs=("z",),
            loss=_toy_loss,
            hyperparameters=("tau",),
        )
    )
    try:
        yield entry
    finally:
        methods.unregister(TOY)
        assert TOY not in methods.names()


# ----------------------------------------------------------------------------- registry
def test_built_in_methods_in_registration_order():
    assert methods.names() == BUILT_IN
    contrastive = [m for m in BUILT_IN if methods.get(m).contrastive]
    assert contrastive == ["mcl", "mcl-noaux", "ccm", "supclr", "simclr"]
    assert [m for m in BUILT_IN if methods.get(m).rotation_labels] == ["mcl", "rot"]
    assert [m for m in BUILT_IN if methods.get(m).classifier] == ["ce", "rot"]
    assert methods.get(methods.get("mcl")) is methods.get("mcl")  # an entry passes through


def test_unknown_name_says_did_you_mean():
    with pytest.raises(
        ValueError, match=r"method='simcrl' is not known \(did you mean 'simclr'\?\)"
    ):
        methods.get("simcrl")
    with pytest.raises(ValueError, match=r"method='byol' is not known; choose one of \['mcl'"):
        methods.get("byol")
    with pytest.raises(ValueError, match="method='supclrr' is not known.*'supclr'"):
        Config.preset("tiny", method="supclrr")  # the config validates through the registry
    with pytest.raises(ValueError, match="method='nope' is not known"):
        methods.unregister("nope")


def test_duplicate_register_is_refused(toy):
    with pytest.raises(
        ValueError, match=f"a method named '{TOY}' is registered already.*replace=True"
    ):
        methods.register(dataclasses.replace(toy, description="another"))
    with pytest.raises(ValueError, match="a method named 'mcl' is registered already"):
        methods.register(dataclasses.replace(methods.get("mcl")))
    other = methods.register(dataclasses.replace(toy, description="another"), replace=True)
    assert methods.get(TOY) is other
    with pytest.raises(TypeError, match="register\\(\\) takes a Method, got dict"):
        methods.register({"name": "x"})


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"outputs": ("embedding",)}, r"outputs=\('embedding',\) must name model outputs among"),
        ({"outputs": ()}, r"outputs=\(\) must name model outputs"),
        ({"outputs": ("z", "logit")}, r"outputs=\('z', 'logit'\)"),
        ({"scored_on": "logits"}, r"scored_on='logits': choose 'z' or 'features'"),
    ],
)
def test_method_with_bad_fields_is_refused(fields, match):
    base = {
        "name": "bad",
        "description": "",
        "make_views": contrastive_views,
        "outputs": ("z",),
        "loss": _toy_loss,
    }
    with pytest.raises(ValueError, match=match):
        Method(**{**base, **fields})


def test_method_facts():
    mcl, msc, ce = methods.get("mcl"), methods.get("msc"), methods.get("ce")
    paper = Config.preset("paper", method="mcl")
    assert mcl.outputs_for(paper) == ("z",) and not mcl.needs_classifier(paper)
    aux = paper.replace(aux_ce=0.5)
    assert mcl.outputs_for(aux) == ("z", "logits") and mcl.needs_classifier(aux)
    assert ce.outputs_for(Config.preset("paper", method="ce")) == ("logits",)
    assert mcl.learning_rate(paper) == pytest.approx(1.2)  # 0.3 x 1024 / 256
    assert mcl.learning_rate(paper.replace(lr=0.1)) == 0.1
    one = Config.preset("paper", method="msc", normal_class=0)
    assert msc.learning_rate(one) == one.msc_lr  # the method's own default
    assert msc.freeze_bn and msc.one_class and msc.scored_on == "features"


# ------------------------------------------------------------------------ views builders
def _plain_augmenters(cfg):
    """Augmenters whose augmentations are the identity (to the float image), for layouts."""
    aug = methods.Augmenters(cfg)
    aug.contrastive = lambda x, generator=None: x.float() / 255
    aug.light = lambda x, generator=None: x.float() / 255
    return aug


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("rotations", [4, 1])
def test_rotated_contrastive_views_layout(n, rotations):
    """mcl's views: rotations_per_image=4: 4 rotation-major blocks of 2n views, block r holds
    rot90(x_k, r) twice per image; 1: 2n views, both views of image k in one random rotation."""
    cfg = Config.preset("tiny", method="mcl", rotations_per_image=rotations)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(n) + 5
    v = methods.get("mcl").make_views(
        x, y, _plain_augmenters(cfg), cfg, torch.Generator().manual_seed(0)
    )
    assert len(v.x) == len(v.y) == len(v.y_aux) == cfg.views_per_image * n
    for row in range(len(v.x)):
        k = (row % (2 * n)) // 2
        r = int(v.y_aux[row])
        if rotations == 4:
            assert r == row // (2 * n)
        else:
            assert int(v.y_aux[row ^ 1]) == r  # the two views share their rotation
        assert int(v.y[row]) == int(y[k])
        assert torch.equal(v.x[row], torch.rot90(x[k].float() / 255, r, dims=(-2, -1)))


@pytest.mark.parametrize("rotations", [4, 1])
def test_rotation_head_views_layout(rotations):
    """rot's views: the classifier reads the upright rows (``extra["main"]``), the rotation head
    the rows of ``extra["rot"]``; every row is rot90 of the image by its label."""
    n = 3
    cfg = Config.preset("tiny", method="rot", rotations_per_image=rotations)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    y = torch.tensor([2, 0, 1])
    v = methods.get("rot").make_views(
        x, y, _plain_augmenters(cfg), cfg, torch.Generator().manual_seed(0)
    )
    assert len(v.x) == cfg.views_per_image * n
    assert v.extra["main"].tolist() == [0, 1, 2] and bool((v.y_aux[v.extra["main"]] == 0).all())
    expected_rot = list(range(4 * n)) if rotations == 4 else list(range(n, 2 * n))
    assert v.extra["rot"].tolist() == expected_rot
    for row in range(len(v.x)):
        k = row % n
        assert int(v.y[row]) == int(y[k])
        assert torch.equal(
            v.x[row], torch.rot90(x[k].float() / 255, int(v.y_aux[row]), dims=(-2, -1))
        )


def test_step_gathers_only_batch_losses():
    """``gather`` runs for losses that couple the batch (contrastive), not for ``ce``."""
    calls = []

    def gather(out, views):
        calls.append(len(views.y))
        return out, views

    z = torch.randn(4, 3, requires_grad=True)
    cfg = Config.preset("tiny", method="simclr")
    views = Views(torch.zeros(4, 1), torch.tensor([0, 0, 1, 1]))
    terms = methods.step(
        methods.get("simclr"), lambda x, names: {"z": z}, views, StepContext(cfg), gather
    )
    assert calls == [4]
    torch.testing.assert_close(terms["loss"], losses.nt_xent(z, tau=cfg.tau))
    ce = Config.preset("tiny", method="ce", num_classes=2)
    logits = torch.randn(4, 2, requires_grad=True)
    methods.step(
        methods.get("ce"), lambda x, names: {"logits": logits}, views, StepContext(ce), gather
    )
    assert calls == [4]


# --------------------------------------------------------------------- the toy method
@pytest.mark.slow
def test_toy_method_trains_checkpoints_evaluates_and_retrains(toy, tmp_path, data_root):
    assert TOY in methods.names() and toy.contrastive
    cfg = Config.preset(
        "tiny", method=TOY, epochs=1, precision="fp32", data_root=str(data_root)
    )  # 256 CIFAR-10 training images, batch 32: 8 steps
    assert cfg.views_per_image == 2 and not cfg.uses_rotation

    # one step is the toy loss: NT-Xent at tau / 2 of the projections
    z = torch.randn(6, 4, requires_grad=True)
    views = Views(torch.zeros(6, 1), torch.zeros(6, dtype=torch.long))
    terms = methods.step(toy, lambda x, names: {"z": z}, views, StepContext(cfg))
    torch.testing.assert_close(terms["loss"], losses.nt_xent(z, tau=0.1))

    # train, checkpoint, load
    result = train(cfg, out=tmp_path / "run", progress=False)
    assert result.history[0]["step"] == 8 and torch.isfinite(
        torch.tensor(result.history[0]["loss"])
    )
    ck = ckpt.load(result.checkpoint)
    assert ck.config.method == TOY and ck.config == result.config
    probe = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(probe), result.model(probe), rtol=0, atol=0)

    # evaluate: class-conditional Gaussians on z (scored_on="z"), one OOD set
    table = evaluate(
        ck,
        ood=["gaussian"],
        test_subset=100,
        train_subset=200,
        data_root=str(data_root),
        precision="fp32",
        progress=False,
    )
    assert set(table["method"]) == {TOY} and set(table["ood"]) == {"gaussian"}
    assert table["auroc"].between(0, 1).all() and table["accuracy"].between(0, 1).all()

    # the sliders' head-only mode, with the toy loss
    x, y = load_images("cifar10", "train", root=data_root, n=64, seed=0)
    xt, yt = load_images("cifar10", "test", root=data_root, n=32, seed=0)
    xo, _ = load_images("gaussian", "test", root=data_root, n=32, seed=0)
    cache = FeatureCache.build(
        ck.model, x, y, views=2, rotations=False, test=(xt, yt), ood={"gaussian": xo}
    )
    run = retrain_head(cache, method=TOY, tau=0.4, epochs=2, batch_size=16)
    assert run.method == TOY and len(run.history) == 2
    assert run.params["tau"] == 0.4
    assert 0.0 <= run.metrics["gaussian"]["auroc"] <= 1.0
