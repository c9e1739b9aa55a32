"""The mclviz.plots package: the names it re-exports and its docstring examples."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

from mclviz import plots

PUBLIC_NAMES = [
    "COLUMN_WIDTH",
    "FONT_PT",
    "FONT_PX",
    "OOD_COLOR",
    "PALETTE",
    "PAPER_RC",
    "PLOTLY_CONFIG",
    "TEXT_WIDTH",
    "class_name",
    "comparison_table",
    "data_note",
    "drawn_range",
    "export",
    "export_many",
    "failure_cases",
    "failure_gallery",
    "headline_table",
    "house_style",
    "nearest_neighbours",
    "one_class_figure",
    "paper_rc",
    "plotly_template",
    "project",
    "projection_figure",
    "score_distribution",
    "sei_figure",
    "sei_table",
    "table_view",
    "text_width",
    "wrap_label",
]


def test_public_names_are_reexported():
    assert plots.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(plots, name) is not None
    # the module plots.export never shadows the function of the same name
    assert callable(plots.export) and plots.export.__module__ == "mclviz.plots.export"


def test_docstring_examples_run():
    names = [plots.__name__] + [
        f"{plots.__name__}.{m.name}" for m in pkgutil.iter_modules(plots.__path__)
    ]
    results = [doctest.testmod(importlib.import_module(n), raise_on_error=False) for n in names]
    assert sum(r.failed for r in results) == 0
    assert sum(r.attempted for r in results) >= 2  # paper_rc's and class_name's in style.py
