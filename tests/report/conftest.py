"""The report tests' fixtures: one tiny real ``reproduce`` run on CIFAR-10 for the session.

The tiny models are trained once (``reproduce(train=True, preset="tiny")``); the other
runs reuse their checkpoints and the embedding cache.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from report_run import N_BOOT, TEST_SUBSET, TRAIN_SUBSET

from mclviz.report import reproduce


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on 2 shared, busy cores two threads spend their time in barriers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def full(data_root, tmp_path_factory):
    """The full run: every model trained with the tiny preset, then the report."""
    out = tmp_path_factory.mktemp("report")
    cache = tmp_path_factory.mktemp("cache")
    index = reproduce(
        out=out,
        train=True,
        preset="tiny",
        data_root=str(data_root),
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
        progress=False,
        n_boot=N_BOOT,
        cache_dir=cache,
    )
    return SimpleNamespace(
        out=out,
        index=index,
        cache=cache,
        root=str(data_root),
        html=index.read_text(encoding="utf-8"),
    )
