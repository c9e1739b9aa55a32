"""mclviz.report.claims: the bootstrap verdicts, and each claim of a real run against its numbers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from report_run import N_BOOT, TEST_SUBSET, TOL, read_csv
from sklearn.metrics import roc_auc_score

from mclviz.config import Config
from mclviz.report import CLAIM_IDS
from mclviz.report.claims import (
    CLAIMS,
    auroc,
    auroc_diff_ci,
    unequal_recipe,
    unequal_training,
    unequal_views,
    verdict,
)
from mclviz.report.compared import ComparedModel


def _verdict(low: float, high: float) -> str:  # the rule the report states
    return "supported" if low > 0 else "not supported" if high < 0 else "inconclusive"


def test_each_claim_verdict_follows_its_numbers(full):
    claims = read_csv(full.out, "claims")
    results = read_csv(full.out, "results")
    assert list(dict.fromkeys(claims["claim"])) == list(CLAIM_IDS)
    tested = claims[claims["verdict"] != "not tested"]
    assert len(tested) == 9 + 2 + 1 + 1 + 1  # every comparison ran: all checkpoints exist
    a = tested[tested["claim"] == "a"].set_index("b")
    assert a.loc["ODIN", "key_b"] == "ce/odin/1/none/paper"
    assert a.loc["Mahalanobis", "key_b"] == "ce/mahalanobis+pre/1/none/paper"
    assert a.loc["Mahalanobis (Lee, no pre-processing)", "key_b"] == "ce/mahalanobis/1/none/paper"
    assert a.loc["Class Gaussians on CE features", "key_b"] == "ce/gaussians/1/none/paper"
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


@pytest.mark.parametrize("n_in,n_out", [(5, 7), (40, 40), (300, 120)])
def test_auroc_is_sklearns_with_ties(n_in, n_out):
    rng = np.random.default_rng(n_in)
    s_in = rng.integers(0, 6, n_in).astype(float)  # many ties
    s_out = rng.integers(-2, 4, n_out).astype(float)
    expect = roc_auc_score(np.r_[np.ones(n_in), np.zeros(n_out)], np.r_[s_in, s_out])
    assert abs(auroc(s_in, s_out) - expect) < 1e-12


def test_diff_ci_zero_for_identical_scores_and_positive_for_a_clear_gap():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(1, 1, 200), rng.normal(0, 1, 150)
    assert auroc_diff_ci((s_in, s_out), (s_in, s_out), n_boot=100, seed=0) == (0.0, 0.0)
    good = (rng.normal(3, 1, 200), rng.normal(0, 1, 150))
    low, high = auroc_diff_ci(good, (s_in, s_out), n_boot=200, seed=0)
    assert 0 < low <= high
    assert verdict(low, high) == "supported"
    assert verdict(-0.1, 0.2) == "inconclusive" and verdict(-0.3, -0.1) == "not supported"


def test_claims_note_unequal_training():
    def model(epoch, epochs=15):
        cfg = SimpleNamespace(epochs=epochs, views_per_image=2)
        return ComparedModel("x", checkpoint=SimpleNamespace(epoch=epoch, config=cfg))

    comparisons = CLAIMS["b"].comparisons  # mcl against supclr
    same = {"mcl": model(15), "supclr": model(15)}
    assert unequal_training(same, comparisons) == ""
    short = {"mcl": model(15), "supclr": model(6)}
    assert unequal_training(short, comparisons) == (
        "unequal training: mcl 15 of 15 epochs, supclr 6 of 15 epochs"
    )
    # equally short is still short of the schedule, and said so
    both = {"mcl": model(6), "supclr": model(6)}
    assert unequal_training(both, comparisons) == (
        "trained short of the schedule: mcl 6 of 15 epochs, supclr 6 of 15 epochs"
    )


def test_claims_note_views_per_image():
    def model(method):
        cfg = Config.preset("tiny", method=method)
        return ComparedModel(method, checkpoint=SimpleNamespace(epoch=1, config=cfg))

    comparisons = CLAIMS["b"].comparisons  # mcl against supclr
    assert unequal_views({"mcl": model("mcl"), "supclr": model("supclr")}, comparisons) == (
        "views per training image differ: mcl 8, supclr 2"
    )
    same = {"mcl": model("mcl-noaux"), "supclr": model("supclr")}
    assert unequal_views(same, comparisons) == ""
    assert [Config.preset("tiny", method=m).views_per_image for m in ("ce", "rot", "simclr")] == [
        1,
        4,
        2,
    ]


def test_claims_note_different_networks_and_wall_times():
    def model(arch, width, seconds, epochs=10):
        cfg = SimpleNamespace(arch=arch, width=width, epochs=epochs, views_per_image=2)
        ck = SimpleNamespace(epoch=epochs, config=cfg, metrics={"seconds": seconds})
        return ComparedModel("x", checkpoint=ck)

    comparisons = CLAIMS["b"].comparisons  # mcl against supclr
    same = {"mcl": model("fastnet", 1.0, 2400), "supclr": model("fastnet", 1.0, 2300)}
    assert unequal_recipe(same, comparisons) == ""
    mixed = {"mcl": model("fastnet", 1.0, 2400), "supclr": model("resnet18", 0.25, 2280, 15)}
    assert unequal_recipe(mixed, comparisons) == (
        "networks differ: mcl fastnet x1 (10 epochs, 40 min), "
        "supclr resnet18 x0.25 (15 epochs, 38 min)"
    )
    slow = {"mcl": model("fastnet", 1.0, 4000), "supclr": model("fastnet", 1.0, 2400)}
    assert unequal_recipe(slow, comparisons).startswith("wall times differ: mcl fastnet x1")
