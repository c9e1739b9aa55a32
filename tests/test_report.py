"""mclviz.report: tiny real reproduce runs on CIFAR-10 and what they write.

The tiny models are trained once for the module (``reproduce(train=True, preset="tiny")``);
the other runs reuse their checkpoints and the embedding cache.
"""

from __future__ import annotations

import re
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mclviz import report as rp
from mclviz.__main__ import main
from mclviz.checkpoint import update_manifest
from mclviz.config import Config
from mclviz.evaluate import evaluate, load_eval_data
from mclviz.paper_numbers import paper_table

# the tiny ce model has 64-d features: its class covariances need > 64 images per class
TRAIN_SUBSET = 1000
TEST_SUBSET = 100
N_BOOT = 200
TOL = 1e-9


def _verdict(low: float, high: float) -> str:  # the rule the report states
    return "supported" if low > 0 else "not supported" if high < 0 else "inconclusive"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on 2 shared, busy cores two threads spend their time in barriers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def full(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cache = tmp_path_factory.mktemp("cache")
    index = rp.reproduce(
        out=out,
        train=True,
        preset="tiny",
        data_root=str(data_root),
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
        progress=False,
        n_boot=N_BOOT,
        cache_dir=cache,
    )
    return SimpleNamespace(
        out=out,
        index=index,
        cache=cache,
        root=str(data_root),
        html=index.read_text(encoding="utf-8"),
    )


def _csv(folder, name):
    return pd.read_csv(folder / f"{name}.csv", keep_default_na=True)


# ----------------------------------------------------------------------------- full run


def test_index_html_holds_every_table_claim_and_figure(full):
    assert full.index == full.out / "index.html"
    h = full.html
    for section in (
        "claims",
        "budget",
        "table1",
        "table2",
        "table3",
        "table4",
        "table5",
        "openset",
    ):
        assert f'id="{section}"' in h or f"id='{section}'" in h, section
    claims = _csv(full.out, "claims")
    for cid in rp.CLAIM_IDS:
        m = re.search(rf'<li class="claim" id="claim-{cid}" data-verdict="([a-z ]+)">', h)
        assert m, cid
        assert m.group(1) == claims[claims["claim"] == cid]["claim_verdict"].iloc[0]
    # self-contained: the figures are embedded, nothing is fetched
    assert h.count("data:image/png;base64,") == 4
    assert "<script" not in h and "http://" not in h and "https://" not in h
    # data caveats quoted from the data root's README, OOD substitutions stated
    assert "JPEG" in h and "test_7917" in h
    assert "Tiny ImageNet (resize) stands in for ImageNet (FIX)" in h
    assert "SVHN" in h and "CIFAR-100" in h and "not tested" in h


def test_tables_have_the_papers_rows_and_our_numbers(full):
    for name in ("table1", "table2", "table3", "table4", "table5"):
        t = _csv(full.out, name)
        paper = paper_table(name)
        assert set(paper.index) <= set(t["row"]), name
        assert {"acc_ours", "acc_paper", "acc_diff", "status"} <= set(t.columns)
        ours = t[t["status"] == "ours"]
        np.testing.assert_allclose(
            ours["acc_diff"].dropna(), (ours["acc_ours"] - ours["acc_paper"]).dropna()
        )
        pap = t.set_index("row").loc[list(paper.index), "acc_paper"]
        np.testing.assert_allclose(
            pap.to_numpy(dtype=float), paper["acc"].to_numpy(), equal_nan=True
        )
    t1 = _csv(full.out, "table1").set_index("row")
    assert t1.loc["MCL + SEI (ResNet-18)", "status"] == "ours"  # tiny is a ResNet-18
    assert t1.loc["MCL + SEI (ResNet-34)", "status"].startswith("not run")
    assert t1.loc["ODIN", "status"].startswith("not run")
    for c in (
        "imagenet_fix_ours",
        "imagenet_fix_paper",
        "imagenet_fix_diff",
        "auroc_gaussian_ours",
        "auroc_uniform_ours",
        "svhn_paper",
    ):
        assert c in t1.columns
    t4 = _csv(full.out, "table4")
    assert len(t4) == 7 and (t4["status"] == "ours").all()
    assert {"auroc_ours", "auroc_paper", "auroc_diff", "acc_official", "auroc_official"} <= set(
        t4.columns
    )
    t5 = _csv(full.out, "table5").set_index("row")
    assert t5.loc["MCL + DA", "status"].startswith("not run")
    assert t5.loc["MCL + w/o Aux + SEI w-avg", "status"] == "ours"
    op = _csv(full.out, "openset")
    assert (op["status"] == "ours").all() and len(op) == 7


def test_numbers_equal_the_evaluate_output(full):
    results = _csv(full.out, "results")
    data = load_eval_data(
        "cifar10", data_root=full.root, train_subset=TRAIN_SUBSET, test_subset=TEST_SUBSET
    )
    keys = ["detector", "ways", "aggregation", "variant", "ood"]
    for model, sei in (("mcl", (1, 4, 8)), ("ce", (1,))):
        direct = evaluate(
            full.out / "runs" / model / "checkpoint.safetensors",
            data=data,
            sei=sei,
            cache_dir=full.cache,
            progress=False,
        )
        ours = results[results["model"] == model].drop(columns="model")
        merged = direct.merge(ours, on=["method", *keys], suffixes=("", "_csv"))
        assert len(merged) == len(direct) == len(ours)
        for c in ("accuracy", "auroc", "aupr_in", "aupr_out", "fpr95"):
            np.testing.assert_allclose(merged[c], merged[f"{c}_csv"], rtol=0, atol=TOL)
        # the tables carry the same numbers, in percent
        best = direct[
            (direct["ways"] == max(sei))
            & (direct["aggregation"].isin(["w-avg", "none"]))
            & (direct["variant"] == "paper")
            & (direct["detector"] == "mahalanobis")
        ]
        tin = best[best["ood"] == "tinyimagenet-resize"].iloc[0]
        if model == "mcl":
            row = _csv(full.out, "table4").set_index("row").loc["MCL + 8-way SEI w-avg"]
            assert abs(row["auroc_ours"] - 100 * tin["auroc"]) < TOL
            assert abs(row["acc_ours"] - 100 * tin["accuracy"]) < TOL
        else:
            row = _csv(full.out, "table1").set_index("row").loc["Mahalanobis"]
            assert abs(row["imagenet_fix_ours"] - 100 * tin["auroc"]) < TOL
            msp = direct[(direct["detector"] == "msp") & (direct["ood"] == "uniform")].iloc[0]
            base = _csv(full.out, "table1").set_index("row").loc["Baseline"]
            assert abs(base["auroc_uniform_ours"] - 100 * msp["auroc"]) < TOL


def test_each_claim_verdict_follows_its_numbers(full):
    claims = _csv(full.out, "claims")
    results = _csv(full.out, "results")
    assert list(dict.fromkeys(claims["claim"])) == list(rp.CLAIM_IDS)
    tested = claims[claims["verdict"] != "not tested"]
    assert len(tested) == 6 + 2 + 1 + 1 + 1  # every comparison ran: all checkpoints exist
    for _, r in tested.iterrows():
        for side in ("a", "b"):
            model, det, ways, agg, var = r[f"key_{side}"].split("/")
            hit = results[
                (results["model"] == model)
                & (results["detector"] == det)
                & (results["ways"] == int(ways))
                & (results["aggregation"] == agg)
                & (results["variant"] == var)
                & (results["ood"] == r["ood"])
            ]
            assert len(hit) == 1
            assert abs(r[f"auroc_{side}"] - 100 * hit["auroc"].iloc[0]) < TOL
        assert abs(r["diff"] - (r["auroc_a"] - r["auroc_b"])) < TOL
        assert r["ci_low"] <= r["ci_high"]
        assert r["verdict"] == _verdict(r["ci_low"], r["ci_high"])
        assert r["n_in"] == TEST_SUBSET and r["n_out"] == TEST_SUBSET and r["n_boot"] == N_BOOT
    for cid, g in tested.groupby("claim"):
        v = list(g["verdict"])
        expect = (
            "not supported"
            if "not supported" in v
            else "supported"
            if all(x == "supported" for x in v)
            else "inconclusive"
        )
        assert (g["claim_verdict"] == expect).all(), cid


def test_every_image_set_is_embedded_once(full):
    # evaluate's cache files: per closed-set model train / test / each OOD set, plus the
    # logits of ce and rot; the open-set model: train / test / open-set. The figures and
    # the claims read these files: no other embedding is computed.
    n_ood = len(rp.DEFAULT_OOD)
    expect = len(rp.DEFAULT_METHODS) * (2 + n_ood) + 2 * (1 + n_ood) + 3
    assert len(list(full.cache.glob("*.safetensors"))) == expect


def test_figures_are_valid_pdf_and_png(full):
    for stem in ("fig1_projection", "fig4_failures", "fig5_scores", "fig5_scores_nosei"):
        assert (full.out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        png = (full.out / f"{stem}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_budget_records_the_runs(full):
    b = _csv(full.out, "budget").set_index("model")
    assert list(b.index) == [*rp.DEFAULT_METHODS, rp.OPEN_SET]
    assert (b["status"] == "evaluated").all()
    tiny = Config.preset("tiny")
    assert (b["epochs_done"] == tiny.epochs).all() and (b["epochs_config"] == tiny.epochs).all()
    assert (b["seed"] == 0).all() and (b["device"] == "cpu").all()
    assert b["precision"].isin(["fp32", "bf16"]).all() and (b["train_seconds"] > 0).all()
    assert b.loc[rp.OPEN_SET, "known_classes"] == "0,1,2,3,4,5"
    # trained with the tiny preset itself: no field differs from it
    assert _csv(full.out, "preset_differences").empty
    assert "trained with the tiny preset exactly" in full.html


# ----------------------------------------------------------------------------- partial runs


def test_methods_left_out_give_not_tested_lines(full, tmp_path):
    index = rp.reproduce(
        out=tmp_path,
        checkpoints=full.out / "runs",
        methods=("ce", "mcl"),
        open_set=False,
        data_root=full.root,
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
        progress=False,
        n_boot=N_BOOT,
        cache_dir=full.cache,
        figures=False,
    )
    claims = _csv(tmp_path, "claims").set_index("claim")
    for cid, missing in (("b", "supclr"), ("c", "mcl-noaux"), ("e", "mcl-noaux")):
        assert claims.loc[cid, "claim_verdict"] == "not tested"
        assert (
            claims.loc[cid, "note"].startswith("not tested (")
            and missing in claims.loc[cid, "note"]
        )
    a = claims.loc[["a"]]  # only the baselines of ce are there
    assert list(a["b"]) == ["Baseline", "Mahalanobis"] and a["verdict"].ne("not tested").all()
    assert (
        a["note"].iloc[0].startswith("not compared") and "rot not in methods" in a["note"].iloc[0]
    )
    assert claims.loc["d", "verdict"] != "not tested"
    # the same numbers as the full run for the models both evaluated
    np.testing.assert_allclose(
        claims.loc["d", "auroc_a"], _csv(full.out, "claims").set_index("claim").loc["d", "auroc_a"]
    )
    h = index.read_text(encoding="utf-8")
    assert 'id="claim-b" data-verdict="not tested"' in h
    assert "not run: not in methods" in _csv(tmp_path, "table3").to_string()
    assert "Figure 1 not made (figures=False)" in h and not list(tmp_path.glob("*.png"))
    assert _csv(tmp_path, "openset")["status"].iloc[0] == "not run: open_set=False"


def test_cli_reproduce_with_a_manifest_and_missing_checkpoints(full, tmp_path, capsys):
    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(full.out / "runs" / "ce" / "checkpoint.safetensors", ck / "ce.safetensors")
    update_manifest(ck, "ce", ck / "ce.safetensors")
    shutil.copy(full.out / "runs" / "mcl" / "checkpoint.safetensors", ck / "mcl.safetensors")
    update_manifest(ck, "mcl", ck / "mcl.safetensors")
    with open(ck / "mcl.safetensors", "ab") as fh:  # corrupt it after the manifest
        fh.write(b"\0")
    out = tmp_path / "rep"
    code = main(
        [
            "reproduce",
            "--out",
            str(out),
            "--checkpoints",
            str(ck),
            "--data-root",
            full.root,
            "--test-subset",
            str(TEST_SUBSET),
            "--train-subset",
            str(TRAIN_SUBSET),
            "--quiet",
        ]
    )
    assert code == 0
    assert f"report written to {out / 'index.html'}" in capsys.readouterr().out
    claims = _csv(out, "claims").set_index("claim")
    assert (claims["claim_verdict"] == "not tested").all()
    assert "sha256" in claims.loc["d", "note"]  # mcl is there but fails its check
    assert "no checkpoint for mcl-noaux" in claims.loc["e", "note"]
    assert _csv(out, "openset")["status"].iloc[0] == "not run: no checkpoint for mcl-openset"
    b = _csv(out, "budget").set_index("model")
    assert (
        b.loc["ce", "status"] == "evaluated" and b.loc["rot", "status"] == "no checkpoint for rot"
    )
    h = (out / "index.html").read_text(encoding="utf-8")
    assert h.count('data-verdict="not tested"') == 5
    assert "Figure 1 not made" in h and "Figure 4 not made" in h
    assert not (out / "fig1_projection.png").exists()


# ----------------------------------------------------------------------------- units


def test_arguments_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="methods=.*'svm'"):
        rp.reproduce(out=tmp_path, methods=("mcl", "svm"))
    with pytest.raises(ValueError, match="either train=True"):
        rp.reproduce(out=tmp_path, train=True, checkpoints=tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        rp.reproduce(out=tmp_path, checkpoints=tmp_path / "nope")
    with pytest.raises(ValueError, match="ood=\\(\\) is empty"):
        rp.reproduce(out=tmp_path, ood=())
    with pytest.raises(ValueError, match="preset='huge'"):
        rp.reproduce(out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="test_subset=0"):
        rp.reproduce(out=tmp_path, test_subset=0)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("n_in,n_out", [(5, 7), (40, 40), (300, 120)])
def test_auroc_is_sklearns_with_ties(n_in, n_out):
    rng = np.random.default_rng(n_in)
    s_in = rng.integers(0, 6, n_in).astype(float)  # many ties
    s_out = rng.integers(-2, 4, n_out).astype(float)
    expect = roc_auc_score(np.r_[np.ones(n_in), np.zeros(n_out)], np.r_[s_in, s_out])
    assert abs(rp._auroc(s_in, s_out) - expect) < 1e-12


def test_diff_ci_zero_for_identical_scores_and_positive_for_a_clear_gap():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(1, 1, 200), rng.normal(0, 1, 150)
    assert rp._diff_ci((s_in, s_out), (s_in, s_out), n_boot=100, seed=0) == (0.0, 0.0)
    good = (rng.normal(3, 1, 200), rng.normal(0, 1, 150))
    low, high = rp._diff_ci(good, (s_in, s_out), n_boot=200, seed=0)
    assert 0 < low <= high
    assert rp._verdict(low, high) == "supported"
    assert rp._verdict(-0.1, 0.2) == "inconclusive" and rp._verdict(-0.3, -0.1) == "not supported"


def test_preset_differences_are_listed_field_by_field():
    cfg = Config.preset(
        "small",
        method="mcl",
        epochs=100,
        batch_size=256,
        data_root="/somewhere",
        extra={"num_classes": 10},
    )
    diffs = {k: (v, w) for k, v, w in rp._preset_diff(cfg, "small")}
    assert diffs == {"epochs": (100, 15), "batch_size": (256, 128)}
    assert rp._preset_diff(Config.preset("small", method="ccm"), "small") == []


def test_plotly_figures_fall_back_to_matplotlib_without_chrome(tmp_path, monkeypatch):
    import plotly.graph_objects as go

    from mclviz.plots import projection_figure

    rng = np.random.default_rng(0)
    z = {"a": rng.normal(size=(30, 4)), "b": rng.normal(size=(30, 4))}
    fig = projection_figure(z, np.r_[np.arange(20) % 3, -np.ones(10, int)], sample=None)

    def no_chrome(*args, **kwargs):
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    monkeypatch.setattr(go.Figure, "write_image", no_chrome)
    pdf, png = rp._export(fig, tmp_path / "fig")
    assert pdf.read_bytes()[:5] == b"%PDF-" and png.read_bytes()[:4] == b"\x89PNG"


def test_data_caveats_come_from_the_readme(tmp_path):
    assert "no README.md" in rp._data_caveats(str(tmp_path))[0]
    (tmp_path / "README.md").write_text(
        "# data\n\nCaveats, to state:\n- one\n  continued\n- two\n\nOther text.\n"
    )
    assert rp._data_caveats(str(tmp_path)) == ["one continued", "two"]


def test_claims_note_unequal_training():
    def model(epoch, epochs=15):
        cfg = SimpleNamespace(epochs=epochs, views_per_image=2)
        return rp._Model("x", checkpoint=SimpleNamespace(epoch=epoch, config=cfg))

    comparisons = rp._CLAIMS["b"][2]  # mcl against supclr
    same = {"mcl": model(15), "supclr": model(15)}
    assert rp._unequal_training(same, comparisons) == ""
    short = {"mcl": model(15), "supclr": model(6)}
    assert rp._unequal_training(short, comparisons) == (
        "unequal training: mcl 15 of 15 epochs, supclr 6 of 15 epochs"
    )
    # equally short is still short of the schedule, and said so
    both = {"mcl": model(6), "supclr": model(6)}
    assert rp._unequal_training(both, comparisons) == (
        "trained short of the schedule: mcl 6 of 15 epochs, supclr 6 of 15 epochs"
    )


def test_claims_note_views_per_image():
    def model(method):
        cfg = Config.preset("tiny", method=method)
        return rp._Model(method, checkpoint=SimpleNamespace(epoch=1, config=cfg))

    comparisons = rp._CLAIMS["b"][2]  # mcl against supclr
    assert rp._unequal_views({"mcl": model("mcl"), "supclr": model("supclr")}, comparisons) == (
        "views per training image differ: mcl 8, supclr 2"
    )
    same = {"mcl": model("mcl-noaux"), "supclr": model("supclr")}
    assert rp._unequal_views(same, comparisons) == ""
    assert [Config.preset("tiny", method=m).views_per_image for m in ("ce", "rot", "simclr")] == [
        1,
        4,
        2,
    ]
