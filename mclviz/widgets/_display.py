"""What the UIs share: the guarded ipywidgets import, showing things in Output widgets, and
the rows that wrap (a widget is never wider than its notebook cell).

Plotly figures are shown through the ``application/vnd.plotly.v1+json`` mimetype inside
``ipywidgets.Output`` widgets (JupyterLab renders it with plotly's extension), so no
``FigureWidget`` / anywidget is needed; matplotlib figures as PNG. Setting an Output's
``outputs`` works from any thread and needs no kernel, so a test drives the UIs from code.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

#: the projection toggle's options: (label, ``mclviz.plots.project`` method)
_PROJECTIONS = (("t-SNE", "tsne"), ("UMAP", "umap"))


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError(
            "mclviz.widgets needs ipywidgets (and JupyterLab to show them): "
            "pip install ipywidgets jupyterlab"
        ) from err
    return ipywidgets


def _plotly_entry(fig) -> dict[str, Any]:
    """An ``Output`` widget entry showing a plotly figure through plotly's mimetype, with
    the house config (responsive: it follows the width of its box)."""
    import plotly.io as pio

    from ..plots import PLOTLY_CONFIG

    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    spec = bundle["application/vnd.plotly.v1+json"]
    spec["config"] = {**(spec.get("config") or {}), **PLOTLY_CONFIG}
    title = fig.layout.title.text or "plotly figure"
    bundle["text/plain"] = f"<plotly figure: {title}>"
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def _png_entry(png: bytes, text: str = "<figure>") -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text},
    }


def _mpl_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    return buf.getvalue()


def _text_entry(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _show(out, *entries: dict[str, Any]) -> None:
    """Replace an Output widget's content (works from any thread, no kernel needed)."""
    out.outputs = tuple(entries)


def _escape(text: str) -> str:
    return html.escape(text)


def _row(w, children, **layout) -> Any:
    """An HBox whose children wrap onto the next line when the cell is too narrow (a
    widget is never wider than its cell); a child without a flex of its own keeps its
    width (it moves to the next line rather than being squeezed)."""
    for child in children:
        if child.layout.flex is None:
            child.layout.flex = "0 0 auto"
    return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap", **layout))


def _figure_box(w, min_width: int = 460) -> Any:
    """An Output for a plotly figure, side by side with others while each gets
    ``min_width`` px, else on a line of its own; the figure takes the box's width."""
    return w.Output(layout=w.Layout(flex=f"1 1 {min_width}px", min_width="0", max_width="100%"))


def _errors_to(status) -> Callable:
    """Decorator for UI handlers: a ValueError is shown in ``status`` (red), not raised."""

    def wrap(fn: Callable) -> Callable:
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as err:
                status.value = f"<span style='color:#b00020'>{_escape(str(err))}</span>"
                return None

        return handler

    return wrap


class _Displayable:
    """Displays ``self.widget`` when the object is a cell's value."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _set_values(self, values: dict[str, Any], names: tuple[str, ...]) -> None:
        """Set the widgets ``names`` by name (their observers run); others are an error."""
        for key, value in values.items():
            if key not in names:
                raise ValueError(
                    f"unknown setting {key!r}; {type(self).__name__} has {', '.join(names)}"
                )
            getattr(self, key).value = value
