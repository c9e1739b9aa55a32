"""The house style of every mclviz figure: colours, print sizes, rcParams, plotly template.

- ``PALETTE``, ``OOD_COLOR``: class colours, and the grey kept for OOD points.
- ``COLUMN_WIDTH``, ``TEXT_WIDTH``, ``PAPER_RC``, ``paper_rc()``: print figures in the
  IJCAI two-column layout (TrueType fonts in PDF, text kept as text in SVG).
- ``plotly_template()``: the plotly look (plotly_white, 12-17 px fonts, ``PALETTE``).
- ``class_name``: how a class label is named on a figure.
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
    "OOD_COLOR",
    "PALETTE",
    "PAPER_RC",
    "TEXT_WIDTH",
    "class_name",
    "paper_rc",
    "plotly_template",
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

#: matplotlib rcParams for print figures (used by ``paper_rc`` and ``export``).
PAPER_RC: dict[str, object] = {
    "figure.figsize": (COLUMN_WIDTH, 2.4),
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
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
    t.layout.update(
        font=dict(family="Arial, Helvetica, sans-serif", size=14, color="#222222"),
        title=dict(font=dict(size=17), x=0.02, xanchor="left"),
        legend=dict(font=dict(size=13), itemsizing="constant"),
        hoverlabel=dict(font=dict(size=13)),
        colorway=list(PALETTE),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=60, r=20, t=70, b=55),
    )
    axis = dict(
        showline=True,
        linecolor="#444444",
        ticks="outside",
        tickfont=dict(size=12),
        title=dict(font=dict(size=14)),
        zeroline=False,
    )
    t.layout.xaxis.update(axis)
    t.layout.yaxis.update(axis)
    return t


def plotly_template() -> go.layout.Template:
    """The plotly template of every mclviz figure: plotly_white, 12-17 px fonts, ``PALETTE``.

    Not registered in ``plotly.io.templates`` (no global side effect); apply it with
    ``fig.update_layout(template=plotly_template())``.
    """
    return go.layout.Template(_template())


def _styled(fig: go.Figure) -> go.Figure:
    fig.update_layout(template=_template())
    return fig


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
