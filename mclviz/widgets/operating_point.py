"""OperatingPointExplorer: pick one threshold delta of Eq. 14 and see what it accepts.

AUROC summarises every threshold at once; a deployed detector runs at one, ``h_delta(x) =
IND if score(x) >= delta`` (paper Eq. 14). The explorer shows one detector on one OOD set
at a threshold set by a slider or a preset ("TPR = 95%", "FPR = 5%", ...): the TPR, FPR,
precision and the four counts, the score histograms with delta drawn on them, and two
galleries, the OOD images accepted as in-distribution (highest score first) and the test
images rejected (lowest score first), each beside its nearest training images.

Moving the threshold re-scores nothing: the scores are sorted once and counted with
``numpy.searchsorted``; the galleries can only ever show the ``n_shown`` highest-scored
OOD images and the ``n_shown`` lowest-scored test images (the accepted OOD images are the
top of the OOD ranking, the rejected test images the bottom of the test ranking), so
their thumbnails and neighbours are computed once at construction; the histogram keeps
its bars and moves two shapes.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._io import atomic_write_text
from ..evaluation import EvalData, RetrainResult, Scores, pick_detector
from ..metrics import (
    _decision_metrics,
    ood_metrics,
    threshold_at_fpr,
    threshold_at_tpr,
)
from ..names import dataset_name
from ._display import _Displayable, _errors_to, _escape, _ipywidgets, _plotly_entry, _show

__all__ = ["OperatingPointExplorer", "default_detector"]

#: the preset buttons: (label, "tpr" / "fpr", rate)
PRESETS = (
    ("TPR = 99%", "tpr", 0.99),
    ("TPR = 95%", "tpr", 0.95),
    ("TPR = 90%", "tpr", 0.90),
    ("FPR = 5%", "fpr", 0.05),
    ("FPR = 1%", "fpr", 0.01),
)
_FORMATS = ("png", "pdf", "svg")
_IND_COLOR, _OOD_COLOR, _REJECT_FILL = "#1f77b4", "#d62728", "rgba(120,120,120,0.12)"
_BAD = "#b00020"


@dataclass
class _Inputs:
    """One detector on one OOD set, as numpy arrays (and the embeddings for neighbours)."""

    key: str  # the detector's key in the scores
    label: str  # how tables name it
    method: str
    ood: str
    score_in: np.ndarray  # (n,) test scores, in their own dtype (float32 mostly)
    score_out: np.ndarray  # (n_o,) OOD scores
    pred_in: np.ndarray | None  # (n,) predicted test classes
    pred_out: np.ndarray | None  # (n_o,) the class each OOD image is taken for
    test_labels: np.ndarray  # (n,)
    train_labels: np.ndarray  # (N,)
    z_train: Tensor  # (N, d) view 0, the neighbours' space
    z_test: Tensor  # (n, d)
    z_ood: Tensor  # (n_o, d)


def _np(x) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):  # torch; numpy has no bfloat16
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x)


def _view0(z: Tensor) -> Tensor:
    """(n, d) from (n, W, d) (view 0: the plain image) or (n, d)."""
    z = torch.as_tensor(z)
    return z[:, 0] if z.ndim == 3 else z


def default_detector(scores: Scores) -> str:
    """The key of the detector the explorer shows when none is named:
    :func:`mclviz.evaluation.pick_detector`'s choice (the method's recommended detector:
    MSP for classifiers, MCL's class Gaussians with SEI for models trained with rotations)."""
    return pick_detector(scores)


def _resolve_key(scores: Scores, detector) -> str:
    """The key of ``detector`` (a key, a detector's name when unique, or a detector)."""
    if detector is None:
        return default_detector(scores)
    keys = list(scores.results)
    key = getattr(detector, "key", detector)
    if key in scores.results:
        return key
    named = [r.detector.key for r in scores if r.detector.name == key]
    if len(named) == 1:
        return named[0]
    hint = f" ({len(named)} detectors are named {key!r}: pass one key)" if named else ""
    raise ValueError(
        f"detector={key!r} is not in these scores{hint}; pass one of their keys {keys} "
        "(or a detector object of the scores, or None for the default)"
    )


def _check_ood(name: str | None, names: Sequence[str]) -> str:
    names = list(names)
    if not names:
        raise ValueError("these scores hold no OOD set; evaluate with at least one")
    name = names[0] if name is None else name
    if name not in names:
        raise ValueError(f"ood={name!r} is not an OOD set of these scores; pass one of {names}")
    return name


def _from_scores(scores: Scores, detector, ood: str | None, neighbour_output: str) -> _Inputs:
    key = _resolve_key(scores, detector)
    r = scores[key]
    ood = _check_ood(ood, list(r.score_out))
    out, split = scores.outputs, f"ood:{ood}"
    return _Inputs(
        key=key,
        label=r.detector.label,
        method=scores.method,
        ood=ood,
        score_in=_np(r.score_in),
        score_out=_np(r.score_out[ood]),
        pred_in=_np(r.pred),
        pred_out=_np(r.pred_out.get(ood)),
        test_labels=_np(scores.test_labels),
        train_labels=_np(out.data.train[1]),
        z_train=_view0(out.get(neighbour_output, "train", 1)),
        z_test=_view0(out.get(neighbour_output, "test", 1)),
        z_ood=_view0(out.get(neighbour_output, split, 1)),
    )


def _from_result(result: RetrainResult, detector, ood: str | None) -> _Inputs:
    if detector is not None:
        raise ValueError(
            f"detector={getattr(detector, 'key', detector)!r} was given, but a RetrainResult "
            "holds one detector's scores; pass detector=None, or pass the evaluation's Scores"
        )
    ood = _check_ood(ood, list(result.score_out))
    label = "class Gaussians, " + (
        "no SEI" if result.ways == 1 else f"{result.ways}-way SEI {result.aggregation}"
    )
    return _Inputs(
        key=label,
        label=label,
        method=result.method,
        ood=ood,
        score_in=_np(result.score_in),
        score_out=_np(result.score_out[ood]),
        pred_in=_np(result.pred),
        pred_out=_np(result.pred_out.get(ood)),
        test_labels=_np(result.test_labels),
        train_labels=_np(result.train_labels),
        z_train=_view0(result.z_train),
        z_test=_view0(result.z_test),
        z_ood=_view0(result.z_ood[ood]),
    )


def _check_images(x, name: str, n: int, what: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 4 or x.shape[1] != 3 or x.dtype != torch.uint8:
        raise ValueError(
            f"{name} is a {tuple(x.shape)} {x.dtype} tensor; expected uint8 images "
            "(N, 3, H, W) from mclviz.data (pass data= with the images when the scores were "
            "computed from embeddings)"
        )
    if len(x) != n:
        raise ValueError(
            f"{name} holds {len(x)} images but the scores have {n} {what}; pass the images "
            "the scores were computed on"
        )
    return x


def _png_b64(img: Tensor) -> str:
    """A (3, H, W) uint8 image as a base64 PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).contiguous().numpy()).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _thumb(b64: str, size: int, tip: str, border: str = "none") -> str:
    return (
        f"<img src='data:image/png;base64,{b64}' title='{_escape(tip)}' "
        f"style='width:{size}px;height:{size}px;image-rendering:pixelated;"
        f"border:{border};box-sizing:border-box;display:block'>"
    )


def _line(text: str, color: str = "inherit", *, bold: bool = False, wrap: bool = False) -> str:
    """One caption line: wrapped, or cut with an ellipsis (the full text as its tooltip)."""
    weight = "font-weight:600;" if bold else ""
    fit = "overflow-wrap:anywhere" if wrap else "white-space:nowrap;text-overflow:ellipsis"
    return (
        f"<div title='{_escape(text)}' style='{weight}color:{color};overflow:hidden;{fit}'>"
        f"{_escape(text)}</div>"
    )


def _gallery_title(title: str, count: int, total: int, order: str) -> str:
    tail = f", {order}" if count else ""
    return (
        f"<div style='font-size:13px;margin:4px 0'><b>{title}</b>: {count} of {total}{tail}</div>"
    )


def _gallery(cards: list[str], empty: str) -> str:
    """The cards in a grid that fits as many columns as the box allows."""
    if not cards:
        return f"<div style='font-size:12px;color:#555'>{empty}</div>"
    return (
        "<div style='display:grid;gap:6px;"
        "grid-template-columns:repeat(auto-fill,minmax(250px,1fr))'>" + "".join(cards) + "</div>"
    )


def _pct(x: float) -> str:
    return "undefined" if math.isnan(x) else f"{100 * x:.2f}%"


def _fill():
    """The layout of a widget that takes its cell's width and never more."""
    return _ipywidgets().Layout(width="auto", max_width="100%")


def _source(scores, data, detector, ood, neighbour_output):
    """The explorer's scores (an ``_Inputs``) and images from Scores or a RetrainResult."""
    if isinstance(scores, RetrainResult):
        if data is None:
            raise ValueError(
                "a RetrainResult carries no images; pass data= (the EvalData it was "
                "scored on, e.g. load_eval_data(...))"
            )
        return _from_result(scores, detector, ood), data
    if isinstance(scores, Scores):
        src = _from_scores(scores, detector, ood, neighbour_output)
        return src, (scores.outputs.data if data is None else data)
    raise TypeError(
        f"scores is a {type(scores).__name__}; pass the Scores of "
        "evaluate(..., return_scores=True) or a RetrainResult"
    )


class OperatingPointExplorer(_Displayable):
    """One detector at one threshold delta of Eq. 14: what it accepts and what it rejects.

    The decision is ``IND if score >= delta`` (higher = more in-distribution). Shown: a
    threshold slider over the score range and preset buttons ("TPR = 95%": the largest
    delta keeping 95% of the test images, :func:`mclviz.metrics.threshold_at_tpr`; "FPR =
    5%": the smallest delta accepting at most 5% of the OOD images,
    :func:`mclviz.metrics.threshold_at_fpr`); the TPR, FPR, precision, accuracy and counts
    at delta (:func:`mclviz.metrics.operating_point`); the test and OOD score histograms
    with delta and the rejected side drawn; and two galleries, the OOD images accepted as
    in-distribution (highest score first) and the test images rejected (lowest first),
    each with its score, its predicted class and its ``k`` nearest training images (cosine
    distance of ``neighbour_output``, view 0, :func:`mclviz.plots.nearest_neighbours`).

    Args:
        scores: an evaluation's :class:`~mclviz.evaluation.Scores` (``evaluate(...,
            return_scores=True)``), or a :class:`~mclviz.evaluation.RetrainResult` (e.g.
            from ``score_model``; it holds one detector).
        data: the images the scores were computed on (train / test / OOD); default
            ``scores.outputs.data`` (a RetrainResult carries none: pass it).
        detector: a detector key of ``scores``, a detector's name when only one has it
            (``"msp"``), a detector object, or None for :func:`default_detector`.
        ood: the OOD set (default the first).
        class_names: names indexed by label.
        n_shown: images per gallery.
        k: nearest training images per gallery image.
        neighbour_output: the embedding of ``scores.outputs`` the neighbours are found in:
            ``"scored"`` is the projection ``z`` for contrastive models and the encoder
            features for classifiers (whose projection head is never trained). A
            RetrainResult's neighbours are in its ``z``.
        bins: histogram bins over the range of all scores.
        threshold, tpr: the threshold at start, or the TPR it is set by (default 95%).

    Programmatic use (a test drives it without a browser): ``explorer.set(threshold=...)``,
    ``explorer.set(tpr=0.95)``, ``explorer.set(fpr=0.05)`` or the slider's ``.value``;
    read ``threshold``, ``metrics``, ``accepted_ood`` / ``rejected_in`` (indices, ranked),
    ``shown_ood`` / ``shown_in`` (the galleries'), ``figure`` (plotly); ``export(folder)``.
    """

    def __init__(
        self,
        scores: Scores | RetrainResult,
        data: EvalData | None = None,
        *,
        detector: str | Any | None = None,
        ood: str | None = None,
        class_names: Sequence[str] | None = None,
        n_shown: int = 6,
        k: int = 3,
        neighbour_output: str = "scored",
        bins: int = 60,
        threshold: float | None = None,
        tpr: float = 0.95,
    ) -> None:
        for name, value in (("n_shown", n_shown), ("k", k), ("bins", bins)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        src, data = _source(scores, data, detector, ood, neighbour_output)
        self.src, self.class_names = src, class_names
        self.n_shown, self.k = int(n_shown), int(k)
        self.train_images = _check_images(data.train[0], "data.train", len(src.z_train), "rows")
        self.test_images = _check_images(data.test[0], "data.test", len(src.score_in), "scores")
        if src.ood not in data.ood:
            raise ValueError(f"data holds no OOD set {src.ood!r} (it has {list(data.ood)})")
        self.ood_images = _check_images(
            data.ood[src.ood], f"data.ood[{src.ood!r}]", len(src.score_out), "scores"
        )
        self.auroc = ood_metrics(src.score_in, src.score_out)["auroc"]

        # sorted once: every threshold is counted by searchsorted
        self._sorted_in = np.sort(src.score_in.astype(np.float64))
        self._sorted_out = np.sort(src.score_out.astype(np.float64))
        self._rank_in = np.argsort(src.score_in, kind="stable")  # lowest first
        self._rank_out = np.argsort(-src.score_out, kind="stable")  # highest first
        self._neighbours: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cards_ood = self._cards(self._rank_out[: self.n_shown], ood=True)
        self._cards_in = self._cards(self._rank_in[: self.n_shown], ood=False)
        self.figure = self._histogram(int(bins))
        self._set_by = "threshold"

        start = threshold_at_tpr(src.score_in, tpr) if threshold is None else float(threshold)
        self._check_threshold(start)
        # the exact delta of the last set(): the browser snaps the slider to its step grid
        # and sends the snapped value back, which must not move a preset's threshold
        self._exact: float | None = start
        self.slider = self._slider(start)
        self.status = _ipywidgets().HTML(layout=_fill())
        guard = _errors_to(self.status)  # a handler's ValueError shows here, in red
        self.preset_buttons = self._preset_buttons(guard)
        self._build_outputs()
        self.widget = self._layout()
        self.export_button.on_click(guard(lambda _b: self._export_clicked()))
        self.slider.observe(self._on_slider, names="value")
        self._shown: tuple[int, int] = (-1, -1)
        self._update()

    def _slider(self, start: float):
        """The threshold slider over the scores' range (and the start, if outside it)."""
        w = _ipywidgets()
        lo = min(float(self._sorted_in[0]), float(self._sorted_out[0]), start)
        hi = max(float(self._sorted_in[-1]), float(self._sorted_out[-1]), start)
        return w.FloatSlider(
            value=start,
            min=lo,
            max=hi if hi > lo else lo + 1.0,
            step=(hi - lo) / 1000 if hi > lo else 1e-3,
            description="threshold δ",
            readout_format=".4g",
            continuous_update=True,
            style={"description_width": "80px"},
            layout=_fill(),
            tooltip="δ of Eq. 14: an image is accepted as in-distribution iff its score ≥ δ",
            _dom_classes=("mclviz-op-threshold",),
        )

    def _preset_buttons(self, guard) -> list:
        """One button per entry of :data:`PRESETS`, each calling :meth:`set`."""
        w = _ipywidgets()
        buttons = []
        for label, kind, rate in PRESETS:
            what = (
                f"the largest δ keeping {100 * rate:g}% of the test images"
                if kind == "tpr"
                else f"the smallest δ accepting at most {100 * rate:g}% of the OOD images"
            )
            b = w.Button(
                description=label,
                tooltip=what,
                layout=w.Layout(width="auto"),
                _dom_classes=("mclviz-op-preset",),
            )
            b.on_click(guard(lambda _b, kind=kind, rate=rate: self.set(**{kind: rate})))
            buttons.append(b)
        return buttons

    def _build_outputs(self) -> None:
        """The header, counts table, histogram output, galleries and export controls."""
        w = _ipywidgets()
        self.header = w.HTML(self._header(), layout=_fill())
        self.metrics_html = w.HTML(layout=_fill(), _dom_classes=("mclviz-op-counts",))
        self.hist_out = w.Output(layout=_fill(), _dom_classes=("mclviz-op-histogram",))
        # each gallery: a title with the counts (every move), its cards (when they change)
        self.gallery_ood_title = w.HTML(_dom_classes=("mclviz-op-accepted-ood-title",))
        self.gallery_in_title = w.HTML(_dom_classes=("mclviz-op-rejected-in-title",))
        self.gallery_ood = w.HTML(_dom_classes=("mclviz-op-accepted-ood",))
        self.gallery_in = w.HTML(_dom_classes=("mclviz-op-rejected-in",))
        self.export_folder = w.Text(
            value="operating_point",
            description="folder",
            style={"description_width": "50px"},
            layout=w.Layout(width="260px"),
        )
        self.export_format = w.Dropdown(
            options=[("PNG", ("png",)), ("PDF", ("pdf",)), ("SVG", ("svg",)), ("all", _FORMATS)],
            value=("png",),
            description="as",
            style={"description_width": "24px"},
            layout=w.Layout(width="120px"),
        )
        self.export_button = w.Button(
            description="Export",
            icon="download",
            tooltip="the histogram and galleries (PNG/PDF/SVG) and operating_point.json",
            layout=w.Layout(width="auto"),
        )

    def _layout(self):
        """The whole view: header, slider, presets, counts, histogram, galleries, export."""
        w = _ipywidgets()

        def wrap(align: str = "center"):  # a row that wraps its children in a narrow column
            return w.Layout(width="auto", max_width="100%", flex_flow="row wrap", align_items=align)

        galleries = [
            w.VBox([title, cards], layout=w.Layout(flex="1 1 440px", min_width="0"))
            for title, cards in (
                (self.gallery_ood_title, self.gallery_ood),
                (self.gallery_in_title, self.gallery_in),
            )
        ]
        return w.VBox(
            [
                self.header,
                self.slider,
                w.HBox([w.HTML("<b>set δ at</b>&nbsp;"), *self.preset_buttons], layout=wrap()),
                self.metrics_html,
                self.hist_out,
                w.HBox(galleries, layout=wrap("flex-start")),  # both titles on one line
                w.HBox([self.export_folder, self.export_format, self.export_button], layout=wrap()),
                self.status,
            ],
            layout=w.Layout(width="auto", max_width="min(100%, 1200px)"),
            _dom_classes=("mclviz-operating-point",),
        )

    # -- construction
    @classmethod
    def from_model(
        cls,
        source: Any,
        data: EvalData,
        *,
        detectors: Sequence[Any] | None = None,
        sei: int | None = None,
        precision: str = "fp32",
        batch_size: int = 512,
        progress: bool = False,
        **kwargs: Any,
    ) -> OperatingPointExplorer:
        """Evaluate a checkpoint on ``data`` with the scoring pipeline, then build.

        Args:
            source: a :class:`~mclviz.checkpoint.Checkpoint` or a checkpoint path.
            data: train / test / OOD images (e.g. ``load_eval_data(...)`` with subsets).
            detectors: unfitted detectors to score (default: the class Gaussians with
                ``sei`` SEI views, w-avg, the paper's variant, and MSP for classifiers).
            sei: SEI views of the default Gaussians (None: 4 for methods trained with
                rotation labels, else 1, as ``score_model``).
            precision, batch_size, progress: of the embedding (:func:`mclviz.evaluation.evaluate`).
            kwargs: see the class (``detector=`` picks among ``detectors``).
        """
        from ..checkpoint import Checkpoint, load
        from ..evaluation import default_ways, evaluate, standard_detectors

        ck = source if isinstance(source, Checkpoint) else load(source)
        if detectors is None:
            method = ck.config.method_entry
            ways = default_ways(ck.config.method, 8) if sei is None else int(sei)
            detectors = standard_detectors(
                method, sei=(ways,), aggregations=("w-avg",), variants=("paper",)
            )
        _, scores = evaluate(
            ck,
            data=data,
            detectors=list(detectors),
            precision=precision,
            batch_size=batch_size,
            progress=progress,
            return_scores=True,
        )
        return cls(scores, data, **kwargs)

    def _name(self, c) -> str:
        from ..plots import class_name

        return "—" if c is None else class_name(int(c), self.class_names)

    def _cards(self, idx: np.ndarray, *, ood: bool) -> list[str]:
        """One HTML card per gallery candidate: image, score, classes, k neighbours."""
        from ..plots import nearest_neighbours

        s = self.src
        if len(idx) == 0:
            return []
        z_q = (s.z_ood if ood else s.z_test)[torch.as_tensor(idx)]
        k = min(self.k, len(s.z_train))
        dist, nn_idx = nearest_neighbours(z_q, s.z_train, k=k)
        self._neighbours["ood" if ood else "in"] = (idx, dist, nn_idx)
        images = self.ood_images if ood else self.test_images
        scores = s.score_out if ood else s.score_in
        preds = s.pred_out if ood else s.pred_in
        cards = []
        for row, i in enumerate(idx):
            pred = None if preds is None else preds[i]
            tip = f"{dataset_name(s.ood) if ood else 'test'} image #{i}, score {scores[i]:.6g}"
            lines = [_line(f"#{i}", bold=True), _line(f"score {scores[i]:.4g}", wrap=True)]
            if ood:
                lines.append(_line(f"taken for {self._name(pred)}", wrap=True))
            else:
                gt = s.test_labels[i]
                wrong = pred is not None and int(pred) != int(gt)
                lines.append(_line(f"GT {self._name(gt)}", wrap=True))
                color = _BAD if wrong else "inherit"
                lines.append(_line(f"pred {self._name(pred)}", color, wrap=True))
            nbs = []
            for j in range(k):
                t = int(nn_idx[row, j])
                cls_name = self._name(s.train_labels[t])
                nb_tip = f"training image #{t}: {cls_name}, cosine distance {dist[row, j]:.3f}"
                nbs.append(
                    "<div style='width:50px;min-width:0;font-size:10px'>"
                    + _thumb(_png_b64(self.train_images[t]), 50, nb_tip)
                    + _line(cls_name)
                    + _line(f"d={dist[row, j]:.3f}")
                    + "</div>"
                )
            cards.append(
                f"<div data-index='{int(i)}' style='display:flex;gap:4px;font-size:11px;"
                "align-items:flex-start;line-height:1.25;border:1px solid #ddd;"
                "border-radius:4px;padding:4px;min-width:0'>"
                "<div style='width:76px;min-width:0'>"
                + _thumb(_png_b64(images[int(i)]), 76, tip, f"2px solid {_BAD}")
                + "".join(lines)
                + "</div>"
                + "".join(nbs)
                + "</div>"
            )
        return cards

    def _histogram(self, bins: int):
        """Test and OOD score histograms (fraction of each set per bin), delta as shapes."""
        import plotly.graph_objects as go

        from ..plots import plotly_template

        s = self.src
        allv = np.r_[s.score_in, s.score_out]
        lo, hi = float(allv.min()), float(allv.max())
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        fig = go.Figure()
        for name, x, color in (
            (f"test images (in-distribution, n={len(s.score_in)})", s.score_in, _IND_COLOR),
            (f"{dataset_name(s.ood)} (OOD, n={len(s.score_out)})", s.score_out, _OOD_COLOR),
        ):
            counts, _ = np.histogram(x, bins=edges)
            fig.add_trace(
                go.Bar(
                    x=centres,
                    y=counts / len(x),
                    width=width,
                    customdata=counts,
                    name=name,
                    marker=dict(color=color, line=dict(width=0)),
                    opacity=0.55,
                    hovertemplate="score %{x:.4g}: %{customdata} images (%{y:.1%})"
                    f"<extra>{_escape(name)}</extra>",
                )
            )
        pad = 0.02 * (hi - lo)
        fig.update_layout(
            template=plotly_template(),
            barmode="overlay",
            autosize=True,
            height=300,
            margin=dict(l=55, r=15, t=40, b=45),
            xaxis=dict(title="score (higher = more in-distribution)", range=[lo - pad, hi + pad]),
            yaxis_title="fraction of the set",
            legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, font=dict(size=11)),
            shapes=[
                dict(  # the rejected side: score < delta
                    type="rect", xref="x", yref="paper", x0=lo - pad, x1=lo, y0=0, y1=1,
                    fillcolor=_REJECT_FILL, line=dict(width=0), layer="below",
                ),
                dict(
                    type="line", xref="x", yref="paper", x0=lo, x1=lo, y0=0, y1=1,
                    line=dict(color="#222222", width=2, dash="dash"),
                ),
            ],
            annotations=[
                dict(
                    xref="x", yref="paper", x=lo, y=0.98, xanchor="left", yanchor="top",
                    text="", showarrow=False, font=dict(size=11),
                    bgcolor="rgba(255,255,255,0.7)",
                )
            ],
        )  # fmt: skip
        return fig

    def _header(self) -> str:
        s = self.src
        return (
            f"<div style='font-size:13px'><b>Operating point</b> of "
            f"<span title='{_escape(s.key)}'>{_escape(s.label)}</span>"
            f"{' (' + _escape(s.method) + ')' if s.method else ''} on "
            f"<b>{_escape(dataset_name(s.ood))}</b>: an image is accepted as in-distribution iff its "
            f"score ≥ δ (Eq. 14). AUROC over all thresholds {100 * self.auroc:.2f}%.</div>"
        )

    # -- state
    @staticmethod
    def _check_threshold(t: float) -> None:
        if not math.isfinite(t):
            raise ValueError(
                f"threshold={t!r} must be a finite number; to reject everything pass a value "
                "above the highest score"
            )

    def set(
        self,
        *,
        threshold: float | None = None,
        tpr: float | None = None,
        fpr: float | None = None,
    ) -> OperatingPointExplorer:
        """Set the threshold: directly, by the TPR it keeps (the largest such threshold,
        :func:`~mclviz.metrics.threshold_at_tpr`), or by the FPR it allows (the smallest
        such, :func:`~mclviz.metrics.threshold_at_fpr`). Exactly one; returns self."""
        given = {
            k: v for k, v in (("threshold", threshold), ("tpr", tpr), ("fpr", fpr)) if v is not None
        }
        if len(given) != 1:
            raise ValueError(
                f"pass exactly one of threshold=, tpr= or fpr= (got {sorted(given) or 'none'})"
            )
        if tpr is not None:
            t, by = threshold_at_tpr(self.src.score_in, tpr), f"tpr={tpr:g}"
        elif fpr is not None:
            t, by = threshold_at_fpr(self.src.score_out, fpr), f"fpr={fpr:g}"
        else:
            try:
                t, by = float(threshold), "threshold"
            except (TypeError, ValueError):
                raise TypeError(f"threshold={threshold!r} must be a number") from None
            self._check_threshold(t)
        sl = self.slider
        if t > sl.max:  # widen the slider rather than clamp the threshold
            sl.max = t
        if t < sl.min:
            sl.min = t
        self._exact = t
        self._set_by = by
        if sl.value == t:
            self._update()  # the exact value may differ from a snapped one shown before
        sl.value = t  # the observer updates everything
        self.status.value = ""
        return self

    def _on_slider(self, _change) -> None:
        if not self._snapped():
            self._exact, self._set_by = None, "threshold"
        self._update()

    def _snapped(self) -> bool:
        """Whether the slider shows the last set() threshold, up to the front end's
        rounding to the slider's step (half a step either way)."""
        if self._exact is None:
            return False
        step = self.slider.step or 0.0
        return abs(float(self.slider.value) - self._exact) <= 0.5 * step * (1 + 1e-6)

    @property
    def threshold(self) -> float:
        """delta of Eq. 14: accepted as in-distribution iff score >= delta. It is the exact
        value set by :meth:`set` (a preset) while the slider shows it, snapped or not."""
        return self._exact if self._snapped() else float(self.slider.value)

    def _counts(self) -> tuple[int, int]:
        """(test images, OOD images) with score >= threshold, by binary search."""
        t = self.threshold
        n_in, n_out = len(self._sorted_in), len(self._sorted_out)
        return (
            n_in - int(np.searchsorted(self._sorted_in, t, side="left")),
            n_out - int(np.searchsorted(self._sorted_out, t, side="left")),
        )

    @property
    def metrics(self) -> dict[str, float | int]:
        """:func:`mclviz.metrics.operating_point` at the threshold (TPR, FPR, precision,
        accuracy, the counts)."""
        a_in, a_out = self._counts()
        return _decision_metrics(
            self.threshold, a_in, len(self._sorted_in), a_out, len(self._sorted_out)
        )

    @property
    def accepted_ood(self) -> np.ndarray:
        """Indices into the OOD set of the images with score >= threshold, highest first
        (ties by the lower index)."""
        return self._rank_out[: self._counts()[1]]

    @property
    def rejected_in(self) -> np.ndarray:
        """Indices into the test set of the images with score < threshold, lowest first
        (ties by the lower index)."""
        return self._rank_in[: len(self._sorted_in) - self._counts()[0]]

    @property
    def shown_ood(self) -> np.ndarray:
        """The accepted OOD images the gallery shows (the first ``n_shown``)."""
        return self.accepted_ood[: self.n_shown]

    @property
    def shown_in(self) -> np.ndarray:
        """The rejected test images the gallery shows (the first ``n_shown``)."""
        return self.rejected_in[: self.n_shown]

    def to_dict(self) -> dict[str, Any]:
        """What ``operating_point.json`` holds: the detector, the OOD set, how the threshold
        was set, :attr:`metrics` (a NaN precision as None) and the galleries' indices."""
        m = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in self.metrics.items()
        }
        return {
            "detector": self.src.key,
            "detector_label": self.src.label,
            "method": self.src.method,
            "ood": self.src.ood,
            "decision": "in-distribution iff score >= threshold (Eq. 14)",
            "set_by": self._set_by,
            **m,
            "auroc": self.auroc,
            "shown_accepted_ood": [int(i) for i in self.shown_ood],
            "shown_rejected_in": [int(i) for i in self.shown_in],
        }

    # -- drawing (every move: counts, two shapes, and galleries only when they change)
    def _update(self) -> None:
        m, t = self.metrics, self.threshold
        self.metrics_html.value = self._metrics_table(m)
        lay = self.figure.layout
        x0, x1 = lay.xaxis.range
        lay.shapes[0].update(x0=x0, x1=max(t, x0))
        lay.shapes[1].update(x0=t, x1=t)
        right = t > (x0 + x1) / 2  # the label on the line's roomier side, never cut off
        lay.annotations[0].update(
            x=t,
            xanchor="right" if right else "left",
            xshift=-4 if right else 4,
            text=f"δ = {t:.4g}<br>TPR {_pct(m['tpr'])} · FPR {_pct(m['fpr'])}",
        )
        _show(self.hist_out, _plotly_entry(self.figure))
        shown = (min(m["ood_accepted"], self.n_shown), min(m["ind_rejected"], self.n_shown))
        ood = _escape(dataset_name(self.src.ood))
        self.gallery_ood_title.value = _gallery_title(
            f"{ood} images accepted as in-distribution",
            m["ood_accepted"],
            m["n_out"],
            f"highest score first, showing {shown[0]}",
        )
        self.gallery_in_title.value = _gallery_title(
            "test images rejected as OOD",
            m["ind_rejected"],
            m["n_in"],
            f"lowest score first, showing {shown[1]}",
        )
        if shown != self._shown:  # the galleries are prefixes of the precomputed cards
            self._shown = shown
            self.gallery_ood.value = _gallery(
                self._cards_ood[: shown[0]], f"none: every {ood} image scores below δ"
            )
            self.gallery_in.value = _gallery(
                self._cards_in[: shown[1]], "none: every test image scores ≥ δ"
            )

    def _metrics_table(self, m: dict[str, Any]) -> str:
        ood, n_in, n_out = _escape(dataset_name(self.src.ood)), m["n_in"], m["n_out"]
        acc = m["ind_accepted"] + m["ood_accepted"]
        prec = (
            "undefined: nothing is accepted"
            if math.isnan(m["precision"])
            else f"{_pct(m['precision'])} ({m['ind_accepted']} of {acc} accepted)"
        )
        rows = [
            ("TPR", f"test images accepted as in-distribution: {m['ind_accepted']} of {n_in}",
             _pct(m["tpr"]), "fraction of the in-distribution test images with score ≥ δ"),
            ("FPR", f"{ood} images accepted as in-distribution: {m['ood_accepted']} of {n_out}",
             _pct(m["fpr"]), "fraction of the OOD images with score ≥ δ (lower is better)"),
            ("1 − TPR", f"test images rejected as OOD: {m['ind_rejected']} of {n_in}",
             _pct(1 - m["tpr"]), "in-distribution test images with score < δ"),
            ("TNR", f"{ood} images rejected as OOD: {m['ood_rejected']} of {n_out}",
             _pct(1 - m["fpr"]), "OOD images with score < δ"),
            ("precision", "accepted images that are in-distribution", prec,
             "in-distribution as the positive class"),
            ("accuracy", f"images on the right side of δ, of all {n_in + n_out}",
             _pct(m["accuracy"]), "test images accepted plus OOD images rejected"),
        ]  # fmt: skip
        cells = "".join(
            f"<tr title='{_escape(tip)}'><td style='padding:1px 8px 1px 0'><b>{name}</b></td>"
            f"<td style='padding:1px 8px 1px 0'>{text}</td>"
            f"<td style='text-align:right;white-space:nowrap'>{value}</td></tr>"
            for name, text, value, tip in rows
        )
        return (
            f"<div style='font-size:13px'>At δ = <b>{m['threshold']:.6g}</b>:"
            "<table style='border-collapse:collapse;width:100%;max-width:900px'>"
            f"{cells}</table></div>"
        )

    # -- export
    def gallery_figures(self) -> dict[str, Any]:
        """The two galleries at the threshold as matplotlib figures (paper Figure 4 style,
        :func:`mclviz.plots.failure_gallery`); None for an empty gallery."""
        from ..plots import failure_gallery

        s, out = self.src, {}
        for name, shown, kind in (
            ("accepted_ood", self.shown_ood, "ood"),
            ("rejected_in", self.shown_in, "in"),
        ):
            if len(shown) == 0:
                out[name] = None
                continue
            _, dist, nn_idx = self._neighbours[kind]
            rows = slice(0, len(shown))  # shown is a prefix of the candidates
            if kind == "ood":
                images = self.ood_images[torch.as_tensor(shown)]
                titles = [
                    f"{dataset_name(s.ood)} #{i}\nscore {s.score_out[i]:.3g}\n"
                    f"as {self._name(None if s.pred_out is None else s.pred_out[i])}"
                    for i in shown
                ]
            else:
                images = self.test_images[torch.as_tensor(shown)]
                titles = [
                    f"GT {self._name(s.test_labels[i])}\nscore {s.score_in[i]:.3g}\n"
                    f"pred {self._name(None if s.pred_in is None else s.pred_in[i])}"
                    for i in shown
                ]
            nn = torch.as_tensor(nn_idx[rows])
            out[name] = failure_gallery(
                images,
                titles,
                self.train_images[nn],
                s.train_labels[nn_idx[rows]],
                dist[rows],
                class_names=self.class_names,
            )
        return out

    def export(
        self, folder: str | Path, *, formats: Sequence[str] = ("png",), scale: float = 2
    ) -> list[Path]:
        """Write the current view and the threshold with its metrics into ``folder``.

        Files: ``scores.<fmt>`` (the histogram with delta, through kaleido),
        ``accepted_ood.<fmt>`` and ``rejected_in.<fmt>`` (the galleries, left out when
        empty) for each of ``formats`` (png, pdf, svg; :func:`mclviz.plots.export_many`),
        and ``operating_point.json`` (:meth:`to_dict`).

        Returns:
            The paths written, the JSON last.
        """
        import plotly.graph_objects as go

        from ..plots import export_many

        fmts = [formats] if isinstance(formats, str) else list(formats)
        bad = [f for f in fmts if f not in _FORMATS]
        if bad or not fmts:
            raise ValueError(f"formats={fmts!r}: choose among {list(_FORMATS)}")
        folder = Path(folder)
        hist = go.Figure(self.figure)
        hist.update_layout(width=900, height=380, autosize=False)
        items = [(hist, folder / f"scores.{f}") for f in fmts]
        for name, fig in self.gallery_figures().items():
            if fig is not None:
                items += [(fig, folder / f"{name}.{f}") for f in fmts]
        paths = export_many(items, scale=scale)
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return [*paths, atomic_write_text(folder / "operating_point.json", text + "\n")]

    def _export_clicked(self) -> None:
        folder = self.export_folder.value.strip()
        if not folder:
            raise ValueError("the export folder is empty; type a folder name")
        self.status.value = "exporting…"
        paths = self.export(folder, formats=self.export_format.value)
        self.status.value = f"wrote {len(paths)} files to {_escape(folder)}"
