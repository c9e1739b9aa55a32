"""Interactive plotly figures inside a static HTML page that works offline.

A page that embeds plotly figures needs plotly.js. Fetching it from a CDN breaks the page
without a network (and leaks that it was opened), and inlining it adds 4.8 MB to every
page; here it is one file written beside the page and referenced relatively:

* :func:`write_plotly_js` copies the plotly.js bundled with the installed plotly package
  (``plotly/package_data/plotly.min.js``, the version ``fig.show()`` uses) into a folder;
* :func:`script_tag` is the ``<script src="plotly.min.js">`` for the page's ``<head>``;
* :func:`figure_div` is one figure as a ``<div>`` and the inline script that draws it
  (``plotly.io.to_html(..., include_plotlyjs=False)``), with the plotly logo link off.

Nothing is fetched when the page is opened from disk.
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import plotly.io as pio
from plotly.basedatatypes import BaseFigure

__all__ = ["PLOTLY_JS", "figure_div", "plotly_js_source", "script_tag", "write_plotly_js"]

#: the file name of plotly.js beside the page
PLOTLY_JS = "plotly.min.js"
#: plotly's modebar without its link to plotly.com (nothing on the page points online)
_CONFIG = {"displaylogo": False, "responsive": True}


def plotly_js_source() -> Path:
    """The plotly.min.js bundled with the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(
            f"plotly.js is not at {path}: the installed plotly package ({plotly.__version__}) "
            "ships without its bundle; reinstall it (pip install --force-reinstall plotly)"
        )
    return path


def write_plotly_js(folder: str | os.PathLike) -> Path:
    """Copy the bundled plotly.js into ``folder`` as :data:`PLOTLY_JS` (kept when the copy
    there is already the same size); returns its path."""
    src = plotly_js_source()
    dest = Path(folder) / PLOTLY_JS
    if not (dest.is_file() and dest.stat().st_size == src.stat().st_size):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return dest


def script_tag(src: str = PLOTLY_JS) -> str:
    """``<script>`` loading plotly.js from ``src``, a path relative to the page."""
    if "://" in src or src.startswith("//"):
        raise ValueError(
            f"src={src!r} is a URL; the page must work offline: pass a relative path to "
            "the file write_plotly_js wrote (e.g. 'plotly.min.js')"
        )
    return f'<script src="{html.escape(src)}" charset="utf-8"></script>'


def figure_div(fig: BaseFigure, div_id: str) -> str:
    """One plotly figure as HTML: its ``<div id=div_id class="plotly-graph-div">`` and the
    inline script drawing it with the page's plotly.js (:func:`script_tag`)."""
    if not isinstance(fig, BaseFigure):
        raise TypeError(f"fig must be a plotly figure, got {type(fig).__name__}")
    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=_CONFIG,
    )
