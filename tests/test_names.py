"""mclviz.names as the figures use it: data sets, methods, detectors by their display names.

(The names live in ``mclviz/names.py``; these tests sit with the figures, their users.)
"""

from __future__ import annotations

import doctest

from mclviz import methods, names
from mclviz.evaluation import DETECTOR_NAMES


def test_every_registered_method_and_detector_has_a_display_name():
    for m in methods.names():
        assert m in names.METHODS, f"method {m!r} has no display name in mclviz.names"
    for d in DETECTOR_NAMES:
        assert d in names.DETECTORS, f"detector {d!r} has no display name in mclviz.names"
    for d in ("cifar10", "tinyimagenet-resize", "gaussian", "uniform", "open-set"):
        assert d in names.DATASETS


def test_names_fall_back_to_the_key_and_read_sei_settings():
    assert names.dataset_name("tinyimagenet-resize") == "Tiny ImageNet (resize)"
    assert names.dataset_name("/data/holiday-photos/") == "holiday-photos"
    assert names.method_name("my-method") == "my-method"
    assert names.detector_name("mahalanobis+flip") == "Mahalanobis + flip TTA"
    assert names.sei_name(1, "avg") == "no SEI" and names.sei_name(4, "w-avg") == "4-way w-avg"
    assert names.variant_name("official") == "official code"
    assert names.mode_name("fast") == "head retrained"


def test_docstring_examples_run():
    result = doctest.testmod(names, raise_on_error=False)
    assert result.failed == 0 and result.attempted >= 5
