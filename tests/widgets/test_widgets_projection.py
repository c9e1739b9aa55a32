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
    ood_traces = [t for t in fig.data if t.name == "OOD"]
    assert len(ood_traces) == 2 and len(ood_traces[0].x) == 10
    e.set(ood="o2")
    assert len([t for t in e.figure.data if t.name == "OOD"][0].x) == 12
    e.ood.value = "none"
    assert all(t.name != "OOD" for t in e.figure.data) and "OOD set: none" in e.status.value
    assert e.out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    with pytest.raises(ValueError, match="lacks the models"):
        ProjectionExplorer(z, y, {"o": {"A": torch.randn(3, 5)}})
    with pytest.raises(ValueError, match="unknown setting"):
        e.set(perplexity=5)


def test_projection_explorer_from_models():
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
