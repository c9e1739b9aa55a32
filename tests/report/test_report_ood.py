"""mclviz.report.ood: which OOD set the claims and the ablation tables use, their columns,
and the paper's columns they stand for (our sets' display names: mclviz.names)."""

from __future__ import annotations

from mclviz.report import DEFAULT_OOD
from mclviz.report.ood import (
    PAPER_OOD,
    PAPER_OOD_LABEL,
    ablation_ood,
    choose_claim_ood,
    ood_column,
)


def test_claim_and_ablation_sets():
    assert choose_claim_ood(DEFAULT_OOD) == "tinyimagenet-resize"
    assert choose_claim_ood(("uniform", "gaussian")) == "uniform"
    assert ablation_ood(("tinyimagenet-resize", "cifar100")) == "cifar100"  # the paper's
    assert ablation_ood(DEFAULT_OOD) == "tinyimagenet-resize"
    assert ablation_ood(("gaussian",)) is None


def test_columns_and_the_papers_names():
    assert ood_column("tinyimagenet-resize") == "tinyimagenet_resize"
    assert set(PAPER_OOD_LABEL) == set(PAPER_OOD)  # every paper column has its paper name
