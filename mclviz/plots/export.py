"""Writing figures to files: PDF, SVG or PNG, plotly (through kaleido) or matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure as MplFigure
from plotly.basedatatypes import BaseFigure

from .style import paper_rc

__all__ = ["export", "export_many"]

_SUFFIXES = (".pdf", ".svg", ".png")


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot export to {path.name!r}: suffix {suffix!r} is not one of {list(_SUFFIXES)}"
        )
    return suffix


def _paper_size(fig: BaseFigure, width, height) -> tuple[int | None, int | None]:
    """The size a plotly figure is exported at: the one asked for, else the figure's print
    size (``layout.meta["export_size"]``, see :mod:`.style`), else its layout's."""
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    size = meta.get("export_size") or (None, None)
    w = width if width is not None else size[0] if size[0] is not None else fig.layout.width
    h = height if height is not None else size[1] if size[1] is not None else fig.layout.height
    return w, h


def export_many(items, *, scale: float = 2) -> list[Path]:
    """Export several ``(figure, path)`` pairs; the plotly ones through one kaleido session
    (``plotly.io.write_images``, about 3x faster than one browser start per figure), each at
    its print size."""
    items = [(fig, Path(path)) for fig, path in items]
    plotly_items = [(f, p) for f, p in items if isinstance(f, BaseFigure)]
    if len(plotly_items) > 1:
        import plotly.io as pio

        for _, p in plotly_items:
            _check_suffix(p)
            p.parent.mkdir(parents=True, exist_ok=True)
        sizes = [_paper_size(f, None, None) for f, _ in plotly_items]
        pio.write_images(
            [f for f, _ in plotly_items],
            [p for _, p in plotly_items],
            format=[p.suffix.lower()[1:] for _, p in plotly_items],
            scale=scale,
            width=[w for w, _ in sizes],
            height=[h for _, h in sizes],
        )
    done = {id(f) for f, _ in plotly_items} if len(plotly_items) > 1 else set()
    return [p if id(f) in done else export(f, p, scale=scale) for f, p in items]


def _export_plotly(fig: BaseFigure, path: Path, fmt: str, width, height, scale) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = _paper_size(fig, width, height)
    try:
        fig.write_image(path, format=fmt, width=width, height=height, scale=scale)
    except RuntimeError as err:
        if "chrome" in str(err).lower():
            raise RuntimeError(
                "static export of plotly figures needs Chrome or Chromium for kaleido, and none "
                "was found: install it with `apt-get install chromium` (Debian/Ubuntu), or run "
                "`plotly_get_chrome`, or point BROWSER_PATH at a Chrome binary; or export a "
                "matplotlib figure instead"
            ) from err
        raise
    return path


def _export_matplotlib(fig: MplFigure, path: Path, fmt: str, width, height, scale) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    old = fig.get_size_inches().copy()
    try:
        if width is not None or height is not None:
            fig.set_size_inches(
                width if width is not None else old[0], height if height is not None else old[1]
            )
        with paper_rc():
            fig.savefig(path, format=fmt, bbox_inches="tight", dpi=150 * float(scale))
    finally:
        fig.set_size_inches(old)
    return path


def export(
    fig,
    path: str | os.PathLike,
    *,
    width: float | None = None,
    height: float | None = None,
    scale: float = 2,
) -> Path:
    """Write a plotly or matplotlib figure to PDF, SVG or PNG, chosen by the path's suffix.

    plotly: ``fig.write_image`` through kaleido (needs Chrome/Chromium); ``width`` and
    ``height`` in layout pixels (default: the figure's print size,
    ``layout.meta["export_size"]``, else its layout's: an mclviz figure follows its
    container's width on screen and is written at a fixed size), ``scale`` multiplies the
    pixels.
    matplotlib: ``fig.savefig(bbox_inches="tight")`` inside ``paper_rc()`` (TrueType
    fonts in PDF, text kept as text in SVG); ``width``/``height`` in inches for this file
    only (the figure is restored), PNG at ``150 * scale`` dpi. The parent folder is
    created.

    Returns:
        The path written.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    if float(scale) <= 0:
        raise ValueError(f"scale={scale} must be positive")
    if isinstance(fig, BaseFigure):  # go.Figure and go.FigureWidget
        return _export_plotly(fig, path, suffix[1:], width, height, scale)
    if isinstance(fig, MplFigure):
        return _export_matplotlib(fig, path, suffix[1:], width, height, scale)
    raise TypeError(
        f"fig is a {type(fig).__module__}.{type(fig).__name__}; export takes a plotly "
        "go.Figure or a matplotlib Figure"
    )
