"""mclviz.report.ood: which OOD set the claims and the ablation tables use, and their names."""

from __future__ import annotations

from mclviz.report import DEFAULT_OOD
from mclviz.report.ood import ablation_ood, choose_claim_ood, ood_column, ood_label


def test_claim_and_ablation_sets():
    assert choose_claim_ood(DEFAULT_OOD) == "tinyimagenet-resize"
    assert choose_claim_ood(("uniform", "gaussian")) == "uniform"
    assert ablation_ood(("tinyimagenet-resize", "cifar100")) == "cifar100"  # the paper's
    assert ablation_ood(DEFAULT_OOD) == "tinyimagenet-resize"
    assert ablation_ood(("gaussian",)) is None


def test_names_and_columns():
    assert ood_label("tinyimagenet-resize") == "Tiny ImageNet (resize)"
    assert ood_label("my-set") == "my-set"
    assert ood_column("tinyimagenet-resize") == "tinyimagenet_resize"
