"""FailureViewer: page through a model's worst mistakes with their nearest training images
(paper Figure 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from ..evaluation import RetrainResult, score_model
from ..names import dataset_name
from ._display import (
    _Displayable,
    _errors_to,
    _escape,
    _ipywidgets,
    _mpl_png,
    _png_entry,
    _row,
    _show,
    _text_entry,
)

__all__ = ["FailureViewer"]

#: (button label, kind, tooltip): labels short enough for their buttons, the rest in tooltips
_KINDS = (
    (
        "OOD accepted",
        "ood",
        "OOD images the detector accepts as in-distribution at the 95%-TPR threshold, "
        "highest score first",
    ),
    (
        "misclassified",
        "misclassified",
        "test images the model classifies wrongly, highest score first",
    ),
)
_KIND_NAMES = {"ood": "OOD accepted", "misclassified": "misclassified"}


class FailureViewer(_Displayable):
    """Page through a model's worst mistakes with their nearest training images (Figure 4).

    Two kinds of failure, both ranked by score, highest first (higher = more
    in-distribution): OOD images the detector accepts as in-distribution at the threshold
    that keeps 95% of the test images (:func:`mclviz.metrics.threshold_at_tpr`, the
    operating point of the tables' FPR at 95% TPR), and misclassified test images. Each
    row shows the failure and its ``k`` nearest training images by cosine distance of the
    projections (view 0). The page line says what it counts ("37 of 2,000 Tiny ImageNet
    (resize) images are accepted ...").

    The widgets change only when the user (or code calling :meth:`set`, :meth:`next`,
    :meth:`prev`) changes them: :meth:`table`, :meth:`gallery` and :meth:`export` read any
    OOD set and kind without touching what is shown.

    Args:
        result: from :func:`mclviz.evaluation.score_model`, ``retrain_head``,
            ``retrain_full`` or :meth:`~mclviz.evaluation.RetrainResult.from_scores`.
        train_images: (N, 3, H, W) uint8, the rows of ``result.z_train``.
        test_images: (n, 3, H, W) uint8, the rows of ``result.z_test``.
        ood_images: {name: (n_o, 3, H, W) uint8}, the rows of ``result.z_ood[name]``.
        class_names: names indexed by label.
        per_page: failures per page.
        k: nearest training images per failure.
        ood, kind: the OOD set and kind ("ood" / "misclassified") at start.
        tpr: the share of test images the threshold keeps (0.95: the paper's FPR at 95% TPR).

    Programmatic use: ``viewer.next()``, ``viewer.prev()``, ``viewer.set(ood=..., kind=...)``,
    ``viewer.page``, ``viewer.cases`` (ranked indices), ``viewer.page_cases``,
    ``viewer.titles``, ``viewer.figure`` (matplotlib), ``viewer.threshold``,
    ``viewer.export(folder)``.
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
        tpr: float = 0.95,
    ) -> None:
        from ..metrics import threshold_at_tpr

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
        self.tpr = float(tpr)
        self.threshold = threshold_at_tpr(result.score_in, self.tpr)
        names = list(self.ood_images)
        if not names:
            raise ValueError("ood_images is empty; pass at least one OOD set")
        ood = names[0] if ood is None else ood
        if ood not in names or kind not in _KIND_NAMES:
            raise ValueError(
                f"ood={ood!r} must be one of {names} and kind={kind!r} one of {list(_KIND_NAMES)}"
            )
        self.ood = w.Dropdown(
            options=[(dataset_name(n), n) for n in names],
            value=ood,
            description="OOD set",
            layout=w.Layout(width="auto"),
        )
        self.kind = w.ToggleButtons(
            options=[(label, key) for label, key, _ in _KINDS],
            tooltips=[tip for _, _, tip in _KINDS],
            value=kind,
            style={"button_width": "auto"},
        )
        self.prev_button = w.Button(
            description="< previous", layout=w.Layout(width="auto"), tooltip="previous page"
        )
        self.next_button = w.Button(
            description="next >", layout=w.Layout(width="auto"), tooltip="next page"
        )
        # beside the buttons while there is room, its text wrapping (never wider than the cell)
        self.page_label = w.HTML(layout=w.Layout(flex="1 1 320px", min_width="0"))
        self.out = w.Output()
        self.page = 0
        self.figure = None
        self.titles: list[str] = []
        self.page_cases = np.zeros(0, dtype=np.int64)
        self.widget = w.VBox(
            [
                _row(w, [self.ood, self.kind]),
                _row(w, [self.prev_button, self.next_button, self.page_label]),
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
        progress: bool = True,
        **kwargs: Any,
    ) -> FailureViewer:
        """Score ``model`` on ``data`` (an :class:`mclviz.evaluation.EvalData`) and build.

        Args:
            model: a trained contrastive model.
            data: train / test / OOD images, e.g. ``load_eval_data(...)`` with subsets.
            method: the model's method (``ways=None`` picks 4 SEI views for ``mcl``).
            ways: SEI views used for the scores (see :func:`mclviz.evaluation.score_model`).
            progress: tqdm.auto bars while embedding.
            kwargs: see the class.
        """
        result = score_model(
            model, data.train, data.test, data.ood, method=method, ways=ways, progress=progress
        )
        return cls(result, data.train[0], data.test[0], data.ood, **kwargs)

    # ------------------------------------------------------------------ reading
    def _which(self, ood: str | None, kind: str | None) -> tuple[str, str]:
        ood = self.ood.value if ood is None else ood
        kind = self.kind.value if kind is None else kind
        if ood not in self.ood_images or kind not in _KIND_NAMES:
            raise ValueError(
                f"ood={ood!r} must be one of {list(self.ood_images)} and kind={kind!r} one of "
                f"{list(_KIND_NAMES)}"
            )
        return ood, kind

    def failures(self, ood: str | None = None, kind: str | None = None) -> np.ndarray:
        """The failures of a kind, ranked, highest score first (indices into the OOD set or
        the test set); default the OOD set and kind shown.

        ``"ood"``: the OOD images scored at or above :attr:`threshold` (accepted as
        in-distribution). ``"misclassified"``: the test images with ``pred != label``.
        """
        ood, kind = self._which(ood, kind)
        r = self.result
        if kind == "ood":
            s = np.asarray(r.score_out[ood], dtype=np.float64)
            accepted = np.flatnonzero(s >= self.threshold)
            return accepted[np.argsort(-s[accepted], kind="stable")].astype(np.int64)
        s = np.asarray(r.score_in, dtype=np.float64)
        wrong = np.flatnonzero(np.asarray(r.pred) != np.asarray(r.test_labels))
        return wrong[np.argsort(-s[wrong], kind="stable")].astype(np.int64)

    @property
    def cases(self) -> np.ndarray:
        """The failures of the kind and OOD set shown, ranked (see :meth:`failures`)."""
        return self.failures()

    def count_text(self, ood: str | None = None, kind: str | None = None) -> str:
        """What the failures of a kind are, counted (plain text): "37 of 2,000 Tiny
        ImageNet (resize) images are accepted as in-distribution (score ≥ -41.2, the
        threshold that keeps 95% of the test images)"."""
        ood, kind = self._which(ood, kind)
        n = len(self.failures(ood, kind))
        if kind == "ood":
            total = len(self.result.score_out[ood])
            return (
                f"{n:,} of {total:,} {dataset_name(ood)} images are accepted as "
                f"in-distribution (score ≥ {self.threshold:.3g}, the threshold that keeps "
                f"{100 * self.tpr:.0f}% of the test images)"
            )
        total = len(self.result.score_in)
        return f"{n:,} of {total:,} test images are misclassified"

    def table(self, ood: str | None = None, kind: str | None = None):
        """The failures of a kind as a DataFrame, highest score first (default: the OOD set
        and kind shown; nothing on screen changes).

        Columns: ``rank, kind, ood, index`` (into the OOD or test set), ``score``, ``label``
        (-1 for OOD), ``pred`` (the class the model takes the image for).
        """
        import pandas as pd

        ood, kind = self._which(ood, kind)
        r, idx = self.result, self.failures(ood, kind)
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

    def n_pages_of(self, ood: str | None = None, kind: str | None = None) -> int:
        return max(1, -(-len(self.failures(ood, kind)) // self.per_page))

    @property
    def n_pages(self) -> int:
        return self.n_pages_of()

    def _page_queries(
        self, ood: str, kind: str, idx: np.ndarray
    ) -> tuple[Tensor, Tensor, list[str]]:
        """(projections (q, d), images, titles) of the failures ``idx`` of a kind."""
        from ..plots import class_name

        r = self.result

        def name(c) -> str:
            return class_name(int(c), self.class_names)

        if kind == "ood":
            preds, scores = r.pred_out[ood][idx], r.score_out[ood][idx]
            titles = [
                f"OOD #{i}\npred {name(p)}\nscore {float(s):.3g}"
                for i, p, s in zip(idx, preds, scores, strict=True)
            ]
            return r.z_ood[ood][idx, 0], self.ood_images[ood][idx], titles
        titles = [
            f"GT {name(r.test_labels[i])}\npred {name(r.pred[i])}\nscore {float(r.score_in[i]):.3g}"
            for i in idx
        ]
        return r.z_test[idx, 0], self.test_images[idx], titles

    def gallery(self, ood: str | None = None, kind: str | None = None, page: int = 0):
        """(figure, titles, indices) of one page of failures, or (None, [], []) when there
        are none; default the OOD set and kind shown (nothing on screen changes)."""
        from ..plots import failure_gallery, nearest_neighbours

        ood, kind = self._which(ood, kind)
        r = self.result
        idx = self.failures(ood, kind)[page * self.per_page : (page + 1) * self.per_page]
        if len(idx) == 0:
            return None, [], idx
        z_q, images, titles = self._page_queries(ood, kind, idx)
        z_ref = r.z_train[:, 0]
        dist, nn_idx = nearest_neighbours(z_q, z_ref, k=min(self.k, len(z_ref)))
        fig = failure_gallery(
            images,
            titles,
            self.train_images[nn_idx],
            r.train_labels[nn_idx],
            dist,
            class_names=self.class_names,
        )
        return fig, titles, idx

    # ------------------------------------------------------------------ the widgets
    def set(self, **values: Any) -> FailureViewer:
        """Set ``ood`` and / or ``kind`` (back to page 0); returns self."""
        self._set_values(values, ("ood", "kind"))
        return self

    def next(self) -> int:
        """Show the next page (stays on the last); returns the page number."""
        return self.show_page(min(self.page + 1, self.n_pages - 1))

    def prev(self) -> int:
        """Show the previous page (stays on the first); returns the page number."""
        return self.show_page(max(self.page - 1, 0))

    def show_page(self, page: int) -> int:
        """Draw page ``page`` (0-based) of the current kind and OOD set."""
        self.page = int(page)
        self.figure, self.titles, self.page_cases = self.gallery(page=self.page)
        count = _escape(self.count_text())
        if self.figure is None:
            _show(self.out, _text_entry(f"no {_KIND_NAMES[self.kind.value]} image here\n"))
            self.page_label.value = f"no page: {count}"
            return self.page
        _show(self.out, _png_entry(_mpl_png(self.figure), "<failure gallery>"))
        self.page_label.value = f"page {self.page + 1} of {self.n_pages}: {count}"
        return self.page

    def export(self, folder: str | Path) -> dict[str, Path]:
        """Write the ranked failures (CSV) and their first page (PNG) of every kind and OOD
        set into ``folder``; what the viewer shows does not change.

        Files: ``failures_ood_<set>.csv`` / ``.png`` per OOD set and
        ``failures_misclassified.csv`` / ``.png`` (no PNG for a kind without failures).

        Returns:
            {file stem: path} of the files written.
        """
        from ..plots import export

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [(f"failures_ood_{o}", o, "ood") for o in self.ood_images]
        jobs.append(("failures_misclassified", self.ood.value, "misclassified"))
        paths: dict[str, Path] = {}
        for stem, ood, kind in jobs:
            paths[f"{stem}.csv"] = folder / f"{stem}.csv"
            self.table(ood, kind).to_csv(paths[f"{stem}.csv"], index=False)
            fig, _, _ = self.gallery(ood, kind, page=0)
            if fig is not None:
                paths[f"{stem}.png"] = export(fig, folder / f"{stem}.png")
        return paths
