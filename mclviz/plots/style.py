"""The house style of every mclviz figure: colours, print sizes, rcParams, plotly template.

- ``PALETTE``, ``OOD_COLOR``: class colours, and the grey kept for OOD points.
- ``COLUMN_WIDTH``, ``TEXT_WIDTH``, ``PAPER_RC``, ``paper_rc()``: print figures in the
  IJCAI two-column layout (TrueType fonts in PDF, text kept as text in SVG).
- ``plotly_template()``: the plotly look (plotly_white, one font size: ``FONT_PX``,
  ``PALETTE``).
- ``PLOTLY_CONFIG``: the plotly config every figure is shown with (responsive: it
  follows the width of its notebook cell).
- ``class_name``: how a class label is named on a figure. Data sets, methods and
  detectors are named by :mod:`mclviz.names`.

Sizes. On screen, a plotly figure has a height and no width: it takes the width of its
container (a notebook cell, a widget's half) and follows it when that changes. Its size in
print is stored in ``fig.layout.meta["export_size"]`` ([width, height] in layout pixels),
which :func:`~mclviz.plots.export` uses when it is given no size. Text is one size
everywhere (``FONT_PX`` on screen, ``FONT_PT`` in print); a label that would not fit is
wrapped (:func:`wrap_label`) or left out, never shrunk.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence

import matplotlib as mpl
import plotly.graph_objects as go
from matplotlib.figure import Figure as MplFigure

__all__ = [
    "COLUMN_WIDTH",
    "FONT_PT",
    "FONT_PX",
    "OOD_COLOR",
    "PALETTE",
    "PAPER_RC",
    "PLOTLY_CONFIG",
    "TEXT_WIDTH",
    "class_name",
    "house_style",
    "paper_rc",
    "plotly_template",
    "text_width",
    "wrap_label",
]

#: Class colours: Tableau 10 (matplotlib's "tab10") with its grey replaced by black, so
#: grey only ever means OOD. Class c gets ``PALETTE[c % 10]``.
PALETTE: tuple[str, ...] = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#000000",  # black (tab10's grey, reserved for OOD here)
    "#bcbd22",  # olive
    "#17becf",  # cyan
)
#: OOD points and OOD score histograms.
OOD_COLOR = "#9e9e9e"
_CORRECT_COLOR = PALETTE[0]
_WRONG_COLOR = PALETTE[3]

COLUMN_WIDTH = 3.3  # inches, one column of the IJCAI two-column layout
TEXT_WIDTH = 6.9  # inches, both columns
FONT_PT = 8  # the one font size of print figures (points)
FONT_PX = 13  # the one font size of plotly figures (CSS pixels)
#: how every plotly figure is shown: responsive (it follows its container's width)
PLOTLY_CONFIG: dict[str, object] = {"responsive": True, "displaylogo": False}
#: the average width of a character of the house font, as a fraction of its size (Arial's
#: mean advance is about 0.5 em; 0.6 leaves room for capitals and digits)
_CHAR_EM = 0.6

#: matplotlib rcParams for print figures (used by ``paper_rc`` and ``export``).
PAPER_RC: dict[str, object] = {
    "figure.figsize": (COLUMN_WIDTH, 2.4),
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "legend.fontsize": FONT_PT,
    "legend.title_fontsize": FONT_PT,
    "figure.titlesize": FONT_PT,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "pdf.fonttype": 42,  # embed TrueType (Type 42), not Type 3: required by most venues
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # keep text as text in SVG (editable, searchable)
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


@contextlib.contextmanager
def paper_rc(rc: Mapping[str, object] | None = None) -> Iterator[None]:
    """Context manager applying ``PAPER_RC`` (3.3 in wide, 8 pt, TrueType fonts), plus ``rc``.

    Wrap the creation of a matplotlib figure (font sizes are read when artists are
    created) and its saving (``pdf.fonttype`` is read when saving); ``export`` already
    does the latter. The global rcParams are restored on exit.

    >>> with paper_rc({"figure.figsize": (TEXT_WIDTH, 2.0)}):
    ...     fig = MplFigure()
    >>> fig.get_size_inches().tolist()
    [6.9, 2.0]
    """
    params = dict(PAPER_RC)
    params.update(rc or {})
    with mpl.rc_context(params):
        yield


@functools.lru_cache(maxsize=1)
def _template() -> go.layout.Template:
    import plotly.io as pio

    t = go.layout.Template(pio.templates["plotly_white"])
    font = dict(size=FONT_PX)
    t.layout.update(
        font=dict(family="Arial, Helvetica, sans-serif", size=FONT_PX, color="#222222"),
        title=dict(font=font, x=0.01, xanchor="left"),
        legend=dict(font=font, itemsizing="constant"),
        hoverlabel=dict(font=font),
        annotationdefaults=dict(font=font),
        colorway=list(PALETTE),
        paper_bgcolor="white",
        plot_bgcolor="white",
        autosize=True,
        margin=dict(l=60, r=20, t=70, b=55),
    )
    axis = dict(
        showline=True,
        linecolor="#444444",
        ticks="outside",
        tickfont=font,
        title=dict(font=font),
        zeroline=False,
        automargin=True,
    )
    t.layout.xaxis.update(axis)
    t.layout.yaxis.update(axis)
    return t


def plotly_template() -> go.layout.Template:
    """The plotly template of every mclviz figure: plotly_white, ``FONT_PX`` text, ``PALETTE``.

    Not registered in ``plotly.io.templates`` (no global side effect); apply it with
    ``fig.update_layout(template=plotly_template())``.
    """
    return go.layout.Template(_template())


def house_style(
    fig: go.Figure, *, height: int | None = None, export_size: tuple[int, int] | None = None
) -> go.Figure:
    """Apply the house template to a plotly figure (in place; returns it).

    With ``height``: the responsive size (no width: the figure takes its container's) and
    ``export_size`` (width, height in layout pixels, the print size
    :func:`~mclviz.plots.export` uses) kept in ``layout.meta``.
    """
    fig.update_layout(template=_template())
    # make_subplots writes its titles with a font size of its own: one size everywhere
    fig.update_annotations(font_size=FONT_PX)
    if height is not None:
        meta = dict(fig.layout.meta or {})
        if export_size is not None:
            meta["export_size"] = [int(export_size[0]), int(export_size[1])]
        fig.update_layout(autosize=True, width=None, height=int(height), meta=meta)
    return fig


_styled = house_style

#: the height of a line of house text in plotly (FONT_PX and its leading)
_LINE_PX = 18


def _lines(text: str | None) -> int:
    return 0 if not text else str(text).count("<br>") + 1


def _title(text: str, *, below: int = 0) -> tuple[dict, int]:
    """A plotly title pinned to the top of the figure, and the top margin that holds it
    and ``below`` more lines of text (subplot titles) without overlap."""
    margin = 14 + _LINE_PX * (_lines(text) + below) + 10
    title = dict(text=text, yref="container", y=1, yanchor="top", pad=dict(t=12))
    return title, margin


def text_width(text: str, font: float = FONT_PX) -> float:
    """The width a one-line label takes, estimated: ``0.6 * font`` per character.

    In the unit of ``font`` (pixels or points). Generous for the house font (Arial's
    average advance is about 0.5 em), so a label judged to fit does.

    >>> text_width("no SEI", 10)
    36.0
    """
    return _CHAR_EM * float(font) * len(str(text))


def wrap_label(text: str, width: float, font: float = FONT_PX, *, sep: str = "<br>") -> str:
    """``text`` broken at spaces into lines that each fit in ``width`` (same unit as
    ``font``); a single word longer than that stays on its own line.

    >>> wrap_label("Tiny ImageNet (resize) scored as in-distribution", 12, 1, sep="|")
    'Tiny ImageNet|(resize) scored as|in-distribution'
    """
    per_line = max(1, int(float(width) // (_CHAR_EM * float(font))))
    lines: list[str] = []
    for word in str(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return sep.join(lines)


def _mpl_figure(**kwargs) -> MplFigure:
    """A matplotlib Figure that pyplot does not manage (never auto-shown, never leaked).

    Created through pyplot and closed at once: in Jupyter, pyplot loads the inline
    backend, which teaches IPython to draw a Figure returned as a cell's value.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(**kwargs)
    plt.close(fig)
    return fig


def class_name(c: int, class_names: Sequence[str] | None = None) -> str:
    """The name of class ``c`` on a figure: ``class_names[c]``, else ``"class c"``.

    >>> class_name(1, ["cat", "dog"]), class_name(5, ["cat", "dog"])
    ('dog', 'class 5')
    """
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return f"class {c}"
