"""The mclviz.report package: the names it re-exports."""

from __future__ import annotations

import mclviz
from mclviz import report

PUBLIC_NAMES = [
    "CLAIM_IDS",
    "DEFAULT_METHODS",
    "DEFAULT_OOD",
    "KNOWN_CLASSES",
    "OPEN_SET",
    "reproduce",
]


def test_public_names_are_reexported():
    assert report.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(report, name) is not None
    assert mclviz.reproduce is report.reproduce  # mclviz's lazy name
    assert report.OPEN_SET not in report.DEFAULT_METHODS and report.CLAIM_IDS == tuple("abcde")
