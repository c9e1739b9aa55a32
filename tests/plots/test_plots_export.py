"""mclviz.plots.export: exported files checked through their bytes (PNG magic and size,
%PDF and embedded TrueType, SVG as XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure as MplFigure
from PIL import Image
from plot_inputs import score_data

from mclviz.plots import export, paper_rc, plotly_template, score_distribution


def small_mpl_figure() -> MplFigure:
    with paper_rc():
        fig = MplFigure()
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [1, 0, 1], label="curve")
        ax.set_title("Exported title")
    return fig


def test_export_matplotlib_pdf_svg_png(tmp_path):
    fig = small_mpl_figure()
    pdf = export(fig, tmp_path / "a" / "b" / "fig.pdf")  # parent folders created
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/FontFile2" in data and b"/Type3" not in data  # TrueType embedded, no Type 3
    svg = export(fig, tmp_path / "fig.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "Exported title" in "".join(root.itertext())  # text kept as text
    png = export(fig, tmp_path / "fig.PNG", width=4.0, height=2.0, scale=1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        w, h = im.size
    assert (
        0.7 * 600 < w <= 600 + 10 and 0.7 * 300 < h <= 300 + 10
    )  # 4 x 2 in at 150 dpi, tight bbox
    assert fig.get_size_inches().tolist() == [3.3, 2.4]  # restored
    # the gallery and the score plot export too
    s_in, correct, s_out = score_data(2)
    out = export(
        score_distribution(s_in, correct, s_out, backend="matplotlib", ood_name="LSUN"),
        tmp_path / "s.svg",
    )
    assert "LSUN" in "".join(ET.parse(out).getroot().itertext())


def test_export_rejects_bad_suffix_and_type(tmp_path):
    fig = small_mpl_figure()
    with pytest.raises(ValueError, match=r"'\.jpg'.*\.pdf.*\.svg.*\.png"):
        export(fig, tmp_path / "fig.jpg")
    with pytest.raises(ValueError, match="''"):
        export(fig, tmp_path / "fig")
    with pytest.raises(TypeError, match="go.Figure or a matplotlib Figure"):
        export({"data": []}, tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def test_export_plotly_without_chrome_names_apt_get(tmp_path, monkeypatch):
    import plotly.io._kaleido as pk
    from kaleido.errors import ChromeNotFoundError

    def missing(*args, **kwargs):
        raise ChromeNotFoundError("no chrome")

    monkeypatch.setattr(pk.kaleido, "calc_fig_sync", missing)
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        export(go.Figure(go.Bar(y=[1, 2])), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def kaleido_server():
    """One Chromium for this module's plotly exports (a one-shot export starts its own)."""
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    yield
    kaleido.stop_sync_server(silence_warnings=True)


@pytest.mark.filterwarnings("ignore:The kopts argument is ignored")
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_export_plotly_one_small_figure_per_format(tmp_path, suffix, kaleido_server):
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[2, 1, 3], name="line"))
    fig.update_layout(title="Plotly export title")
    fig.update_layout(template=plotly_template())
    path = export(fig, tmp_path / "sub" / f"fig{suffix}", width=300, height=200, scale=2)
    data = path.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as im:
            assert im.size == (600, 400)  # layout px x scale
    elif suffix == ".svg":
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        assert "Plotly export title" in "".join(root.itertext())
    else:
        assert data.startswith(b"%PDF")


@pytest.mark.filterwarnings("ignore:The kopts argument is ignored")
def test_export_plotly_at_the_figures_print_size(tmp_path, kaleido_server):
    # on screen a figure has no width (its container's); the file gets its print size
    s_in, correct, s_out = score_data(5)
    fig = score_distribution(s_in, correct, s_out)
    assert fig.layout.width is None
    w, h = fig.layout.meta["export_size"]
    with Image.open(export(fig, tmp_path / "scores.png", scale=1)) as im:
        assert im.size == (w, h)
    with Image.open(export(fig, tmp_path / "narrow.png", width=480, scale=1)) as im:
        assert im.size == (480, h)  # a size asked for wins
    from mclviz.plots import export_many

    two = export_many([(fig, tmp_path / "a.png"), (fig, tmp_path / "b.png")], scale=1)
    for path in two:
        with Image.open(path) as im:
            assert im.size == (w, h)
