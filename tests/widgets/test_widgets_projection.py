"""mclviz.widgets.projection: the ProjectionExplorer switches projections and OOD sets."""

from __future__ import annotations

import pytest
import torch
from widget_inputs import random_images

from mclviz.models import build_model
from mclviz.widgets import ProjectionExplorer


def test_projection_explorer_switches_the_ood_set():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(30) % 3
    z = {"A": torch.randn(30, 5, generator=g), "B": torch.randn(30, 5, generator=g)}
    ood = {
        "o1": {"A": torch.randn(10, 5, generator=g), "B": torch.randn(10, 5, generator=g)},
        "o2": {"A": torch.randn(12, 5, generator=g), "B": torch.randn(12, 5, generator=g)},
    }
    e = ProjectionExplorer(z, y, ood, class_names=["x", "y", "z"], sample=None)
    fig = e.figure
    assert [a.text for a in fig.layout.annotations] == ["A", "B"]
    ood_traces = [t for t in fig.data if t.name == "o1"]  # the legend names the set
    assert len(ood_traces) == 2 and len(ood_traces[0].x) == 10
    e.set(ood="o2")
    assert len([t for t in e.figure.data if t.name == "o2"][0].x) == 12
    e.ood.value = "none"
    assert all(t.name not in ("o1", "o2", "OOD") for t in e.figure.data)
    assert "OOD set: none" in e.status.value
    assert e.out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    with pytest.raises(ValueError, match="lacks the models"):
        ProjectionExplorer(z, y, {"o": {"A": torch.randn(3, 5)}})
    with pytest.raises(ValueError, match="unknown setting"):
        e.set(perplexity=5)


def test_projection_explorer_from_models(capsys):
    torch.manual_seed(0)
    models = {
        "m1": build_model("resnet18", width=0.125, proj_dim=4),
        "m2": build_model("resnet18", width=0.125, proj_dim=6),
    }
    e = ProjectionExplorer.from_models(
        models,
        (random_images(20), torch.arange(20) % 2),
        {"noise": random_images(8, 1)},
        sample=None,
    )
    assert e.z_test["m2"].shape == (20, 6) and e.z_ood["noise"]["m1"].shape == (8, 4)
    assert e.ood.value == "noise"
    err = capsys.readouterr().err  # the slow steps show progress: embedding, projecting
    assert "embed" in err and "t-SNE" in err


def test_projection_explorer_names_sets_and_counts_hover_within_each_set():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(30) % 3
    z = {"A": torch.randn(30, 5, generator=g)}
    ood = {"tinyimagenet-resize": {"A": torch.randn(20, 5, generator=g)}}
    e = ProjectionExplorer(z, y, ood, sample=None, progress=False)
    assert e.ood.options == (
        ("none (test images only)", "none"),
        ("Tiny ImageNet (resize)", "tinyimagenet-resize"),
    )
    (trace,) = [t for t in e.figure.data if t.name == "Tiny ImageNet (resize)"]
    where = [r[4] for r in trace.customdata]
    # OOD rows come after the 30 test rows, yet the hover box counts within the set
    assert where[0] == "OOD image #0 of 20" and where[-1] == "OOD image #19 of 20"
    assert "Tiny ImageNet (resize)" in e.status.value
    assert e.out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["config"]["responsive"]
