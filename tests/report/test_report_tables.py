"""mclviz.report.tables: the paper's tables, the open set and the budget of a real run."""

from __future__ import annotations

import numpy as np
from report_run import TEST_SUBSET, TOL, TRAIN_SUBSET, read_csv

from mclviz.config import Config
from mclviz.evaluation import BASELINES, evaluate, load_eval_data
from mclviz.paper_numbers import paper_table
from mclviz.report import DEFAULT_METHODS, OPEN_SET
from mclviz.report.tables import (
    DETECTOR_ROWS,
    config_differences,
    data_caveats,
    reproduced_table,
)


def test_tables_have_the_papers_rows_and_our_numbers(full):
    for name in ("table1", "table2", "table3", "table4", "table5"):
        t = read_csv(full.out, name)
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
    t1 = read_csv(full.out, "table1").set_index("row")
    assert t1.loc["MCL + SEI (ResNet-18)", "status"] == "ours"  # tiny is a ResNet-18
    assert t1.loc["MCL + SEI (ResNet-34)", "status"].startswith("not run")
    # ODIN and Lee's Mahalanobis (with input pre-processing, the paper's "*" rows) on ce
    assert t1.loc["ODIN", "status"] == "ours" and t1.loc["ODIN", "detector"] == "odin"
    assert t1.loc["Mahalanobis", "detector"] == "mahalanobis+pre"
    assert t1.loc["Mahalanobis", "model"] == "ce" and t1.loc["ODIN", "model"] == "ce"
    lee = t1.loc["Mahalanobis", "setting"]
    assert "Mahalanobis + input preprocessing" in lee and "eps=0.002" in lee
    assert "eps=0.0014" in t1.loc["ODIN", "setting"]
    assert t1.loc["Outlier Exposure", "status"].startswith("not run: not implemented")
    t3 = read_csv(full.out, "table3").set_index("row")
    for row in ("SimCLR (CE fine-tuned)", "SimCLR (joint fine-tuned)", "MCL (CE fine-tuned)"):
        status = t3.loc[row, "status"]
        assert status.startswith("not run: mclviz has no") and "mclviz.training.fine_tune" in status
    for c in (
        "imagenet_fix_ours",
        "imagenet_fix_paper",
        "imagenet_fix_diff",
        "auroc_gaussian_ours",
        "auroc_uniform_ours",
        "svhn_paper",
    ):
        assert c in t1.columns
    t4 = read_csv(full.out, "table4")
    assert len(t4) == 7 and (t4["status"] == "ours").all()
    assert {"auroc_ours", "auroc_paper", "auroc_diff", "acc_official", "auroc_official"} <= set(
        t4.columns
    )
    t5 = read_csv(full.out, "table5").set_index("row")
    assert t5.loc["MCL + DA", "status"].startswith("not run")
    assert t5.loc["MCL + w/o Aux + SEI w-avg", "status"] == "ours"
    op = read_csv(full.out, "openset")
    assert (op["status"] == "ours").all() and len(op) == 7


def test_numbers_equal_the_evaluate_output(full):
    results = read_csv(full.out, "results")
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
        # the report ran the baselines beside the standard detectors, in one evaluation
        assert set(direct["key"]) < set(ours["key"])
        ours = ours[ours["key"].isin(direct["key"])]
        merged = direct.merge(ours, on=["method", *keys], suffixes=("", "_csv"))
        assert len(merged) == len(direct) == len(ours)
        for c in ("accuracy", "auroc", "aupr_in", "aupr_out", "fpr95"):
            np.testing.assert_allclose(merged[c], merged[f"{c}_csv"], rtol=0, atol=TOL)
        # the tables carry the same numbers, in percent
        best = direct[
            (direct["ways"] == max(sei))
            & (direct["aggregation"].isin(["w-avg", "none"]))
            & (direct["variant"] == "paper")
            & (direct["detector"] == "gaussians")
        ]
        tin = best[best["ood"] == "tinyimagenet-resize"].iloc[0]
        if model == "mcl":
            row = read_csv(full.out, "table4").set_index("row").loc["MCL + 8-way SEI w-avg"]
            assert abs(row["auroc_ours"] - 100 * tin["auroc"]) < TOL
            assert abs(row["acc_ours"] - 100 * tin["accuracy"]) < TOL
        else:
            lee = results[
                (results["model"] == "ce")
                & (results["detector"] == "mahalanobis+pre")
                & (results["ood"] == "tinyimagenet-resize")
            ]
            assert len(lee) == 1 and lee["label"].iloc[0] == "Mahalanobis (eps=0.002)"
            t1 = read_csv(full.out, "table1").set_index("row")
            assert (
                abs(t1.loc["Mahalanobis", "imagenet_fix_ours"] - 100 * lee["auroc"].iloc[0]) < TOL
            )
            msp = direct[(direct["detector"] == "msp") & (direct["ood"] == "uniform")].iloc[0]
            base = read_csv(full.out, "table1").set_index("row").loc["Baseline"]
            assert abs(base["auroc_uniform_ours"] - 100 * msp["auroc"]) < TOL


def test_budget_records_the_runs(full):
    b = read_csv(full.out, "budget").set_index("model")
    assert list(b.index) == [*DEFAULT_METHODS, OPEN_SET]
    assert (b["status"] == "evaluated").all()
    tiny = Config.preset("tiny")
    assert (b["epochs_done"] == tiny.epochs).all() and (b["epochs_config"] == tiny.epochs).all()
    assert (b["seed"] == 0).all() and (b["device"] == "cpu").all()
    assert b["precision"].isin(["fp32", "bf16"]).all() and (b["train_seconds"] > 0).all()
    assert b.loc[OPEN_SET, "known_classes"] == "0,1,2,3,4,5"
    # trained with the tiny preset itself: no field differs from it
    assert read_csv(full.out, "preset_differences").empty
    assert "trained with the tiny preset exactly" in full.html


def test_preset_differences_are_listed_field_by_field():
    cfg = Config.preset(
        "small",
        method="mcl",
        epochs=100,
        batch_size=256,
        data_root="/somewhere",
        extra={"num_classes": 10},
    )
    diffs = {k: (v, w) for k, v, w in config_differences(cfg, "small")}
    assert diffs == {"epochs": (100, 15), "batch_size": (256, 128)}
    assert config_differences(Config.preset("small", method="ccm"), "small") == []


def test_data_caveats_come_from_the_readme(tmp_path):
    assert "no README.md" in data_caveats(str(tmp_path))[0]
    (tmp_path / "README.md").write_text(
        "# data\n\nCaveats, to state:\n- one\n  continued\n- two\n\nOther text.\n"
    )
    assert data_caveats(str(tmp_path)) == ["one continued", "two"]


def test_detector_table_runs_every_baseline_where_it_applies(full):
    det = read_csv(full.out, "detectors")
    results = read_csv(full.out, "results")
    models = [*DEFAULT_METHODS, OPEN_SET]
    assert len(det) == len(DETECTOR_ROWS) * len(models)
    assert list(dict.fromkeys(det["model"])) == models
    assert list(dict.fromkeys(det["detector"])) == [*BASELINES, "gaussians"]
    classifiers = {"ce", "rot", "mcl-ce"}  # mcl-ce: the auxiliary CE head (aux_ce)
    for _, r in det.iterrows():
        needs_logits = r["detector"] in ("msp", "energy", "odin", "vim")
        if needs_logits and r["model"] not in classifiers:
            assert r["status"] == "n/a (no classifier)", (r["detector"], r["model"])
            continue
        if r["ways"] == 8 and r["model"] not in ("mcl", "rot", "mcl-noaux", OPEN_SET, "mcl-ce"):
            assert r["status"] == "n/a (not scored with SEI)"
            continue
        assert r["status"] == "ours", (r["detector"], r["model"], r["status"])
        hit = results[
            (results["model"] == r["model"])
            & (results["detector"] == r["detector"])
            & (results["ways"] == r["ways"])
            & (results["aggregation"] == r["aggregation"])
            & (results["variant"] == "paper")
        ]
        assert set(hit["key"]) == {r["setting_key"]}
        for _, h in hit.iterrows():
            ours = r[f"auroc_{h['ood'].replace('-', '_')}"]
            assert abs(ours - 100 * h["auroc"]) < TOL
        # accuracy where the detector classifies (KNN does not)
        assert np.isnan(r["acc"]) == (r["detector"] == "knn")
        if r["detector"] == "gaussians":
            assert r["covariance"] in ("class", "tied") and "L2-normalised" in r["how"]
        if r["detector"].startswith("mahalanobis"):
            assert "tied covariance" in r["how"] and "raw penultimate features" in r["how"]
    # the open-set model is scored on its unknown classes only
    op = det[(det["model"] == OPEN_SET) & (det["status"] == "ours")]
    assert op["auroc_open_set"].notna().all() and op["auroc_tinyimagenet_resize"].isna().all()


class _FakeModel:
    """What reproduced_table reads of a ComparedModel: ok, status, the config, row()."""

    ok, status = True, "ok"

    def __init__(self, arch: str):
        self.checkpoint = type("C", (), {"config": Config.preset("tiny", arch=arch)})()

    def row(self, spec, ood):
        return {"accuracy": 0.9, "auroc": 0.8, "fpr95": 0.5}


def test_table1_gives_an_mcl_on_a_backbone_the_paper_did_not_use_its_own_row():
    t1 = reproduced_table("table1", {"mcl": _FakeModel("fastnet")}, ["tinyimagenet-resize"])
    t1 = t1.set_index("row")
    for paper in ("MCL + SEI (ResNet-18)", "MCL + SEI (ResNet-34)"):
        assert t1.loc[paper, "status"] == "not run: our MCL is a FastNet"
        assert np.isfinite(t1.loc[paper, "acc_paper"])  # the paper's numbers stay
    ours = t1.loc["MCL + SEI (FastNet)"]
    assert ours["status"] == "ours" and ours["acc_ours"] == 90.0
    assert np.isnan(ours["acc_paper"])  # nothing of the paper's to compare with
    r18 = reproduced_table("table1", {"mcl": _FakeModel("resnet18")}, ["tinyimagenet-resize"])
    r18 = r18.set_index("row")
    assert r18.loc["MCL + SEI (ResNet-18)", "status"] == "ours"
    assert "MCL + SEI (FastNet)" not in r18.index
