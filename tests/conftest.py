"""Shared fixtures.

``data_root``: the folder holding the real data sets (``cifar10.zip``,
``tinyimagenet-test.zip``), from ``$MCLVIZ_DATA``. In CI (``CI=true``) a missing
data root is a test *failure*; on a user's machine without the data the tests that
need it are skipped with a reason that says how to point at it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# MCLVIZ_TEST_THREADS=1 leaves a core to other work (a training run) on a 2-core machine
torch.set_num_threads(
    int(os.environ.get("MCLVIZ_TEST_THREADS", max(1, min(2, os.cpu_count() or 1))))
)


def _real_data_root() -> Path | None:
    env = os.environ.get("MCLVIZ_DATA")
    if env and (Path(env) / "cifar10.zip").exists() or env and (Path(env) / "cifar10").is_dir():
        return Path(env)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _real_data_root()
    if root is None:
        msg = (
            f"real data not found: MCLVIZ_DATA={os.environ.get('MCLVIZ_DATA')!r} holds no "
            "cifar10.zip / cifar10/; set MCLVIZ_DATA to the folder with the data sets "
            "(e.g. ../shared/data)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root
