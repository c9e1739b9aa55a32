"""mclviz.report.figures: Figures 1, 4 and 5 as files, and the export fallback."""

from __future__ import annotations

import re

import numpy as np

from mclviz.report.figures import FIGURE1_MODELS, export_figure


def test_figures_are_valid_pdf_and_png(full):
    for stem in ("fig1_projection", "fig4_failures", "fig5_scores", "fig5_scores_nosei"):
        assert (full.out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        png = (full.out / f"{stem}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_figure1_names_its_models_and_the_ood_set(full):
    """The interactive Figure 1: panels titled by the models' display names, the grey OOD
    points named by the claim OOD set's display name (not "OOD")."""
    from mclviz.names import method_name

    m = re.search(r'Plotly\.newPlot\(\s*"fig1-plot",(.*?)</script>', full.html, re.DOTALL)
    assert m, "no interactive Figure 1"
    plot = m.group(1)
    assert '"name":"Tiny ImageNet (resize)"' in plot
    assert '"name":"OOD"' not in plot
    for model in FIGURE1_MODELS:
        assert f'"text":"{method_name(model)}"' in plot, model


def test_plotly_figures_fall_back_to_matplotlib_without_chrome(tmp_path, monkeypatch):
    import plotly.graph_objects as go

    from mclviz.plots import projection_figure

    rng = np.random.default_rng(0)
    z = {"a": rng.normal(size=(30, 4)), "b": rng.normal(size=(30, 4))}
    fig = projection_figure(z, np.r_[np.arange(20) % 3, -np.ones(10, int)], sample=None)

    def no_chrome(*args, **kwargs):
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    monkeypatch.setattr(go.Figure, "write_image", no_chrome)
    pdf, png = export_figure(fig, tmp_path / "fig")
    assert pdf.read_bytes()[:5] == b"%PDF-" and png.read_bytes()[:4] == b"\x89PNG"
