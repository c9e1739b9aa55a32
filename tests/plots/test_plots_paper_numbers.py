"""mclviz.paper_numbers, as re-exported by mclviz.plots (``comparison_table``): the
published numbers and our numbers set beside them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mclviz.paper_numbers import TABLES, paper_table
from mclviz.plots import comparison_table


@pytest.mark.parametrize(
    ("table", "row", "column", "value"),
    [
        ("table4", "MCL + 8-way SEI w-avg", "acc", 96.43),
        ("table4", "MCL + 8-way SEI w-avg", "auroc", 94.06),
        ("table4", "MCL + 4-way SEI max", "acc", 95.97),
        ("table4", "MCL + w/o SEI", "auroc", 91.12),
        ("table1", "Baseline", "svhn", 89.9),
        ("table1", "Mahalanobis", "svhn", 99.1),
        ("table1", "MCL + SEI (ResNet-34)", "acc", 96.4),
        ("table1", "MCL + SEI (ResNet-34)", "cifar100", 94.0),
        ("table1", "MCL + SEI (ResNet-18)", "lsun_fix", 96.0),
        ("table1", "CSI + SupCLR + Ensemble", "imagenet_fix", 94.0),
        ("table2", "MCL", "imagenet_fix", 93.6),
        ("table3", "MCL (w/o SPA, w/o aux)", "acc", 91.41),
        ("table3", "MCL (w/o aux)", "auroc", 89.49),
        ("table5", "MCL + w/o Aux", "auroc", 90.49),  # as printed: differs from Table 3
        ("table5", "MCL + w/o Aux + SEI w-avg", "auroc", 71.17),
        ("table5", "MCL + DA + SEI w-avg", "acc", 94.70),
    ],
)
def test_paper_numbers_spot_values(table, row, column, value):
    assert paper_table(table).loc[row, column] == value


def test_paper_tables_are_well_formed():
    expected_rows = {"table1": 11, "table2": 3, "table3": 7, "table4": 7, "table5": 6}
    for name, spec in TABLES.items():
        df = paper_table(name)
        assert len(df) == expected_rows[name]
        assert df.index.is_unique
        assert all(len(r) == len(spec["columns"]) for r in spec["rows"])
        for col in ("acc", "auroc", "svhn", "lsun_fix", "imagenet_fix", "cifar100"):
            if col in df:
                v = df[col].dropna()
                assert v.dtype == np.float64 and ((v > 50) & (v < 100)).all()
    t1 = paper_table("table1")
    assert np.isnan(t1.loc["Outlier Exposure", "acc"])  # "-" in the paper
    assert t1.loc["Outlier Exposure", "cifar100"] == 93.3
    # the paper's own cross-references
    t4, t5, t3 = paper_table("table4"), paper_table("table5"), paper_table("table3")
    assert (
        t4.loc["MCL + w/o SEI", ["acc", "auroc"]].tolist()
        == t3.loc["MCL", ["acc", "auroc"]].tolist()
    )
    assert t5.loc["MCL + Aux + SEI w-avg", ["acc", "auroc"]].tolist() == [96.43, 94.06]
    assert paper_table("table2").loc["MCL + SEI"].drop("backbone").tolist() == (
        t1.loc["MCL + SEI (ResNet-18)"].drop("backbone").tolist()
    )
    with pytest.raises(ValueError, match="table6"):
        paper_table("table6")


def test_comparison_table_fractions_differences_and_missing_rows():
    ours = pd.DataFrame(
        {
            "row": ["mcl", "MCL (w/o aux)", "my new row"],
            "acc": [0.9403, 0.95, 0.5],
            "auroc": [0.90, 0.8949, 0.7],
        }
    )
    out = comparison_table(ours, "table3")
    paper = paper_table("table3")
    assert list(out.columns) == [
        "acc_ours",
        "acc_paper",
        "acc_diff",
        "auroc_ours",
        "auroc_paper",
        "auroc_diff",
    ]
    assert list(out.index) == [*paper.index, "my new row"]  # paper order, then our extra row
    assert out.loc["MCL", "acc_ours"] == pytest.approx(94.03)  # matched case-insensitively
    assert out.loc["MCL", "auroc_diff"] == pytest.approx(90.0 - 91.12)
    assert out.loc["MCL (w/o aux)", "acc_diff"] == pytest.approx(95.0 - 94.35)
    assert out.loc["MCL (w/o aux)", "auroc_diff"] == pytest.approx(0.0, abs=1e-9)
    # missing on our side: paper kept, ours NaN; missing on the paper's side: the reverse
    assert np.isnan(out.loc["SimCLR (CE fine-tuned)", "acc_ours"])
    assert out.loc["SimCLR (CE fine-tuned)", "acc_paper"] == 93.88
    assert np.isnan(out.loc["SimCLR (CE fine-tuned)", "acc_diff"])
    assert out.loc["my new row", "acc_ours"] == pytest.approx(50.0)
    assert np.isnan(out.loc["my new row", "acc_paper"])
    # percent input is taken as is
    pct = comparison_table(pd.DataFrame({"row": ["MCL"], "acc": [94.5], "auroc": [92.0]}), "table3")
    assert pct.loc["MCL", "acc_diff"] == pytest.approx(94.5 - 94.03)


def test_comparison_table_table1_columns_and_errors():
    ours = pd.DataFrame({"row": ["Baseline"], "acc": [0.936], "svhn": [0.9], "cifar100": [0.864]})
    out = comparison_table(ours, paper_table="table1")
    assert [c for c in out.columns if c.endswith("_diff")] == [
        "acc_diff",
        "svhn_diff",
        "cifar100_diff",
    ]
    assert out.loc["Baseline", "svhn_diff"] == pytest.approx(90.0 - 89.9)
    assert out.loc["Baseline", "cifar100_diff"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="row"):
        comparison_table(pd.DataFrame({"name": ["MCL"], "acc": [0.9]}))
    with pytest.raises(ValueError, match="in common"):
        comparison_table(pd.DataFrame({"row": ["MCL"], "svhn": [0.9]}), "table3")
    with pytest.raises(ValueError, match="more than once"):
        comparison_table(pd.DataFrame({"row": ["MCL", "mcl"], "acc": [0.9, 0.8]}))
