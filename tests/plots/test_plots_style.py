"""mclviz.plots.style: the print rcParams, the palette and the plotly template."""

from __future__ import annotations

import matplotlib as mpl
from plot_inputs import sei_frame

from mclviz.plots import OOD_COLOR, PALETTE, paper_rc, sei_figure


def test_paper_rc_sets_and_restores():
    before = mpl.rcParams["pdf.fonttype"], mpl.rcParams["font.size"]
    with paper_rc():
        assert mpl.rcParams["pdf.fonttype"] == 42 and mpl.rcParams["ps.fonttype"] == 42
        assert mpl.rcParams["font.size"] == 8
        assert list(mpl.rcParams["figure.figsize"]) == [3.3, 2.4]
    assert (mpl.rcParams["pdf.fonttype"], mpl.rcParams["font.size"]) == before
    assert len(PALETTE) == 10 and len(set(PALETTE)) == 10 and OOD_COLOR not in PALETTE
    fig = sei_figure(sei_frame(3), ood="svhn")
    assert fig.layout.template.layout.paper_bgcolor == "white"
    assert fig.layout.template.layout.font.size >= 12
