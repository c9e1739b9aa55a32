"""mclviz.plots.tables: result tables for the eye (percent with one decimal, human names,
no empty column) and the note on the images used."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from plot_inputs import sei_frame

from mclviz.plots import data_note, headline_table, sei_table, table_view


def test_table_view_percent_one_decimal_and_signed_differences():
    t = sei_table(sei_frame(0), ood="svhn")
    t.loc[t.index[0], "auroc_diff"] = -1.70625e-04  # printed "-1.706250e-04" before
    view = table_view(t)
    assert (
        view.index.name == "SEI" and view.index[0] == "no SEI" and view.index[-1] == "8-way w-avg"
    )
    assert view.loc["no SEI", "AUROC, paper - official (points)"] == "-0.0"
    assert (
        view.loc["4-way max", "accuracy, paper (%)"]
        == f"{100 * t.loc[(4, 'max'), 'acc_paper']:.1f}"
    )
    for col in view.columns:
        if col.endswith("(points)"):
            assert all(v[0] in "+-" for v in view[col])
        else:
            assert all(len(v.split(".")[1]) == 1 for v in view[col])  # one decimal


def test_table_view_names_and_drops_empty_columns():
    df = pd.DataFrame(
        {
            "mode": ["model", "model"],
            "method": ["mcl-noaux", "mcl-noaux"],
            "tau": [None, None],
            "alpha": [None, None],
            "ways": [1, 8],
            "aggregation": ["none", "w-avg"],
            "accuracy": [0.6437, 0.6558],
            "ood": ["tinyimagenet-resize", "gaussian"],
            "auroc": [0.74875, 0.2766],
            "key": ["gaussians/views=1", "gaussians/views=8"],
        }
    )
    view = table_view(df, index=False)
    assert list(view.columns) == ["mode", "method", "SEI", "accuracy (%)", "OOD set", "AUROC (%)"]
    assert view["OOD set"].tolist() == ["Tiny ImageNet (resize)", "Gaussian noise"]
    assert view["method"].tolist() == ["MCL w/o aux"] * 2
    assert view["AUROC (%)"].tolist() == ["74.9", "27.7"]  # as the figures say it
    assert view["SEI"].tolist() == ["no SEI", "8-way w-avg"]
    assert view["mode"].tolist() == ["as trained"] * 2
    with pytest.raises(TypeError, match="DataFrame"):
        table_view([1, 2])


def test_headline_table_one_row_per_setting_auroc_per_ood_set():
    df = sei_frame(1)
    view = headline_table(df)
    assert list(view.columns) == ["accuracy (%)", "AUROC CIFAR-100 (%)", "AUROC SVHN (%)"]
    assert len(view) == 14 and view.index.names == ["detector", "SEI", "variant"]
    row = df.query("ways == 8 and aggregation == 'w-avg' and variant == 'paper'")
    auroc = row.set_index("ood")["auroc"]
    got = view.loc[("sei", "8-way w-avg", "paper")]
    assert got["AUROC SVHN (%)"] == f"{100 * auroc['svhn']:.1f}"


def test_data_note_says_which_images_and_why_numbers_differ():
    sub = SimpleNamespace(
        train=(None, range(5000)), test=(None, range(2000)), ood={"gaussian": range(2000)}
    )
    note = data_note(sub, width=None)
    assert max(len(ln) for ln in data_note(sub).splitlines()) <= 88
    assert note.startswith("5,000 training images (for fitting), 2,000 test images; OOD: 2,000")
    assert "Gaussian noise" in note and "differ from the README" in note
    full = SimpleNamespace(
        train=(None, range(50000)), test=(None, range(10000)), ood={"gaussian": range(10000)}
    )
    assert data_note(full, width=None).endswith("every image, as in the README.")
