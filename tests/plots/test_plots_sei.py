"""mclviz.plots.sei: the SEI ablation table and figure (paper Tables 4, 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plot_inputs import SETTINGS, sei_frame

from mclviz.plots import sei_figure, sei_table


def test_sei_table_values_equal_input_rows():
    df = sei_frame()
    t = sei_table(df, ood="cifar100")
    assert list(t.index) == SETTINGS
    assert t.index.names == ["ways", "aggregation"]
    assert list(t.columns) == [
        "acc_paper",
        "acc_official",
        "acc_diff",
        "auroc_paper",
        "auroc_official",
        "auroc_diff",
    ]
    for _, r in df[df["ood"] == "cifar100"].iterrows():
        key = (r["ways"], r["aggregation"])
        assert t.loc[key, f"acc_{r['variant']}"] == r["accuracy"]
        assert t.loc[key, f"auroc_{r['variant']}"] == r["auroc"]
    np.testing.assert_allclose(t["acc_diff"], t["acc_paper"] - t["acc_official"])
    np.testing.assert_allclose(t["auroc_diff"], t["auroc_paper"] - t["auroc_official"])

    with pytest.raises(ValueError, match="several OOD sets"):
        sei_table(df)
    with pytest.raises(ValueError, match="imagenet"):
        sei_table(df, ood="imagenet")
    single = sei_table(df[df["ood"] == "svhn"])  # ood=None with one set
    assert (
        single.loc[(8, "w-avg"), "auroc_paper"]
        == df.query(
            "ood == 'svhn' and variant == 'paper' and ways == 8 and aggregation == 'w-avg'"
        )["auroc"].item()
    )
    # one variant only: the other side NaN
    only_paper = sei_table(df[df["variant"] == "paper"], ood="svhn")
    assert only_paper["acc_official"].isna().all() and only_paper["acc_diff"].isna().all()
    with pytest.raises(ValueError, match="same setting"):
        sei_table(pd.concat([df, df.iloc[:1]]), ood="cifar100")
    with pytest.raises(ValueError, match="aggregation"):
        sei_table(df.assign(aggregation="mean"), ood="cifar100")
    with pytest.raises(ValueError, match="lacks the columns"):
        sei_table(df.drop(columns="fpr95"))


def test_sei_table_several_methods_and_figure():
    df = sei_frame(1, oods=("cifar100",), methods=("mcl", "rotation"))
    t = sei_table(df)
    assert t.index.names == ["method", "ways", "aggregation"]
    assert list(t.index) == [(m, *s) for m in ("mcl", "rotation") for s in SETTINGS]

    fig = sei_figure(sei_frame(2), ood="svhn")
    t = sei_table(sei_frame(2), ood="svhn")
    assert [tr.name for tr in fig.data] == ["paper", "official", "paper", "official"]
    assert [tr.showlegend for tr in fig.data] == [True, True, False, False]
    labels = [
        "no SEI",
        "4-way avg",
        "4-way max",
        "4-way w-avg",
        "8-way avg",
        "8-way max",
        "8-way w-avg",
    ]
    for tr, col in zip(
        fig.data, ["acc_paper", "acc_official", "auroc_paper", "auroc_official"], strict=True
    ):
        assert tr.type == "bar" and list(tr.x) == labels
        np.testing.assert_array_equal(tr.y, t[col].to_numpy())
    assert fig.layout.barmode == "group"
    assert "svhn" in fig.layout.title.text
