"""Tests for the mclviz.losses package: its public names and its docstring examples."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

from mclviz import losses

PUBLIC_NAMES = [
    "nt_xent",
    "supcon",
    "ccm",
    "spa",
    "mcl",
    "mcl_terms",
    "mean_shifted",
    "angular_center",
    "ccm_mask",
    "spa_positive_mask",
    "sample_positives",
    "NTXentLoss",
    "SupConLoss",
    "CCMLoss",
    "SPALoss",
    "MCLLoss",
    "MeanShiftedLoss",
    "AngularCenterLoss",
    "VARIANTS",
    "SPA_MODES",
    "OFFICIAL_SIM_FLOOR",
]


def test_public_names_are_reexported():
    assert losses.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(losses, name) is not None
    # a loss module never shadows the function of the same name
    assert callable(losses.ccm) and callable(losses.mcl_terms) and callable(losses.nt_xent)
    assert losses.VARIANTS == ("paper", "official") and losses.SPA_MODES == ("sample", "expected")


def test_docstring_examples_run():
    names = [losses.__name__] + [
        f"{losses.__name__}.{m.name}" for m in pkgutil.iter_modules(losses.__path__)
    ]
    results = [doctest.testmod(importlib.import_module(n), raise_on_error=False) for n in names]
    assert sum(r.failed for r in results) == 0
    assert sum(r.attempted for r in results) >= 1  # ccm_mask's example in masks.py
