"""Published numbers of Cho, Seol and Lee (IJCAI 2021), Tables 1-5, and a comparison helper.

The tables are plain data (tuples of rows, percentages exactly as printed; a "-" in the
paper is ``None`` here). ``paper_table(name)`` turns one into a DataFrame indexed by row
name, and ``comparison_table(ours, ...)`` puts a run's numbers next to the paper's.

Column names: ``acc`` is the CIFAR-10 test accuracy; ``svhn``, ``lsun_fix``,
``imagenet_fix`` and ``cifar100`` are AUROCs with that OOD set (LSUN-Fix and
ImageNet-Fix as in Tack et al., 2020); ``auroc`` in Tables 3-5 is the AUROC with
CIFAR-100 as OOD (section 4.2). Everything is in percent.

Transcription notes (checked against ``../shared/paper/mcl-paper.md``):

- Table 1 prints "MCL + SEI (ours)" twice: once for ResNet-18 (the double dagger) and
  once for ResNet-34. The rows are named "MCL + SEI (ResNet-18)" and
  "MCL + SEI (ResNet-34)"; ``backbone`` records the network of every row.
- Table 5 prints 90.49 AUROC for "MCL + w/o Aux" without SEI, while Table 3 prints 89.49
  for the same accuracy (94.35, "MCL (w/o aux)"). Both are kept as printed.
- Table 5 does not say how many SEI views its "w-avg" rows use; its "MCL + Aux" w-avg
  row equals Table 4's 8-way w-avg row (96.43 / 94.06), so ``ways`` is 8 there
  (an inference, not a printed value). ``ways`` is 1 for rows without SEI.

>>> paper_table("table4").loc["MCL + 8-way SEI w-avg", ["acc", "auroc"]].tolist()
[96.43, 94.06]
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "TABLE1",
    "TABLE2",
    "TABLE3",
    "TABLE4",
    "TABLE5",
    "TABLES",
    "comparison_table",
    "paper_table",
]

TABLE1 = {
    "caption": "Table 1: Test accuracy of in-domain classification and AUROC of OOD data for "
    "each model trained on CIFAR-10 dataset.",
    "columns": ("row", "backbone", "acc", "svhn", "lsun_fix", "imagenet_fix", "cifar100"),
    "rows": (
        ("Baseline", "resnet34", 93.6, 89.9, 84.3, 88.0, 86.4),
        ("ODIN", "resnet34", 93.6, 85.8, 83.2, 87.7, 85.8),  # * post-processing
        ("Mahalanobis", "resnet34", 94.1, 99.1, 87.9, 90.9, 88.2),  # * post-processing
        ("Auxiliary Rotation", "resnet34", 94.3, 97.3, 94.5, 94.7, 90.7),
        ("Outlier Exposure", "resnet34", None, 98.4, None, None, 93.3),  # dagger: OOD data
        ("SupCLR", "resnet18", 93.8, 97.3, 91.6, 90.5, 88.6),
        ("CSI + SupCLR", "resnet18", 94.8, 96.5, 92.1, 92.4, 90.5),
        ("CSI + SupCLR + Ensemble", "resnet18", 96.1, 97.9, 93.5, 94.0, 92.2),
        ("Auxiliary Rotation + SEI", "resnet34", 95.8, 98.4, 95.7, 95.8, 92.3),
        ("MCL + SEI (ResNet-18)", "resnet18", 95.9, 98.9, 96.0, 95.9, 93.1),
        ("MCL + SEI (ResNet-34)", "resnet34", 96.4, 99.3, 96.3, 96.5, 94.0),
    ),
}

TABLE2 = {
    "caption": "Table 2: Performance comparison between MCL and SupCLR. Models are trained on "
    "CIFAR-10 dataset with ResNet-18.",
    "columns": ("row", "backbone", "acc", "svhn", "lsun_fix", "imagenet_fix", "cifar100"),
    "rows": (
        ("SupCLR", "resnet18", 93.8, 97.3, 91.6, 90.5, 88.6),
        ("MCL", "resnet18", 93.1, 97.9, 93.8, 93.6, 90.8),
        ("MCL + SEI", "resnet18", 95.9, 98.9, 96.0, 95.9, 93.1),
    ),
}

TABLE3 = {
    "caption": "Table 3: Ablation studies for each component in MCL (CIFAR-10 IND, CIFAR-100 OOD).",
    "columns": ("row", "acc", "auroc"),
    "rows": (
        ("Baseline (w/o NT-Xent)", 93.61, 86.40),
        ("SimCLR (CE fine-tuned)", 93.88, 87.56),
        ("SimCLR (joint fine-tuned)", 93.91, 88.51),
        ("MCL (w/o SPA, w/o aux)", 91.41, 85.03),
        ("MCL (w/o aux)", 94.35, 89.49),
        ("MCL (CE fine-tuned)", 94.22, 88.89),
        ("MCL", 94.03, 91.12),
    ),
}

TABLE4 = {
    "caption": "Table 4: Ablation studies for SEI. MCL is trained with additional 4-way "
    "rotations auxiliary task (CIFAR-100 OOD).",
    "columns": ("row", "ways", "aggregation", "acc", "auroc"),
    "rows": (
        ("MCL + w/o SEI", 1, "none", 94.03, 91.12),
        ("MCL + 4-way SEI avg", 4, "avg", 94.68, 93.20),
        ("MCL + 4-way SEI max", 4, "max", 95.97, 92.30),
        ("MCL + 4-way SEI w-avg", 4, "w-avg", 96.12, 93.29),
        ("MCL + 8-way SEI avg", 8, "avg", 94.74, 93.37),
        ("MCL + 8-way SEI max", 8, "max", 96.40, 92.00),
        ("MCL + 8-way SEI w-avg", 8, "w-avg", 96.43, 94.06),
    ),
}

TABLE5 = {
    "caption": "Table 5: Ablation studies for SEI. Data augmentation is abbreviated to DA "
    "(CIFAR-100 OOD).",
    "columns": ("row", "model", "ways", "aggregation", "acc", "auroc"),
    "rows": (
        ("MCL + w/o Aux", "w/o Aux", 1, "none", 94.35, 90.49),
        ("MCL + w/o Aux + SEI w-avg", "w/o Aux", 8, "w-avg", 83.96, 71.17),
        ("MCL + DA", "DA", 1, "none", 92.55, 90.07),
        ("MCL + DA + SEI w-avg", "DA", 8, "w-avg", 94.70, 92.08),
        ("MCL + Aux", "Aux", 1, "none", 94.03, 91.12),
        ("MCL + Aux + SEI w-avg", "Aux", 8, "w-avg", 96.43, 94.06),
    ),
}

TABLES = {
    "table1": TABLE1,
    "table2": TABLE2,
    "table3": TABLE3,
    "table4": TABLE4,
    "table5": TABLE5,
}

_NUMERIC = ("acc", "svhn", "lsun_fix", "imagenet_fix", "cifar100", "auroc")


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's tables as a DataFrame indexed by row name (percent, NaN for "-").

    Args:
        name: "table1" ... "table5".

    Returns:
        DataFrame with the table's columns (see the module docstring); a copy, free to edit.
    """
    return _frame(name)


def _frame(name: str) -> pd.DataFrame:
    key = str(name).lower().replace(" ", "")
    if key not in TABLES:
        raise ValueError(
            f"paper_table={name!r} is not a table of the paper; use one of {sorted(TABLES)}"
        )
    spec = TABLES[key]
    df = pd.DataFrame(list(spec["rows"]), columns=list(spec["columns"]))
    for col in df.columns:
        if col in _NUMERIC:
            df[col] = df[col].astype(np.float64)
    return df.set_index("row")


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def _as_percent(values: pd.Series) -> pd.Series:
    """Fractions (every finite value within [0, 1]) times 100; percentages unchanged."""
    v = pd.to_numeric(values, errors="raise").astype(np.float64)
    finite = v[np.isfinite(v)]
    if len(finite) and finite.abs().max() <= 1.0:
        return v * 100.0
    return v


def comparison_table(ours: pd.DataFrame, paper_table: str = "table3") -> pd.DataFrame:
    """Our numbers next to the paper's, with the difference, per shared column.

    Rows are matched by name (case and repeated spaces ignored); the result keeps the
    paper's spelling and order, then our extra rows in our order. A row present on one
    side only is kept with NaN on the other side. Every metric column of ``ours`` that
    the paper table also has is compared (``acc`` and ``auroc`` for Tables 3-5; ``acc``,
    ``svhn``, ``lsun_fix``, ``imagenet_fix``, ``cifar100`` for Tables 1-2).

    Args:
        ours: DataFrame with a ``row`` column (names as in the paper table, see
            ``paper_table(...).index``) and metric columns. A column whose values all lie
            in [0, 1] is read as fractions and converted to percent; otherwise percent.
        paper_table: "table1" ... "table5".

    Returns:
        DataFrame indexed by ``row`` with, for each compared metric m, the columns
        ``m_ours``, ``m_paper`` and ``m_diff`` (= ours - paper, percentage points).

    >>> ours = pd.DataFrame({"row": ["MCL"], "acc": [0.9403], "auroc": [0.9]})
    >>> comparison_table(ours, "table3").loc["MCL", "auroc_diff"].round(2)
    np.float64(-1.12)
    """
    paper = _frame(paper_table)
    if not isinstance(ours, pd.DataFrame):
        raise TypeError(
            f"ours must be a pandas DataFrame with a 'row' column, got {type(ours).__name__}"
        )
    if "row" not in ours.columns:
        raise ValueError(
            f"ours has columns {list(ours.columns)}; it needs a 'row' column naming the paper's "
            f"rows, e.g. {list(paper.index[:3])}"
        )
    metrics = [c for c in ours.columns if c != "row" and c in paper.columns and c in _NUMERIC]
    if not metrics:
        raise ValueError(
            f"ours has no metric column in common with {paper_table}: ours has "
            f"{[c for c in ours.columns if c != 'row']}, the paper has "
            f"{[c for c in paper.columns if c in _NUMERIC]}"
        )
    keys = ours["row"].map(_norm)
    dup = keys[keys.duplicated()]
    if len(dup):
        raise ValueError(
            f"ours names row {ours['row'][dup.index[0]]!r} more than once; keep one row per name"
        )

    paper_keys = {_norm(r): r for r in paper.index}
    names = list(paper.index) + [
        r for r, k in zip(ours["row"], keys, strict=True) if k not in paper_keys
    ]
    ours_by_key = ours.assign(_key=keys.to_numpy()).set_index("_key")

    out = pd.DataFrame(index=pd.Index(names, name="row"))
    for m in metrics:
        ours_pct = _as_percent(ours_by_key[m])
        col_ours = [ours_pct.get(_norm(n), np.nan) for n in names]
        col_paper = [paper[m].get(n, np.nan) for n in names]
        out[f"{m}_ours"] = np.asarray(col_ours, dtype=np.float64)
        out[f"{m}_paper"] = np.asarray(col_paper, dtype=np.float64)
        out[f"{m}_diff"] = out[f"{m}_ours"] - out[f"{m}_paper"]
    return out
