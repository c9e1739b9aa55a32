"""The mclviz.widgets package: its names, and no side effect at import."""

from __future__ import annotations

import subprocess
import sys

from mclviz import widgets

PUBLIC_NAMES = [
    "FailureViewer",
    "OperatingPointExplorer",
    "ProjectionExplorer",
    "RetrainPanel",
    "loss_curve",
    "result_label",
    "result_projection",
    "result_scores",
]


def test_public_names_are_reexported():
    assert widgets.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(widgets, name) is not None


def test_import_has_no_side_effects():
    code = (
        "import sys, mclviz.widgets; "
        "print(sorted(m for m in ('ipywidgets', 'plotly', 'matplotlib.pyplot') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
