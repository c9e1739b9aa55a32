"""Tables in the house style, for reading in a notebook: the numbers of the figures.

- ``table_view``: a copy of a result table for the eye: human names (:mod:`mclviz.names`),
  metrics in percent with one decimal (differences in points, signed), SEI settings as
  "8-way w-avg", no column that holds nothing.
- ``headline_table``: an evaluation as the paper's Tables 1 and 4 print it: accuracy and
  AUROC per OOD set, one row per scoring setting.
- ``data_note``: one sentence saying which images a result was computed on (the notebooks
  use seeded subsets, so their numbers differ from the README's, computed on all of them).

The tables these take stay as they are: fractions in [0, 1] and code keys, for CSV files
and further computation.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..names import dataset_name, detector_name, method_name, mode_name, sei_name, variant_name

__all__ = ["data_note", "headline_table", "table_view"]

#: metric columns (fractions in [0, 1]) and their headers; shown in percent
_METRICS = {
    "accuracy": "accuracy",
    "auroc": "AUROC",
    "aupr_in": "AUPR-In",
    "aupr_out": "AUPR-Out",
    "fpr95": "FPR at 95% TPR",
    "acc_paper": "accuracy, paper",
    "acc_official": "accuracy, official code",
    "auroc_paper": "AUROC, paper",
    "auroc_official": "AUROC, official code",
    "knn_pretrained": "kNN, pretrained",
    "msc": "kNN, mean-shifted",
    "mcl_mahalanobis": "MCL Mahalanobis",
}
#: differences of two metrics: shown in points, with a sign
_DIFFS = {"acc_diff": "accuracy, paper - official", "auroc_diff": "AUROC, paper - official"}
#: other columns: header, and how a value is named
_COLUMNS = {
    "method": ("method", method_name),
    "detector": ("detector", detector_name),
    "ood": ("OOD set", dataset_name),
    "variant": ("variant", variant_name),
    "mode": ("mode", mode_name),
    "aggregation": ("aggregation", str),
    "ways": ("SEI views", str),
    "lam": ("lambda", None),
    "name": ("name", None),
}
#: internal columns a reader does not need
_HIDDEN = ("key", "label", "output")


def _is_empty(col: pd.Series) -> bool:
    return bool(col.isna().all())


def _percent(v, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{100 * float(v):+.1f}" if signed else f"{100 * float(v):.1f}"


def _plain(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return str(v)


def _sei_level(frame: pd.DataFrame) -> pd.DataFrame:
    """``ways`` and ``aggregation`` (columns) folded into one ``SEI`` column."""
    if not {"ways", "aggregation"} <= set(frame.columns):
        return frame
    pos = list(frame.columns).index("ways")
    sei = [sei_name(w, a) for w, a in zip(frame["ways"], frame["aggregation"], strict=True)]
    frame = frame.drop(columns=["ways", "aggregation"])
    frame.insert(min(pos, len(frame.columns)), "SEI", sei)
    return frame


def table_view(
    df: pd.DataFrame,
    *,
    percent: Iterable[str] = (),
    hide: Iterable[str] = (),
    index: bool = True,
) -> pd.DataFrame:
    """A copy of ``df`` for the eye, in the house style of every mclviz table.

    - Metric columns (``accuracy``, ``auroc``, ``aupr_in``, ``aupr_out``, ``fpr95``, the
      ``acc_*`` / ``auroc_*`` columns of :func:`~mclviz.plots.sei_table`, the one-class
      AUROCs, and ``percent``) in percent with one decimal, "(%)" in the header;
      ``*_diff`` columns in signed points ("+0.2", "-0.0": below 0.05 points).
    - Data sets, methods, detectors, variants and modes by their display names
      (:mod:`mclviz.names`); ``ways`` and ``aggregation`` as one "SEI" column ("no SEI",
      "8-way w-avg"), in the index too.
    - Columns holding nothing (all None / NaN), the internal ``key`` / ``label`` /
      ``output`` and ``hide`` are left out.

    Every value becomes text: keep ``df`` for computing and for CSV files.

    Args:
        df: a result table (fractions and code keys), e.g. ``evaluate(...)``,
            ``sei_table(...)``, ``RetrainResult.table()``, ``one_class_table(...)``.
        percent: more columns holding fractions to show in percent.
        hide: more columns to leave out.
        index: keep ``df``'s index (named levels become columns of the view's index);
            False drops it.

    >>> view = table_view(pd.DataFrame({"ood": ["gaussian"], "auroc": [0.74875],
    ...                                 "tau": [None]}), index=False)
    >>> view.to_dict("records")
    [{'OOD set': 'Gaussian noise', 'AUROC (%)': '74.9'}]
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    frame = df.copy()
    names = [n for n in frame.index.names if n is not None]
    if index and names:
        frame = frame.reset_index()
    elif not index or not names:
        frame = frame.reset_index(drop=True)
    hidden = set(_HIDDEN) | set(hide)
    frame = frame[[c for c in frame.columns if c not in hidden and not _is_empty(frame[c])]]
    frame = _sei_level(frame)
    extra = set(percent)
    out = {}
    for col in frame.columns:
        values = frame[col]
        if col in _METRICS or col in extra:
            out[f"{_METRICS.get(col, col)} (%)"] = [_percent(v) for v in values]
        elif col in _DIFFS:
            out[f"{_DIFFS[col]} (points)"] = [_percent(v, signed=True) for v in values]
        elif col in _COLUMNS:
            header, namer = _COLUMNS[col]
            out[header] = [_plain(v) if namer is None else namer(v) for v in values]
        else:
            out[col] = [_plain(v) for v in values]
    view = pd.DataFrame(out)
    if index and names:
        keys = [c for c in view.columns if c in _index_headers(names)]
        if keys:
            view = view.set_index(keys)
    return view


def _index_headers(names: list[str]) -> set[str]:
    """The view's headers of the index levels ``names`` (``ways`` + ``aggregation`` -> SEI)."""
    out = {"SEI"} if {"ways", "aggregation"} <= set(names) else set()
    for n in names:
        if n in _COLUMNS:
            out.add(_COLUMNS[n][0])
        elif n not in ("ways", "aggregation"):
            out.add(n)
    return out


def headline_table(table: pd.DataFrame) -> pd.DataFrame:
    """An evaluation as the paper's Tables 1 and 4: one row per scoring setting (detector,
    SEI, variant), accuracy then AUROC per OOD set, in percent with one decimal.

    Args:
        table: ``evaluate(...)`` (one row per detector and OOD set).
    """
    missing = [c for c in ("detector", "ways", "aggregation", "variant", "ood") if c not in table]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; pass the table of evaluate(...)")
    keys = ["detector", "ways", "aggregation", "variant"]
    if table["method"].nunique() > 1:
        keys.insert(0, "method")
    wide = table.pivot_table(index=keys, columns="ood", values="auroc", sort=False)
    acc = table.groupby(keys, sort=False)["accuracy"].first()
    rows = wide.reset_index()
    rows.insert(len(keys), "accuracy", acc.to_numpy())
    view = table_view(rows, percent=list(wide.columns), index=False)
    oods = {f"{o} (%)": f"AUROC {dataset_name(o)} (%)" for o in wide.columns}
    view = view.rename(columns=oods)
    return view.set_index([c for c in view.columns if not c.endswith("(%)")])


#: the images the README's numbers are computed on: all of CIFAR-10 and 10,000 per OOD set
_README_IMAGES = (50_000, 10_000, 10_000)


def data_note(data, *, train: bool = True, width: int | None = 88) -> str:
    """Which images a result was computed on, in one sentence, and whether these are the
    README's (all 50,000 training, 10,000 test, 10,000 per OOD set) or fewer.

    Args:
        data: an :class:`mclviz.evaluation.EvalData` (``train``, ``test``, ``ood``).
        train: the training images count (they fit the detectors); False for a result
            that uses none (a projection of the test and OOD images).
        width: lines of at most this many characters, broken at spaces, for ``print``
            (None: one line).

    >>> from types import SimpleNamespace as NS
    >>> data_note(NS(train=(None, range(5000)), test=(None, range(2000)), ood={}))[:48]
    '5,000 training images (for fitting), 2,000 test '
    """
    n_train, n_test = len(data.train[1]), len(data.test[1])
    n_ood = [len(x) for x in data.ood.values()]
    oods = ", ".join(f"{len(x):,} {dataset_name(k)}" for k, x in data.ood.items())
    text = (f"{n_train:,} training images (for fitting), " if train else "") + (
        f"{n_test:,} test images" + (f"; OOD: {oods}" if oods else "")
    )
    train_all, test_all, ood_all = _README_IMAGES
    if (
        (n_train >= train_all or not train)
        and n_test >= test_all
        and all(n >= ood_all for n in n_ood)
    ):
        text += ": every image, as in the README."
    else:
        every = f"{train_all:,} training, " if train else ""
        text += (
            ". These are seeded subsets, so the numbers differ from the README's, which "
            f"uses every image ({every}{test_all:,} test, {ood_all:,} per OOD set)."
        )
    return textwrap.fill(text, width) if width else text
