"""mclviz.evaluation.retrain: fast-mode retraining against a tiny real backbone (and the
feature cache it trains on); full mode; scoring helpers."""

from __future__ import annotations

import pytest
import torch

from mclviz.checkpoint import Checkpoint
from mclviz.config import Config
from mclviz.data import load_images
from mclviz.evaluation import EvalData, evaluate
from mclviz.evaluation.retrain import (
    RETRAIN_METHODS,
    default_ways,
    retrain_full,
    retrain_head,
    score_embeddings,
    score_model,
)
from mclviz.scoring import fit_gaussians, gaussian_scores
from mclviz.training import FeatureCache, train
from mclviz.transforms import SimCLRAugment, rotate


@pytest.fixture(scope="module")
def cifar(data_root):
    x, y = load_images("cifar10", "train", root=data_root, n=600, seed=1)
    xt, yt = load_images("cifar10", "test", root=data_root, n=60, seed=1)
    xo, _ = load_images("gaussian", n=40)
    return (x, y), (xt, yt), {"gaussian": xo}


@pytest.fixture(scope="module")
def backbone(cifar):
    """A tiny MCL model trained for one epoch on 96 real CIFAR-10 images."""
    (x, y), _, _ = cifar
    cfg = Config.preset("tiny", method="mcl", epochs=1, precision="fp32")
    return train(cfg, data=(x[:96], y[:96]), progress=False).model


@pytest.fixture(scope="module")
def cache(backbone, cifar):
    (x, y), test, ood = cifar
    return FeatureCache.build(
        backbone,
        x[:120],
        y[:120],
        views=3,
        test=test,
        ood=ood,
        generator=torch.Generator().manual_seed(5),
    )


def test_cache_shapes_layout_and_training_flags(backbone, cifar, cache):
    (x, y), (xt, yt), ood = cifar
    f = backbone.feat_dim
    assert cache.views.shape == (120, 4, 3, f) and cache.train.shape == (120, 4, f)
    assert cache.test.shape == (60, 4, f) and cache.ood["gaussian"].shape == (40, 4, f)
    assert (cache.rotations, cache.n_views, cache.sei_views) == (4, 3, 4)
    assert (cache.hidden, cache.proj_dim) == (f, 32)
    # the layout: views[:, r, v] = f(rotate(augment_v(x), r)), augmentations drawn view by
    # view and rotation by rotation from the generator; train / test: SEI views of plain x
    gen = torch.Generator().manual_seed(5)
    aug = SimCLRAugment()
    backbone.eval()
    with torch.no_grad():
        first = backbone.features(rotate(aug(x[:120], generator=gen), 0))
        second = backbone.features(rotate(aug(x[:120], generator=gen), 1))
        plain = backbone.features(torch.rot90(x[:120], 3, dims=(-2, -1)).float() / 255)
        flipped = backbone.features(torch.rot90(xt.flip(-1), 1, dims=(-2, -1)).float() / 255)
    torch.testing.assert_close(cache.views[:, 0, 0], first, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cache.views[:, 1, 0], second, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cache.train[:, 3], plain, rtol=1e-4, atol=1e-5)
    cache8 = FeatureCache.build(backbone, x[:20], y[:20], views=2, test=(xt, yt), sei_views=8)
    torch.testing.assert_close(cache8.test[:, 5], flipped, rtol=1e-4, atol=1e-5)
    assert "FeatureCache(train=120 images x 4 rotations x 3 views" in repr(cache)


def test_cache_restores_training_flags(backbone, cifar):
    (x, y), _, _ = cifar
    backbone.train()
    FeatureCache.build(backbone, x[:8], y[:8], views=2, rotations=False)
    assert all(m.training for m in backbone.modules())
    backbone.eval()


def test_retrain_head_is_repeatable(cache):
    a = retrain_head(cache, method="mcl", epochs=2, seed=3)
    b = retrain_head(cache, method="mcl", epochs=2, seed=3)
    assert a.history == b.history
    assert torch.equal(a.score_in, b.score_in) and torch.equal(a.pred, b.pred)
    assert a.metrics == b.metrics
    c = retrain_head(cache, method="mcl", epochs=2, seed=4)
    assert c.history != a.history


def test_changing_alpha_changes_the_result(cache):
    a = retrain_head(cache, method="mcl", alpha=0.05, epochs=2)
    b = retrain_head(cache, method="mcl", alpha=2.0, epochs=2)
    assert a.history[0]["ccm"] != b.history[0]["ccm"]
    assert not torch.equal(a.score_in, b.score_in)
    assert a.params["alpha"] == 0.05 and b.params["alpha"] == 2.0


@pytest.mark.parametrize("method", ["mcl", "simclr"])
def test_loss_decreases(cache, method):
    r = retrain_head(cache, method=method, epochs=12, batch_size=40, lr=1e-2)
    first = sum(h["loss"] for h in r.history[:2]) / 2
    last = sum(h["loss"] for h in r.history[-2:]) / 2
    assert last < first, [round(h["loss"], 4) for h in r.history]


@pytest.mark.parametrize("method", RETRAIN_METHODS)
def test_every_method_retrains_and_scores(cache, method):
    r = retrain_head(cache, method=method, epochs=1)
    w = default_ways(method, cache.sei_views)
    assert (r.mode, r.method, r.ways) == ("fast", method, w)
    assert r.z_test.shape == (60, 4, 32) and r.z_train.shape == (120, 4, 32)
    assert r.pred.shape == r.score_in.shape == (60,) and r.pred_out["gaussian"].shape == (40,)
    assert set(r.metrics) == {"gaussian"} and 0 <= r.auroc["gaussian"] <= 1
    assert 0 <= r.accuracy <= 1 and r.covariance == "tied"  # 12 images a class, d = 32
    assert {"loss"} <= set(r.history[0]) and len(r.history) == 1
    table = r.table()
    assert list(table["ood"]) == ["gaussian"] and table["method"].iloc[0] == method
    assert "Fast mode: projection head only, backbone frozen" in r.summary()


def test_should_stop_and_callback(cache):
    seen = []
    r = retrain_head(
        cache,
        method="simclr",
        epochs=5,
        batch_size=30,
        callback=seen.append,
        should_stop=lambda: True,
    )
    assert r.stopped_early and len(r.history) == 1 and seen[0]["kind"] == "epoch"
    # the partial epoch (1 of 4 steps) as the callback saw it
    assert r.history[0]["epoch"] == 0.25 and r.history == [
        {k: v for k, v in seen[0].items() if k != "kind"}
    ]


def test_bad_arguments_name_the_value_and_the_fix(cache, backbone, cifar):
    with pytest.raises(ValueError, match=r"alpha=6 is outside \(0, 1/tau\] = \(0, 5\]"):
        retrain_head(cache, method="mcl", alpha=6.0)
    with pytest.raises(ValueError, match="beta=3 .*tau=0.5"):
        retrain_head(cache, method="ccm", tau=0.5, beta=3.0)
    with pytest.raises(ValueError, match="method='ce' cannot be retrained"):
        retrain_head(cache, method="ce")
    with pytest.raises(ValueError, match="tau=0 must be > 0"):
        retrain_head(cache, method="simclr", tau=0)
    (x, y), _, _ = cifar
    flat = FeatureCache.build(
        backbone, x[:12], y[:12], views=2, rotations=False, test=(x[:12], y[:12]), ood={}
    )
    with pytest.raises(ValueError, match="rotations=True"):
        retrain_head(flat, method="mcl")
    no_test = FeatureCache.build(backbone, x[:12], y[:12], views=2, rotations=False)
    with pytest.raises(ValueError, match="test=\\(images, labels\\)"):
        retrain_head(no_test, method="simclr")
    with pytest.raises(ValueError, match="views=1 must be an int >= 2"):
        FeatureCache.build(backbone, x[:12], y[:12], views=1)
    with pytest.raises(TypeError, match="needs an mclviz MCLModel"):
        FeatureCache.build(torch.nn.Linear(3, 3), x[:12], y[:12])


@pytest.mark.parametrize("n_per_class, dim", [(5, 3), (12, 8), (30, 4)])
def test_score_embeddings_matches_gaussians_fitted_by_hand(n_per_class, dim):
    g = torch.Generator().manual_seed(n_per_class)
    y = torch.arange(3).repeat_interleave(n_per_class)
    z_train = (
        torch.randn(len(y), 1, dim, generator=g, dtype=torch.float64)
        + 3 * torch.nn.functional.one_hot(y, dim)[:, None].double()
    )
    z_test = torch.randn(10, 1, dim, generator=g, dtype=torch.float64)
    yt = torch.arange(10) % 3
    z_ood = {"o": torch.randn(7, 1, dim, generator=g, dtype=torch.float64)}
    out = score_embeddings(z_train, y, z_test, yt, z_ood)
    cov = "class" if n_per_class > dim else "tied"
    assert out["covariance"] == cov
    gauss = fit_gaussians(z_train[:, 0], y, covariance=cov)
    s = gaussian_scores(z_test[:, 0], gauss)  # (n, C), loop-free reference
    for i in range(10):
        best = max(range(3), key=lambda c: float(s[i, c]))
        assert int(out["pred"][i]) == best
        assert float(out["score_in"][i]) == pytest.approx(float(s[i, best]))
    so = gaussian_scores(z_ood["o"][:, 0], gauss)
    torch.testing.assert_close(out["score_out"]["o"], so.amax(1))
    assert torch.equal(out["pred_out"]["o"], so.argmax(1))
    assert out["accuracy"] == pytest.approx(float((out["pred"] == yt).double().mean()))


def test_score_embeddings_errors():
    z = torch.randn(20, 1, 3)
    y = torch.arange(20) % 2
    with pytest.raises(ValueError, match="ways=4 but z_test holds 1"):
        score_embeddings(z, y, z, y, {}, ways=4)
    with pytest.raises(ValueError, match="aggregation='mean'"):
        score_embeddings(z, y, z, y, {}, aggregation="mean")
    with pytest.raises(ValueError, match="covariance='diag'"):
        score_embeddings(z, y, z, y, {}, covariance="diag")


def test_score_model_matches_evaluate(backbone, cifar):
    (x, y), test, ood = cifar
    r = score_model(backbone, (x, y), test, ood, method="mcl", ways=1, covariance="class")
    cfg = Config.preset("tiny", method="mcl")
    table = evaluate(
        Checkpoint(model=backbone, config=cfg),
        data=EvalData((x, y), test, ood),
        sei=(1,),
        variants=("paper",),
        precision="fp32",
        progress=False,
    )
    assert r.mode == "model" and r.accuracy == pytest.approx(table["accuracy"].iloc[0])
    assert r.auroc["gaussian"] == pytest.approx(table["auroc"].iloc[0])
    r4 = score_model(backbone, (x, y), test, ood, method="mcl")
    assert r4.ways == 4 and r4.z_test.shape[1] == 4 and r4.aggregation == "w-avg"


def test_retrain_full_trains_stops_and_scores(cifar):
    (x, y), test, ood = cifar
    events = []
    calls = {"n": 0}

    def stop_after_two():
        calls["n"] += 1
        return calls["n"] >= 2

    cfg = Config.preset("tiny", method="ccm", alpha=0.5, epochs=3, batch_size=16, precision="fp32")
    r = retrain_full(
        cfg,
        x[:64],
        y[:64],
        test=test,
        ood=ood,
        callbacks=[events.append],
        should_stop=stop_after_two,
    )
    assert r.mode == "full" and r.stopped_early and r.method == "ccm"
    assert [e["step"] for e in events if e["kind"] == "step"] == [1, 2]
    assert r.params["alpha"] == 0.5 and r.params["epochs"] == 3
    assert [h["epoch"] for h in r.history] == [0.5]  # 2 of 4 steps: the partial epoch
    assert r.history[0]["step"] == 2 and "loss" in r.history[0]
    assert r.z_test.shape == (60, 1, 32) and 0 <= r.auroc["gaussian"] <= 1
    assert "Full mode: whole network" in r.summary()
