"""mclviz.report.gallery: the HTML gallery of a user's scored images.

Built from a :class:`~mclviz.evaluation.ScoredImages` made by hand (the real run is
``tests/evaluation/test_user_images.py``'s, whose command-line test writes a gallery too).
"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import torch
from PIL import Image

from mclviz.evaluation import ScoredImages
from mclviz.evaluation.user_images import IN, OUT
from mclviz.report.gallery import thumbnail_uri, write_gallery

SCORES = [-3.0, 2.5, 0.5, -0.25, 1.0]
THRESHOLD = 0.0


class _Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.order: list[str] = []  # "card" and "threshold" in page order
        self.images: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "div" and cls.startswith("card"):
            self.cards.append(a)
            self.order.append("card")
        if tag == "div" and cls == "threshold":
            self.order.append("threshold")
        if tag == "img":
            self.images.append(a["src"])
        if tag == "script":
            self.scripts += 1


def _result(skipped=(("a.zip::bad.jpg", "cannot decode image"), ("notes.txt", "not an image"))):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (len(SCORES), 3, 32, 32), dtype=np.uint8))
    table = pd.DataFrame(
        {
            "file": [f"photos/img_{i}.png" for i in range(len(SCORES))],
            "score": SCORES,
            "predicted_class": ["cat", "dog", "ship", "", "frog"],
            "verdict": [IN if s >= THRESHOLD else OUT for s in SCORES],
        }
    )
    test = torch.linspace(-1, 3, 100)
    return ScoredImages(
        table=table,
        images=images,
        skipped=list(skipped),
        threshold=THRESHOLD,
        tpr=float((test >= THRESHOLD).double().mean()),
        tpr_target=0.95,
        test_scores=test,
        detector="class Gaussians (tied cov., normalised), 8-way SEI w-avg",
        detector_key="gaussians/views=8",
        method="mcl",
        dataset="cifar10",
        checkpoint="runs/mcl/checkpoint.safetensors",
        n_train=300,
    )


def test_gallery_sorted_by_score_with_threshold_and_skipped(tmp_path):
    r = _result()
    path = write_gallery(r, tmp_path / "g" / "gallery.html")
    page = path.read_text(encoding="utf-8")
    p = _Cards()
    p.feed(page)
    assert p.scripts == 0 and "http://" not in page and "https://" not in page
    scores = [float(c["data-score"]) for c in p.cards]
    assert scores == sorted(SCORES, reverse=True)  # most in-distribution first
    assert [c["data-verdict"] for c in p.cards] == [IN if s >= 0 else OUT for s in scores]
    # the threshold marker sits between the last image in and the first image out
    n_in = sum(s >= THRESHOLD for s in SCORES)
    assert p.order.index("threshold") == n_in
    # the threshold, the TPR it was chosen for and the skipped files are stated
    assert r.threshold_rule[1:] in page.replace("&#x27;", "'")
    assert "95.0%" in page and f"Threshold {THRESHOLD:.6g}:" in page
    assert re.search(r"id='skipped-count'>2 files could not be decoded and were skipped<", page)
    assert "a.zip::bad.jpg" in page and "notes.txt" in page
    assert f"{n_in} in-distribution" in page and f"{len(SCORES) - n_in} out-of-distribution" in page
    # each thumbnail is its image, embedded: the card of score 2.5 shows image 1
    assert len(p.images) == len(SCORES) and all(
        u.startswith("data:image/png;base64,") for u in p.images
    )
    png = base64.b64decode(p.images[0].split(",", 1)[1])
    shown = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(shown, r.images[1].permute(1, 2, 0).numpy())
    assert p.images[0] == thumbnail_uri(r.images[1])


def test_gallery_without_skipped_files_or_images_out(tmp_path):
    r = _result(skipped=())
    r.table["verdict"] = IN
    page = write_gallery(r, tmp_path / "g.html").read_text(encoding="utf-8")
    assert "no file was skipped" in page and "id='skipped'" not in page
    p = _Cards()
    p.feed(page)
    assert p.order[-1] == "threshold"  # every image at or above it
