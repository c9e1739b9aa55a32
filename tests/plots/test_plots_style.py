"""mclviz.plots.style: the print rcParams, the palette, the plotly template, one font size,
labels that fit."""

from __future__ import annotations

import matplotlib as mpl
import plotly.graph_objects as go
from plot_inputs import sei_frame

from mclviz.plots import (
    FONT_PT,
    FONT_PX,
    OOD_COLOR,
    PALETTE,
    PLOTLY_CONFIG,
    house_style,
    paper_rc,
    sei_figure,
    text_width,
    wrap_label,
)


def test_paper_rc_sets_and_restores():
    before = mpl.rcParams["pdf.fonttype"], mpl.rcParams["font.size"]
    with paper_rc():
        assert mpl.rcParams["pdf.fonttype"] == 42 and mpl.rcParams["ps.fonttype"] == 42
        assert mpl.rcParams["font.size"] == 8
        keys = [
            k for k in mpl.rcParams if k == "font.size" or k.endswith(("fontsize", "labelsize"))
        ]
        keys += ["axes.titlesize", "figure.titlesize"]
        sizes = {mpl.rcParams[k] for k in keys if isinstance(mpl.rcParams[k], int | float)}
        assert sizes == {FONT_PT}  # one font size in print
        assert list(mpl.rcParams["figure.figsize"]) == [3.3, 2.4]
    assert (mpl.rcParams["pdf.fonttype"], mpl.rcParams["font.size"]) == before
    assert len(PALETTE) == 10 and len(set(PALETTE)) == 10 and OOD_COLOR not in PALETTE


def test_plotly_template_has_one_font_size_and_figures_follow_their_container():
    fig = sei_figure(sei_frame(3), ood="svhn")
    t = fig.layout.template.layout
    assert t.paper_bgcolor == "white" and t.autosize
    sizes = {t.font.size, t.title.font.size, t.legend.font.size, t.hoverlabel.font.size}
    sizes |= {t.xaxis.tickfont.size, t.xaxis.title.font.size, t.yaxis.tickfont.size}
    assert sizes == {FONT_PX}
    assert PLOTLY_CONFIG["responsive"] is True
    g = house_style(go.Figure(go.Bar(y=[1, 2])), height=300, export_size=(600, 300))
    assert g.layout.width is None and g.layout.height == 300
    assert g.layout.meta["export_size"] == [600, 300]


def test_wrap_label_keeps_every_line_within_its_width():
    text = "t-SNE of 1,600 test images and 400 Tiny ImageNet (resize) (of 4,000), seed 0"
    for width in (120, 300, 700):
        lines = wrap_label(text, width).split("<br>")
        assert " ".join(lines) == text
        assert all(text_width(ln) <= width for ln in lines if " " in ln)
    assert wrap_label("short", 500) == "short"
    assert wrap_label("unbreakable-long-word", 10) == "unbreakable-long-word"
