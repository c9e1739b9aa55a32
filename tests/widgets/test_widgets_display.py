"""mclviz.widgets._display: the guarded ipywidgets import."""

from __future__ import annotations

import sys

import pytest
from widget_inputs import feature_cache

from mclviz.widgets import RetrainPanel


def test_missing_ipywidgets_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        RetrainPanel(feature_cache())
