"""Where the text of a matplotlib figure lands once drawn: no two labels may overlap, and
none may leave the figure (the check behind "labels only where they fit")."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text


def text_boxes(fig) -> list[tuple[str, object]]:
    """(text, display-space bbox) of every visible, non-empty text of ``fig``, drawn."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    hidden = set()  # tick labels of ticks outside the axis' view: matplotlib skips them
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
                    hidden.update({id(tick.label1), id(tick.label2)})
    out = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden:
            out.append((t.get_text(), t.get_window_extent(renderer)))
    return out


def assert_no_text_overlap(fig, *, slack: float = 0.5) -> None:
    """No two texts of ``fig`` overlap (by more than ``slack`` px), none is cut off."""
    boxes = text_boxes(fig)
    width, height = fig.canvas.get_width_height()
    for text, b in boxes:
        assert b.x0 >= -slack and b.y0 >= -slack, f"{text!r} leaves the figure: {b}"
        assert b.x1 <= width + slack and b.y1 <= height + slack, f"{text!r} leaves the figure"
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1 :]:
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert overlap_x <= slack or overlap_y <= slack, f"{ta!r} and {tb!r} overlap"
