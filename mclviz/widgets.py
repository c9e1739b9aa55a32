"""Interactive views for JupyterLab: projections, failure cases, retraining with sliders.

Three ipywidgets UIs, each a thin layer over library calls with a programmatic API, so a
test (or a script) drives them without a browser: set values with ``.set(...)`` or the
widgets' ``.value``, call ``.update()`` / ``.run()`` / ``.next()``, read ``.figure`` /
``.figures`` / ``.result``.

* :class:`ProjectionExplorer`: t-SNE / UMAP of several models' embeddings side by side
  (paper Figure 1), with the OOD set to overlay.
* :class:`FailureViewer`: OOD images scored as in-distribution and misclassified test
  images, with their nearest training images (paper Figure 4), page by page.
* :class:`RetrainPanel`: sliders for alpha, beta, lambda, tau and the method that retrain
  a small run and redraw the projection, the score distribution (Figure 5), the AUROC and
  the loss curve. Fast mode retrains the projection head on cached backbone features
  (:func:`mclviz.evaluation.retrain_head`); full mode trains the whole network in a
  background thread (:func:`mclviz.evaluation.retrain_full`) with a live loss curve, a
  progress bar and a Stop button. The mode is named on screen.

Figures from a :class:`mclviz.evaluation.RetrainResult`: :func:`result_projection`,
:func:`result_scores`, :func:`loss_curve`.

ipywidgets is imported only when a UI is built (an ``ImportError`` says what to install);
importing this module has no side effect. Plotly figures are shown through the
``application/vnd.plotly.v1+json`` mimetype inside ``ipywidgets.Output`` widgets
(JupyterLab renders it with plotly's extension), so no ``FigureWidget`` / anywidget is
needed.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import methods
from .evaluation import (
    MODE_LABELS,
    RETRAIN_METHODS,
    RetrainResult,
    check_hyperparameters,
    retrain_full,
    retrain_head,
    score_model,
)
from .training import FeatureCache

__all__ = [
    "FailureViewer",
    "ProjectionExplorer",
    "RetrainPanel",
    "loss_curve",
    "result_label",
    "result_projection",
    "result_scores",
]

_PROJECTIONS = (("t-SNE", "tsne"), ("UMAP", "umap"))
_MODE_COLORS = {"fast": "#e8f1fb", "full": "#fdeeee"}


def _needs_rotations(method: str) -> bool:
    return methods.get(method).rotation_labels


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError(
            "mclviz.widgets needs ipywidgets (and JupyterLab to show them): "
            "pip install ipywidgets jupyterlab"
        ) from err
    return ipywidgets


# ----------------------------------------------------------------------------- figures


def result_label(result: RetrainResult) -> str:
    """Short label of a result: mode, method and the hyperparameters that matter for it."""
    p = result.params
    reads = methods.get(result.method).hyperparameters if result.method else ()
    names = {"tau": "tau", "alpha": "alpha", "beta": "beta", "lam": "lambda"}
    parts = [f"{names[k]}={p[k]:g}" for k in names if k in reads and k in p]
    mode = {"fast": "fast (head)", "full": "full", "model": ""}.get(result.mode, result.mode)
    head = " ".join(x for x in (mode, result.method) if x)
    return f"{head} ({', '.join(parts)})" if parts else head


def _ood_name(result: RetrainResult, ood: str | None) -> str:
    if not result.z_ood:
        raise ValueError("the result has no OOD set; build the cache / data with ood={...}")
    if ood is None:
        return next(iter(result.z_ood))
    if ood not in result.z_ood:
        raise ValueError(f"ood={ood!r} is not in the result; its OOD sets are {list(result.z_ood)}")
    return ood


def result_projection(
    result: RetrainResult,
    *,
    ood: str | None = None,
    method: str = "tsne",
    sample: int | None = 300,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
):
    """t-SNE / UMAP of the test projections (view 0) and one OOD set (paper Figure 1).

    Args:
        result: from ``retrain_head``, ``retrain_full`` or ``score_model``.
        ood: the OOD set drawn in grey (default the first); ``"none"`` draws test only.
        method, sample, seed, class_names, cache_dir: see
            :func:`mclviz.plots.projection_figure` (``sample`` points are drawn once from
            test + OOD).
    """
    from .plots import projection_figure

    z = result.z_test[:, 0]
    y = result.test_labels
    if ood != "none":
        name = _ood_name(result, ood)
        zo = result.z_ood[name][:, 0]
        z = torch.cat([z, zo])
        y = torch.cat([y, torch.full((len(zo),), -1, dtype=torch.long)])
    fig = projection_figure(
        {result_label(result): z},
        y,
        method=method,
        sample=sample,
        seed=seed,
        class_names=class_names,
        cache_dir=cache_dir,
    )
    return fig


def result_scores(result: RetrainResult, *, ood: str | None = None, backend: str = "plotly"):
    """Score histograms of correct / wrong test images and one OOD set (paper Figure 5)."""
    from .plots import score_distribution

    name = _ood_name(result, ood)
    fig = score_distribution(
        result.score_in, result.correct, result.score_out[name], ood_name=name, backend=backend
    )
    if backend == "plotly":
        fig.update_layout(
            title=f"{fig.layout.title.text}<br><sup>{result_label(result)}</sup>",
            title_font_size=14,
            margin_t=80,
        )
    return fig


def loss_curve(rows: Sequence[Mapping[str, float]], *, x: str = "epoch", title: str = "Loss"):
    """Line plot of the loss terms (``loss`` and, for MCL, ``ccm`` and ``spa``) against ``x``.

    Args:
        rows: dicts with ``x`` and loss terms, e.g. ``result.history`` (x="epoch") or the
            step events of :func:`mclviz.training.train` (x="step").
        x: the key for the x axis.
        title: figure title.
    """
    import plotly.graph_objects as go

    from .plots import plotly_template

    fig = go.Figure()
    xs = [float(r[x]) for r in rows]
    for key in ("loss", "ccm", "spa"):
        if rows and key in rows[0]:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[float(r[key]) for r in rows],
                    mode="lines+markers" if len(rows) < 40 else "lines",
                    name=key,
                )
            )
    fig.update_layout(
        template=plotly_template(),
        title=title,
        xaxis_title=x,
        yaxis_title="loss",
        width=520,
        height=320,
        margin=dict(l=55, r=15, t=50, b=45),
    )
    return fig


# ----------------------------------------------------------------------------- display


def _plotly_entry(fig) -> dict[str, Any]:
    """An ``Output`` widget entry showing a plotly figure through plotly's mimetype."""
    import plotly.io as pio

    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
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


def _escape(text: str) -> str:
    import html

    return html.escape(text)


class _Displayable:
    """Displays ``self.widget`` when the object is a cell's value."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ----------------------------------------------------------------------------- projections


class ProjectionExplorer(_Displayable):
    """Side-by-side t-SNE / UMAP of several models (paper Figure 1), OOD set to overlay.

    Args:
        z_test: {model name: (n, d) test embeddings}, same images in the same order.
        labels: (n,) test labels.
        z_ood: {OOD set: {model name: (n_o, d) embeddings}} (may be empty).
        class_names: names indexed by label.
        method: "tsne" or "umap" at start.
        ood: the OOD set at start (default the first; "none" for none).
        sample: points drawn from test + OOD for every panel (the same for all models).
        seed: seed of the sample and the projection.
        cache_dir: projection cache folder (see :func:`mclviz.plots.project`).

    Programmatic use: ``explorer.method.value = "umap"`` or ``explorer.set(ood="gaussian")``
    redraws; ``explorer.figure`` is the current plotly figure.
    """

    def __init__(
        self,
        z_test: Mapping[str, Any],
        labels: Any,
        z_ood: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        class_names: Sequence[str] | None = None,
        method: str = "tsne",
        ood: str | None = None,
        sample: int | None = 600,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        w = _ipywidgets()
        if not z_test:
            raise ValueError("z_test is empty; pass {model name: (n, d) embeddings}")
        self.z_test = {k: torch.as_tensor(v) for k, v in z_test.items()}
        self.labels = torch.as_tensor(labels).long()
        self.z_ood = {
            o: {k: torch.as_tensor(v) for k, v in d.items()} for o, d in (z_ood or {}).items()
        }
        for o, d in self.z_ood.items():
            missing = set(self.z_test) - set(d)
            if missing:
                raise ValueError(
                    f"z_ood[{o!r}] lacks the models {sorted(missing)}; give every "
                    "OOD set an embedding for every model of z_test"
                )
        self.class_names, self.sample, self.seed, self.cache_dir = (
            class_names,
            sample,
            seed,
            cache_dir,
        )
        options = ["none", *self.z_ood]
        if ood is None:
            ood = next(iter(self.z_ood), "none")
        if ood not in options:
            raise ValueError(f"ood={ood!r} is not one of {options}")
        if method not in dict(_PROJECTIONS).values():
            raise ValueError(f"method={method!r}: choose 'tsne' or 'umap'")
        self.method = w.ToggleButtons(options=_PROJECTIONS, value=method, description="projection")
        self.ood = w.Dropdown(options=options, value=ood, description="OOD set")
        self.status = w.HTML()
        self.out = w.Output()
        self.figure = None
        self.widget = w.VBox([w.HBox([self.method, self.ood]), self.status, self.out])
        handler = _errors_to(self.status)(lambda _change: self.update())
        self.method.observe(handler, names="value")
        self.ood.observe(handler, names="value")
        self.update()

    @classmethod
    def from_models(
        cls,
        models: Mapping[str, nn.Module],
        test: tuple[Tensor, Tensor],
        ood: Mapping[str, Tensor] | None = None,
        *,
        batch_size: int = 512,
        **kwargs: Any,
    ) -> ProjectionExplorer:
        """Embed the test and OOD images with every model (``z = g(f(x))``), then build.

        Args:
            models: {name: model}, e.g. ``{"SimCLR": ck.model, ...}``.
            test: (images, labels); ood: {name: images}.
            kwargs: see the class.
        """
        from .embed import embed

        def z(model: nn.Module, x: Tensor) -> Tensor:
            return embed(model, x, batch_size=batch_size, progress=False)[:, 0]  # (n, d)

        z_test = {name: z(m, test[0]) for name, m in models.items()}
        z_ood = {o: {name: z(m, x) for name, m in models.items()} for o, x in (ood or {}).items()}
        return cls(z_test, test[1], z_ood, **kwargs)

    def set(self, **values: Any) -> ProjectionExplorer:
        """Set ``method`` and / or ``ood`` (each change redraws); returns self."""
        for key, value in values.items():
            if key not in ("method", "ood"):
                raise ValueError(f"unknown setting {key!r}; ProjectionExplorer has method, ood")
            getattr(self, key).value = value
        return self

    def update(self):
        """Recompute the projections with the current settings and show them."""
        t0 = time.perf_counter()
        from .plots import projection_figure

        ood = self.ood.value
        emb, labels = dict(self.z_test), self.labels
        if ood != "none":
            n_o = len(next(iter(self.z_ood[ood].values())))
            emb = {k: torch.cat([v, self.z_ood[ood][k]]) for k, v in emb.items()}
            labels = torch.cat([labels, torch.full((n_o,), -1, dtype=torch.long)])
        self.status.value = "computing the projections..."
        self.figure = projection_figure(
            emb,
            labels,
            method=self.method.value,
            sample=self.sample,
            seed=self.seed,
            class_names=self.class_names,
            cache_dir=self.cache_dir,
        )
        _show(self.out, _plotly_entry(self.figure))
        self.status.value = (
            f"{self.method.label} of {len(emb)} model(s), OOD set: {ood} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        return self.figure


# ----------------------------------------------------------------------------- failures

_KINDS = (("OOD scored as in-distribution", "ood"), ("misclassified test images", "misclassified"))


class FailureViewer(_Displayable):
    """Page through a model's worst mistakes with their nearest training images (Figure 4).

    Two kinds of failure, both ranked by score, highest first (higher = more
    in-distribution): OOD images the model scores as in-distribution, and misclassified test
    images. Each row shows the failure and its ``k`` nearest training images by cosine
    distance of the projections (view 0).

    Args:
        result: from :func:`mclviz.evaluation.score_model`, ``retrain_head`` or ``retrain_full``.
        train_images: (N, 3, H, W) uint8, the rows of ``result.z_train``.
        test_images: (n, 3, H, W) uint8, the rows of ``result.z_test``.
        ood_images: {name: (n_o, 3, H, W) uint8}, the rows of ``result.z_ood[name]``.
        class_names: names indexed by label.
        per_page: failures per page.
        k: nearest training images per failure.
        ood, kind: the OOD set and kind ("ood" / "misclassified") at start.

    Programmatic use: ``viewer.next()``, ``viewer.prev()``, ``viewer.set(ood=..., kind=...)``,
    ``viewer.page``, ``viewer.cases`` (ranked indices), ``viewer.page_cases``,
    ``viewer.titles``, ``viewer.figure`` (matplotlib).
    """

    def __init__(
        self,
        result: RetrainResult,
        train_images: Tensor,
        test_images: Tensor,
        ood_images: Mapping[str, Tensor],
        *,
        class_names: Sequence[str] | None = None,
        per_page: int = 4,
        k: int = 5,
        ood: str | None = None,
        kind: str = "ood",
    ) -> None:
        w = _ipywidgets()
        if len(train_images) != len(result.z_train) or len(test_images) != len(result.z_test):
            raise ValueError(
                f"train_images ({len(train_images)}) and test_images ({len(test_images)}) must "
                f"be the images of result.z_train ({len(result.z_train)}) and result.z_test "
                f"({len(result.z_test)})"
            )
        for name, x in ood_images.items():
            if name not in result.z_ood or len(x) != len(result.z_ood[name]):
                raise ValueError(
                    f"ood_images[{name!r}] does not match result.z_ood (sets {list(result.z_ood)})"
                )
        if int(per_page) < 1 or int(k) < 1:
            raise ValueError(f"per_page={per_page} and k={k} must be positive")
        self.result = result
        self.train_images, self.test_images = train_images, test_images
        self.ood_images = dict(ood_images)
        self.class_names, self.per_page, self.k = class_names, int(per_page), int(k)
        names = list(self.ood_images)
        if not names:
            raise ValueError("ood_images is empty; pass at least one OOD set")
        ood = names[0] if ood is None else ood
        if ood not in names or kind not in dict(_KINDS).values():
            raise ValueError(
                f"ood={ood!r} must be one of {names} and kind={kind!r} one of "
                f"{[v for _, v in _KINDS]}"
            )
        self.ood = w.Dropdown(options=names, value=ood, description="OOD set")
        self.kind = w.ToggleButtons(options=_KINDS, value=kind)
        self.prev_button = w.Button(description="< previous", layout=w.Layout(width="110px"))
        self.next_button = w.Button(description="next >", layout=w.Layout(width="110px"))
        self.page_label = w.HTML()
        self.out = w.Output()
        self.page = 0
        self.figure = None
        self.titles: list[str] = []
        self.page_cases = np.zeros(0, dtype=np.int64)
        self.widget = w.VBox(
            [
                w.HBox([self.ood, self.kind]),
                w.HBox([self.prev_button, self.next_button, self.page_label]),
                self.out,
            ]
        )
        guard = _errors_to(self.page_label)
        self.ood.observe(guard(lambda _c: self.show_page(0)), names="value")
        self.kind.observe(guard(lambda _c: self.show_page(0)), names="value")
        self.prev_button.on_click(guard(lambda _b: self.prev()))
        self.next_button.on_click(guard(lambda _b: self.next()))
        self.show_page(0)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        data: Any,
        *,
        method: str = "",
        ways: int | None = 1,
        **kwargs: Any,
    ) -> FailureViewer:
        """Score ``model`` on ``data`` (an :class:`mclviz.evaluation.EvalData`) and build.

        Args:
            model: a trained contrastive model.
            data: train / test / OOD images, e.g. ``load_eval_data(...)`` with subsets.
            method: the model's method (``ways=None`` picks 4 SEI views for ``mcl``).
            ways: SEI views used for the scores (see :func:`mclviz.evaluation.score_model`).
            kwargs: see the class.
        """
        result = score_model(model, data.train, data.test, data.ood, method=method, ways=ways)
        return cls(result, data.train[0], data.test[0], data.ood, **kwargs)

    @property
    def cases(self) -> np.ndarray:
        """All failures of the current kind, ranked (indices into the OOD or test set)."""
        from .plots import failure_cases

        r = self.result
        n = max(len(r.score_in), *(len(s) for s in r.score_out.values()))
        cases = failure_cases(r.score_in, r.pred, r.test_labels, r.score_out[self.ood.value], n=n)
        return cases["ood_idx" if self.kind.value == "ood" else "misclassified_idx"]

    def table(self):
        """All failures of the current kind and OOD set as a DataFrame, highest score first.

        Columns: ``rank, kind, ood, index`` (into the OOD or test set), ``score``, ``label``
        (-1 for OOD), ``pred`` (the class the model takes the image for).
        """
        import pandas as pd

        r, ood, kind, idx = self.result, self.ood.value, self.kind.value, self.cases
        if kind == "ood":
            score = r.score_out[ood][idx]
            label = np.full(len(idx), -1)
            pred = r.pred_out[ood][idx]
        else:
            score, label, pred = r.score_in[idx], r.test_labels[idx], r.pred[idx]
        return pd.DataFrame(
            {
                "rank": np.arange(len(idx)),
                "kind": kind,
                "ood": ood,
                "index": idx,
                "score": np.asarray(score, dtype=np.float64),
                "label": np.asarray(label),
                "pred": np.asarray(pred),
            }
        )

    @property
    def n_pages(self) -> int:
        return max(1, -(-len(self.cases) // self.per_page))

    def set(self, **values: Any) -> FailureViewer:
        """Set ``ood`` and / or ``kind`` (back to page 0); returns self."""
        for key, value in values.items():
            if key not in ("ood", "kind"):
                raise ValueError(f"unknown setting {key!r}; FailureViewer has ood, kind")
            getattr(self, key).value = value
        return self

    def next(self) -> int:
        """Show the next page (stays on the last); returns the page number."""
        return self.show_page(min(self.page + 1, self.n_pages - 1))

    def prev(self) -> int:
        """Show the previous page (stays on the first); returns the page number."""
        return self.show_page(max(self.page - 1, 0))

    def _name(self, c: int) -> str:
        if self.class_names is not None and 0 <= c < len(self.class_names):
            return str(self.class_names[c])
        return f"class {c}"

    def show_page(self, page: int) -> int:
        """Draw page ``page`` (0-based) of the current kind and OOD set."""
        from .plots import failure_gallery, nearest_neighbours

        r, ood = self.result, self.ood.value
        cases = self.cases
        self.page = int(page)
        idx = cases[self.page * self.per_page : (self.page + 1) * self.per_page]
        self.page_cases = idx
        kind = self.kind.value
        if len(idx) == 0:
            self.figure, self.titles = None, []
            _show(self.out, _text_entry(f"no {dict((v, k) for k, v in _KINDS)[kind]} here\n"))
            self.page_label.value = "page 0 of 0"
            return self.page
        z_ref = r.z_train[:, 0]
        if kind == "ood":
            z_q, images = r.z_ood[ood][idx, 0], self.ood_images[ood][idx]
            scores = r.score_out[ood][idx]
            preds = r.pred_out[ood][idx]
            self.titles = [
                f"{ood} #{i}\npred {self._name(int(p))}\nscore {float(s):.3g}"
                for i, p, s in zip(idx, preds, scores, strict=True)
            ]
        else:
            z_q, images = r.z_test[idx, 0], self.test_images[idx]
            self.titles = [
                f"GT {self._name(int(r.test_labels[i]))}\npred "
                f"{self._name(int(r.pred[i]))}\nscore {float(r.score_in[i]):.3g}"
                for i in idx
            ]
        k = min(self.k, len(z_ref))
        dist, nn_idx = nearest_neighbours(z_q, z_ref, k=k)
        self.figure = failure_gallery(
            images,
            self.titles,
            self.train_images[nn_idx],
            r.train_labels[nn_idx],
            dist,
            class_names=self.class_names,
        )
        _show(self.out, _png_entry(_mpl_png(self.figure), "<failure gallery>"))
        self.page_label.value = f"page {self.page + 1} of {self.n_pages} ({len(cases)} failures)"
        return self.page


# ----------------------------------------------------------------------------- retraining


class RetrainPanel(_Displayable):
    """Sliders for the method, alpha, beta, lambda and tau that retrain and redraw.

    **Fast mode** ("Fast mode: projection head only, backbone frozen"): each change retrains
    a fresh projection head on the cached backbone features (:func:`retrain_head`, seconds)
    and redraws the projection, the score distribution, the AUROC and the loss curve.
    Results are memoised, so moving a slider back is instant.

    **Full mode** ("Full mode: whole network"): Run trains the whole network
    (:func:`retrain_full`) in a background thread, with a live loss curve, a progress bar
    and a Stop button (``should_stop``); a stopped run is still scored.

    Args:
        cache: the fast-mode :class:`~mclviz.training.FeatureCache` (with test and OOD sets).
        train: (images, labels) for full mode; test: (images, labels); ood: {name: images}.
            Full mode is available when all three and ``config`` are given.
        config: base :class:`~mclviz.config.Config` of full runs (the sliders replace
            method, tau, alpha, beta, lam and epochs), e.g. ``Config.preset("tiny")``.
        class_names: names indexed by label.
        method, tau, alpha, beta, lam: start values (the paper's by default).
        fast_epochs, full_epochs: start values of the epoch sliders.
        projection: "tsne", "umap" or "none" (no projection: fastest).
        sample: points drawn for the projection (test + OOD).
        seed: seed of the retraining and the projection.
        auto: retrain when a slider moves (fast mode).
        retrain_kwargs: extra arguments of ``retrain_head`` (``batch_size``, ``lr``, ...).

    Programmatic use: ``panel.set(alpha=0.5, method="ccm")`` (no retraining),
    ``panel.run()`` (fast: returns the result; full: ``wait=True`` joins the thread),
    ``panel.stop()``, ``panel.result``, ``panel.figures`` {"projection", "scores", "loss"},
    ``panel.export(folder)``.
    """

    def __init__(
        self,
        cache: FeatureCache,
        *,
        train: tuple[Tensor, Tensor] | None = None,
        test: tuple[Tensor, Tensor] | None = None,
        ood: Mapping[str, Tensor] | None = None,
        config: Any = None,
        class_names: Sequence[str] | None = None,
        method: str = "mcl",
        tau: float = 0.2,
        alpha: float = 0.05,
        beta: float = 2.5,
        lam: float = 1.0,
        fast_epochs: int = 10,
        full_epochs: int = 2,
        projection: str = "tsne",
        sample: int | None = 300,
        seed: int = 0,
        auto: bool = True,
        retrain_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        w = _ipywidgets()
        if not cache.ood:
            raise ValueError("cache has no OOD set; build it with ood={name: images}")
        choices = [m for m in RETRAIN_METHODS if cache.rotations == 4 or not _needs_rotations(m)]
        if method not in choices:  # the cache has no rotations for the auxiliary task
            method = "mcl-noaux" if "mcl-noaux" in choices else choices[0]
        self.cache, self.class_names = cache, class_names
        self.train, self.test, self.ood_images, self.config = train, test, dict(ood or {}), config
        self.full_available = all(v is not None for v in (train, test, ood, config))
        if self.full_available and set(self.ood_images) != set(cache.ood):
            raise ValueError(
                f"ood has the sets {sorted(self.ood_images)} but the cache has "
                f"{sorted(cache.ood)}; pass the images of the cached OOD sets"
            )
        self.sample, self.seed = sample, seed
        self.retrain_kwargs = dict(retrain_kwargs or {})
        slider = dict(
            continuous_update=False,
            style={"description_width": "70px"},
            layout=w.Layout(width="360px"),
        )
        self.mode = w.ToggleButtons(
            options=[("Fast", "fast"), ("Full", "full")],
            value="fast",
            description="mode",
            disabled=not self.full_available,
        )
        self.banner = w.HTML()
        self.method = w.Dropdown(options=choices, value=method, description="method")

        def knob(label: str, value: float, low: float, high: float, step: float):
            return w.FloatSlider(
                value=value,
                min=low,
                max=high,
                step=step,
                description=label,
                readout_format=".2f",
                **slider,
            )

        self.tau = knob("tau", tau, 0.05, 1.0, 0.01)
        # alpha and beta live in (0, 1/tau] (Eq. 3); _on_tau moves the bound with tau.
        self.alpha = knob("alpha", alpha, 0.01, 1 / tau, 0.01)
        self.beta = knob("beta", beta, 0.01, 1 / tau, 0.01)
        self.lam = knob("lambda", lam, 0.0, 3.0, 0.05)
        self.fast_epochs = w.IntSlider(
            value=fast_epochs, min=1, max=60, description="epochs", **slider
        )
        self.full_epochs = w.IntSlider(
            value=full_epochs, min=1, max=50, description="epochs", **slider
        )
        self.ood = w.Dropdown(options=list(cache.ood), description="OOD set")
        self.projection = w.ToggleButtons(
            options=[*_PROJECTIONS, ("none", "none")], value=projection, description="projection"
        )
        self.auto = w.Checkbox(value=auto, description="retrain when a slider moves", indent=False)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(
            description="Stop", button_style="danger", icon="stop", disabled=True
        )
        self.progress = w.IntProgress(
            value=0, min=0, max=1, description="progress", layout=w.Layout(width="360px")
        )
        self.status = w.HTML()
        self.metrics_html = w.HTML()
        self.loss_out, self.projection_out, self.scores_out = w.Output(), w.Output(), w.Output()
        self.result: RetrainResult | None = None
        self.figures: dict[str, Any] = {}
        self.live: list[dict[str, float]] = []  # step events of the running full run
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._hold = False
        self._memo: dict[tuple, RetrainResult] = {}
        self._last_draw = 0.0
        self.seconds: float | None = None  # time of the last fast run, retrain + redraw
        self.full_box = w.HBox([self.full_epochs, self.stop_button, self.progress])
        self.fast_box = w.HBox([self.fast_epochs, self.auto])
        self.widget = w.VBox(
            [
                self.banner,
                w.HBox([self.mode, self.method]),
                w.HBox([w.VBox([self.tau, self.alpha]), w.VBox([self.beta, self.lam])]),
                self.fast_box,
                self.full_box,
                w.HBox([self.run_button, self.ood, self.projection]),
                self.status,
                self.metrics_html,
                w.HBox([self.projection_out, self.scores_out]),
                self.loss_out,
            ]
        )
        guard = _errors_to(self.status)
        for s in (self.method, self.alpha, self.beta, self.lam, self.fast_epochs):
            s.observe(guard(self._on_param), names="value")
        self.tau.observe(guard(self._on_tau), names="value")
        self.mode.observe(guard(self._on_mode), names="value")
        self.ood.observe(guard(lambda _c: self._redraw()), names="value")
        self.projection.observe(guard(lambda _c: self._redraw()), names="value")
        self.run_button.on_click(guard(lambda _b: self.run(wait=False)))
        self.stop_button.on_click(lambda _b: self.stop())
        self._on_mode(None)
        self._sync_enabled()

    @classmethod
    def from_data(
        cls,
        model: nn.Module,
        data: Any,
        *,
        config: Any = None,
        views: int = 4,
        rotations: bool = True,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> RetrainPanel:
        """Build the feature cache from ``data`` (an :class:`mclviz.evaluation.EvalData`), then the panel.

        Args:
            model: the trained model whose backbone fast mode freezes.
            data: train / test / OOD images (``load_eval_data(...)`` with subsets).
            config: base config of full runs (default: ``Config.preset("tiny")``).
            views, rotations, generator: see :meth:`FeatureCache.build`.
            kwargs: see the class.
        """
        from .config import Config

        cache = FeatureCache.build(
            model,
            *data.train,
            views=views,
            rotations=rotations,
            test=data.test,
            ood=data.ood,
            generator=generator,
        )
        config = config if config is not None else Config.preset("tiny")
        return cls(cache, train=data.train, test=data.test, ood=data.ood, config=config, **kwargs)

    # ------------------------------------------------------------------ state
    @property
    def mode_text(self) -> str:
        """What the banner says: the mode in words."""
        return MODE_LABELS[self.mode.value]

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def params(self) -> dict[str, Any]:
        """The slider values: method, tau, alpha, beta, lam, epochs (of the current mode)."""
        epochs = self.fast_epochs.value if self.mode.value == "fast" else self.full_epochs.value
        return {
            "method": self.method.value,
            "tau": round(self.tau.value, 4),
            "alpha": round(self.alpha.value, 4),
            "beta": round(self.beta.value, 4),
            "lam": round(self.lam.value, 4),
            "epochs": int(epochs),
        }

    def set(self, **values: Any) -> RetrainPanel:
        """Set widget values by name without retraining (mode, method, tau, alpha, beta, lam,
        fast_epochs, full_epochs, ood, projection, auto); returns self."""
        known = (
            "mode",
            "method",
            "tau",
            "alpha",
            "beta",
            "lam",
            "fast_epochs",
            "full_epochs",
            "ood",
            "projection",
            "auto",
        )
        bad = [k for k in values if k not in known]
        if bad:
            raise ValueError(f"unknown setting(s) {bad}; RetrainPanel has {list(known)}")
        self._hold = True
        try:
            if "tau" in values:  # first, so that alpha / beta get their new range
                self.tau.value = values["tau"]
            for key, value in values.items():
                if key == "mode" and value == "full" and not self.full_available:
                    raise ValueError(
                        "full mode needs train, test, ood and config; build the "
                        "panel with RetrainPanel.from_data(...)"
                    )
                if key in ("alpha", "beta") and value > getattr(self, key).max:
                    raise ValueError(
                        f"{key}={value:g} exceeds 1/tau = {1 / self.tau.value:g}; "
                        "lower it or lower tau"
                    )
                getattr(self, key).value = value
        finally:
            self._hold = False
        return self

    # ------------------------------------------------------------------ handlers
    def _on_tau(self, _change) -> None:
        held, self._hold = self._hold, True
        try:  # alpha and beta live in (0, 1/tau] (Eq. 3): move the sliders' range with tau
            limit = 1.0 / self.tau.value
            for s in (self.alpha, self.beta):
                s.max = max(limit, s.min)
        finally:
            self._hold = held
        self._on_param(None)

    def _on_param(self, _change) -> None:
        self._sync_enabled()
        if self._hold:
            return
        if self.mode.value == "fast" and self.auto.value:
            self.run()
        elif self.mode.value == "full":
            self.status.value = "settings changed: press Run to train the whole network"

    def _on_mode(self, _change) -> None:
        mode = self.mode.value
        self.banner.value = (
            f"<div style='padding:6px 10px;background:{_MODE_COLORS[mode]};"
            f"border-radius:4px;font-weight:bold;font-size:15px'>"
            f"{_escape(self.mode_text)}</div>"
        )
        self.fast_box.layout.display = "" if mode == "fast" else "none"
        self.full_box.layout.display = "" if mode == "full" else "none"

    def _sync_enabled(self) -> None:
        m = self.method.value
        self.alpha.disabled = self.beta.disabled = m not in ("ccm", "mcl-noaux", "mcl")
        self.lam.disabled = m not in ("mcl-noaux", "mcl")

    # ------------------------------------------------------------------ running
    def run(self, *, wait: bool = True) -> RetrainResult | None:
        """Retrain with the current settings in the current mode and redraw.

        Fast mode runs here and returns the result. Full mode starts a background thread
        (returns None at once), or, with ``wait=True``, joins it and returns its result
        (re-raising its error).
        """
        p = self.params()
        check_hyperparameters(
            p["method"], tau=p["tau"], alpha=p["alpha"], beta=p["beta"], lam=p["lam"]
        )
        if self.mode.value == "fast":
            return self._run_fast(p)
        if self.running:
            raise ValueError("a full run is still going; press Stop or wait for it")
        self._start_full(p)
        if wait:
            self.thread.join()
            if self.error is not None:
                raise self.error
            return self.result
        return None

    def stop(self) -> None:
        """Ask a running full run to stop after its current step (it is scored still)."""
        if self.running:
            self._stop.set()
            self.status.value = "stopping after this step..."

    def _run_fast(self, p: dict[str, Any]) -> RetrainResult:
        key = tuple(sorted(p.items()))
        t0 = time.perf_counter()
        result = self._memo.get(key)
        if result is None:
            self.status.value = f"retraining the projection head ({p['method']})..."
            kwargs = {k: v for k, v in p.items() if k != "method"}
            result = retrain_head(
                self.cache, method=p["method"], seed=self.seed, **kwargs, **self.retrain_kwargs
            )
            self._memo[key] = result
        self.result = result
        self._redraw(loss_rows=result.history, x="epoch")
        self.seconds = time.perf_counter() - t0
        self.status.value = f"{_escape(result.summary())}; redrawn in {self.seconds:.1f} s"
        return result

    def _start_full(self, p: dict[str, Any]) -> None:
        cfg = self.config.replace(
            method=p["method"],
            tau=p["tau"],
            alpha=p["alpha"],
            beta=p["beta"],
            lam=p["lam"],
            epochs=p["epochs"],
            seed=self.seed,
        )
        n = len(self.train[1])
        per_epoch = max(1, n // min(cfg.batch_size, n))
        self.progress.max, self.progress.value = per_epoch * cfg.epochs, 0
        self.live, self.error = [], None
        self._stop.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"training the whole network ({cfg.method}, {cfg.epochs} epochs)..."
        self.thread = threading.Thread(
            target=self._full_worker, args=(cfg,), daemon=True, name="mclviz-full-retrain"
        )
        self.thread.start()

    def _on_step(self, event: dict[str, Any]) -> None:
        if event.get("kind") != "step":
            return
        self.live.append({k: float(v) for k, v in event.items() if k != "kind"})
        self.progress.value = min(int(event["step"]), self.progress.max)
        now = time.perf_counter()
        if now - self._last_draw > 1.0 or self.progress.value == self.progress.max:
            self._last_draw = now
            self.figures["loss"] = loss_curve(
                self.live, x="step", title="Loss (whole network, live)"
            )
            _show(self.loss_out, _plotly_entry(self.figures["loss"]))

    def _full_worker(self, cfg: Any) -> None:
        try:
            result = retrain_full(
                cfg,
                *self.train,
                test=self.test,
                ood=self.ood_images,
                callbacks=[self._on_step],
                should_stop=self._stop.is_set,
            )
            self.result = result
            self._redraw(loss_rows=self.live, x="step")
            note = " (stopped early)" if result.stopped_early else ""
            self.status.value = _escape(result.summary()) + note
        except Exception as err:  # shown on screen and re-raised by run(wait=True)
            self.error = err
            self.status.value = (
                f"<span style='color:#b00020'>full run failed: {_escape(repr(err))}</span>"
            )
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    # ------------------------------------------------------------------ drawing
    def _redraw(
        self, loss_rows: Sequence[Mapping[str, float]] | None = None, x: str = "epoch"
    ) -> None:
        r = self.result
        if r is None:
            return
        ood = self.ood.value
        if self.projection.value != "none":
            self.figures["projection"] = result_projection(
                r,
                ood=ood,
                method=self.projection.value,
                sample=self.sample,
                seed=self.seed,
                class_names=self.class_names,
            )
            self.figures["projection"].update_layout(width=520, height=440)
            _show(self.projection_out, _plotly_entry(self.figures["projection"]))
        else:
            self.figures.pop("projection", None)
            _show(self.projection_out)
        self.figures["scores"] = result_scores(r, ood=ood)
        self.figures["scores"].update_layout(  # legend below: the panel is narrow
            width=640, height=480, legend=dict(orientation="h", yanchor="top", y=-0.2)
        )
        _show(self.scores_out, _plotly_entry(self.figures["scores"]))
        if loss_rows is not None:
            title = "Loss (projection head)" if r.mode == "fast" else "Loss (whole network)"
            self.figures["loss"] = loss_curve(list(loss_rows), x=x, title=title)
            _show(self.loss_out, _plotly_entry(self.figures["loss"]))
        au = " &nbsp; ".join(f"AUROC {k}: <b>{100 * v:.2f}%</b>" for k, v in r.auroc.items())
        self.metrics_html.value = (
            f"<b>{_escape(MODE_LABELS[r.mode])}</b> &nbsp; "
            f"accuracy <b>{100 * r.accuracy:.2f}%</b> &nbsp; {au}"
        )

    def export(self, folder: str | Path, prefix: str = "retrain") -> dict[str, Path]:
        """Write the current result's table (CSV) and figures (PNG) into ``folder``.

        Files: ``{prefix}_{mode}.csv`` and ``{prefix}_{mode}_{projection|scores|loss}.png``.
        """
        from .plots import export_many

        if self.result is None:
            raise ValueError("nothing to export yet; call run() first")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{prefix}_{self.result.mode}"
        paths = {"table": folder / f"{stem}.csv"}
        self.result.table().to_csv(paths["table"], index=False)
        names = list(self.figures)
        files = export_many([(self.figures[n], folder / f"{stem}_{n}.png") for n in names])
        paths.update(zip(names, files, strict=True))
        return paths
