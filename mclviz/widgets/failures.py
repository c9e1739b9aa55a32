"""FailureViewer: page through a model's worst mistakes with their nearest training images
(paper Figure 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from ..evaluation import RetrainResult, score_model
from ._display import (
    _Displayable,
    _errors_to,
    _ipywidgets,
    _mpl_png,
    _png_entry,
    _show,
    _text_entry,
)

__all__ = ["FailureViewer"]

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
        from ..plots import failure_cases

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
        self._set_values(values, ("ood", "kind"))
        return self

    def next(self) -> int:
        """Show the next page (stays on the last); returns the page number."""
        return self.show_page(min(self.page + 1, self.n_pages - 1))

    def prev(self) -> int:
        """Show the previous page (stays on the first); returns the page number."""
        return self.show_page(max(self.page - 1, 0))

    def _page_queries(self, idx: np.ndarray) -> tuple[Tensor, Tensor, list[str]]:
        """(projections (q, d), images, titles) of the failures ``idx`` of the current kind."""
        from ..plots import class_name

        r, ood = self.result, self.ood.value

        def name(c) -> str:
            return class_name(int(c), self.class_names)

        if self.kind.value == "ood":
            preds, scores = r.pred_out[ood][idx], r.score_out[ood][idx]
            titles = [
                f"{ood} #{i}\npred {name(p)}\nscore {float(s):.3g}"
                for i, p, s in zip(idx, preds, scores, strict=True)
            ]
            return r.z_ood[ood][idx, 0], self.ood_images[ood][idx], titles
        titles = [
            f"GT {name(r.test_labels[i])}\npred {name(r.pred[i])}\nscore {float(r.score_in[i]):.3g}"
            for i in idx
        ]
        return r.z_test[idx, 0], self.test_images[idx], titles

    def show_page(self, page: int) -> int:
        """Draw page ``page`` (0-based) of the current kind and OOD set."""
        from ..plots import failure_gallery, nearest_neighbours

        r, cases = self.result, self.cases
        self.page = int(page)
        idx = cases[self.page * self.per_page : (self.page + 1) * self.per_page]
        self.page_cases = idx
        if len(idx) == 0:
            self.figure, self.titles = None, []
            kind = dict((v, k) for k, v in _KINDS)[self.kind.value]
            _show(self.out, _text_entry(f"no {kind} here\n"))
            self.page_label.value = "page 0 of 0"
            return self.page
        z_q, images, self.titles = self._page_queries(idx)
        z_ref = r.z_train[:, 0]
        dist, nn_idx = nearest_neighbours(z_q, z_ref, k=min(self.k, len(z_ref)))
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
