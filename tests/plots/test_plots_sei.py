"""mclviz.plots.sei: the SEI ablation table and figure (paper Tables 4, 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plot_inputs import SETTINGS, sei_frame
from text_layout import assert_no_text_overlap

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
    assert [tr.name for tr in fig.data] == ["paper", "official code"] * 2
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
        # a dot plot in percent: one row per setting, markers only (no value text that
        # could collide where two variants are a few hundredths apart)
        assert tr.type == "scatter" and tr.mode == "markers" and tr.text is None
        assert list(tr.y) == labels
        np.testing.assert_allclose(tr.x, 100 * t[col].to_numpy())
        assert "%{x:.1f}%" in tr.hovertemplate
    assert "SVHN" in fig.layout.title.text  # the set's display name, not its key
    assert fig.layout.width is None and fig.layout.meta["export_size"][0] == 900
    assert {a.font.size for a in fig.layout.annotations} == {13}


def test_sei_figure_for_print_has_no_colliding_labels():
    for df, ood in ((sei_frame(4), "svhn"), (sei_frame(5, methods=("MCL w/o aux", "mcl")), "svhn")):
        fig = sei_figure(df, ood=ood, backend="matplotlib")
        assert_no_text_overlap(fig)
        ax = fig.axes[0]
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert rows[0].endswith("no SEI") and len(rows) == len(sei_table(df, ood=ood))
        texts = fig.findobj(match=lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
        assert {t.get_fontsize() for t in texts if t.get_text()} == {8.0}  # one font size
        assert fig.axes[0].get_xlabel() == "accuracy (%)"
        lo, hi = fig.axes[1].get_xlim()
        assert 0 < lo < hi <= 100  # percent, around the data
    assert "MCL w/o aux / no SEI" in rows
    with pytest.raises(ValueError, match="backend"):
        sei_figure(sei_frame(4), ood="svhn", backend="bokeh")
