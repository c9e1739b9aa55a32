"""The HTML gallery of a user's scored images (``python -m mclviz score``).

:func:`write_gallery` writes one self-contained page (thumbnails embedded as PNG data
URIs, no script, nothing fetched) from :func:`mclviz.evaluation.score_images`'s result:
what was scored with which detector, the threshold and the TPR it was chosen for, how
many files were skipped (and which), then every image sorted by score, most
in-distribution first, with its score, predicted class and verdict, and a marker where
the threshold falls.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from ..evaluation.user_images import IN, ScoredImages
from ..names import dataset_name, method_name

__all__ = ["thumbnail_uri", "write_gallery"]

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.5em}.note{color:#555;font-size:.9em}
.grid{display:flex;flex-wrap:wrap;gap:10px;margin-top:1em}
.card{width:150px;border:2px solid #ddd;border-radius:4px;padding:6px;font-size:.8em;
overflow-wrap:anywhere}
.card img{width:96px;height:96px;image-rendering:pixelated;display:block;margin:0 auto 4px}
.card.in{border-color:#1a7f37}.card.out{border-color:#b42318}
.verdict-in{color:#1a7f37;font-weight:bold}.verdict-out{color:#b42318;font-weight:bold}
.threshold{width:100%;border-top:2px dashed #222;margin:6px 0;padding-top:2px;font-size:.85em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:.2em .5em}
"""


def thumbnail_uri(image) -> str:
    """A ``data:image/png;base64,...`` URI of one (3, H, W) uint8 image."""
    from PIL import Image

    arr = np.asarray(image.numpy() if hasattr(image, "numpy") else image, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0))).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _summary(r: ScoredImages) -> str:
    e = html.escape
    source = f" from {e(r.checkpoint)}" if r.checkpoint else ""
    many = r.n_skipped != 1
    skipped = (
        f"{r.n_skipped} file{'s' if many else ''} could not be decoded and "
        f"{'were' if many else 'was'} skipped"
        if r.n_skipped
        else "no file was skipped"
    )
    lines = [
        f"<p>Model: {e(method_name(r.method))} (<code>{e(r.method)}</code>), trained on "
        f"{e(dataset_name(r.dataset))}{source}. "
        f"Detector: {e(r.detector)} (higher score = more in-distribution), fitted on "
        f"{r.n_train} training images.</p>",
        f"<p id='threshold-rule'>{e(r.threshold_rule[:1].upper() + r.threshold_rule[1:])}. "
        "An image scoring at or above it is called in-distribution, below it "
        "out-of-distribution.</p>",
        f"<p id='counts'>{r.n_scored} images scored: <span class='verdict-in'>{r.n_in} "
        f"in-distribution</span>, <span class='verdict-out'>{r.n_out} out-of-distribution"
        f"</span>; <span id='skipped-count'>{skipped}</span>.</p>",
        f"<p class='note'>Each image is shown as the model saw it: converted to RGB and "
        f"reduced to {r.side}x{r.side} with PIL's BOX filter (as the OOD sets are), "
        "enlarged here without smoothing.</p>",
    ]
    if r.skipped:
        rows = "".join(
            f"<tr><td>{e(name)}</td><td>{e(reason)}</td></tr>" for name, reason in r.skipped
        )
        lines.append(
            "<details id='skipped'><summary>Skipped files</summary><table><thead><tr>"
            f"<th>file</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></details>"
        )
    return "\n".join(lines)


def _card(r: ScoredImages, row) -> str:
    e = html.escape
    inside = row["verdict"] == IN
    cls, vcls = ("in", "verdict-in") if inside else ("out", "verdict-out")
    name = str(row["file"])
    short = name.replace("\\", "/").rsplit("/", 1)[-1]
    pred = f"<br>predicted: {e(str(row['predicted_class']))}" if row["predicted_class"] else ""
    return (
        f"<div class='card {cls}' data-score='{float(row['score']):.9g}' "
        f"data-verdict='{e(row['verdict'])}' title='{e(name)}'>"
        f"<img src='{thumbnail_uri(r.images[int(row['index'])])}' alt='{e(short)}'>"
        f"<b>{e(short)}</b><br>score {float(row['score']):.5g}{pred}<br>"
        f"<span class='{vcls}'>{e(row['verdict'])}</span></div>"
    )


def write_gallery(
    result: ScoredImages, path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Write the gallery page of ``result`` to ``path`` (created or overwritten).

    Args:
        result: :func:`mclviz.evaluation.score_images`'s result.
        path: the ``.html`` file.
        title: the page title (default: "mclviz score: N images").

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    title = title or f"mclviz score: {result.n_scored} images"
    line = (
        f"<div class='threshold' id='threshold-line'>threshold {result.threshold:.6g}: "
        "in-distribution above, out-of-distribution below</div>"
    )
    cards: list[str] = []
    for _, row in result.by_score().iterrows():
        if line and row["verdict"] != IN:
            cards.append(line)
            line = ""
        cards.append(_card(result, row))
    if line:  # every image scored at or above the threshold
        cards.append(line)
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_summary(result)}"
        "<p class='note'>Sorted by score, most in-distribution first.</p>"
        f"<div class='grid' id='gallery'>{''.join(cards)}</div></body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
