"""Fixtures of the widget tests."""

from __future__ import annotations

import pytest
from widget_inputs import feature_cache

from mclviz.evaluation import retrain_head


@pytest.fixture(scope="module")
def fast_result():
    """A fast-mode (projection head) result on the synthetic cache, one epoch."""
    return retrain_head(feature_cache(), method="mcl", epochs=1)
