"""ProjectionExplorer: t-SNE / UMAP of several models side by side (paper Figure 1)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..names import dataset_name
from ._display import (
    _PROJECTIONS,
    _Displayable,
    _errors_to,
    _escape,
    _ipywidgets,
    _plotly_entry,
    _row,
    _show,
)

__all__ = ["ProjectionExplorer"]


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
        progress: a tqdm.auto bar over the panels while the first view is computed (in
            the cell that builds the explorer); later redraws say which panel they are at
            in the status line.

    The OOD sets are named by :func:`mclviz.names.dataset_name` in the menu, the legend and
    the hover box; the panels wrap into a grid that fits the cell.

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
        progress: bool = True,
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
        menu = [("none (test images only)", "none")]
        menu += [(dataset_name(o), o) for o in self.z_ood]
        if ood is None:
            ood = next(iter(self.z_ood), "none")
        if ood not in options:
            raise ValueError(f"ood={ood!r} is not one of {options}")
        if method not in dict(_PROJECTIONS).values():
            raise ValueError(f"method={method!r}: choose 'tsne' or 'umap'")
        self.method = w.ToggleButtons(
            options=_PROJECTIONS,
            value=method,
            description="projection",
            tooltips=["t-SNE (scikit-learn)", "UMAP (umap-learn; its first call compiles)"],
            style={"button_width": "auto"},
        )
        self.ood = w.Dropdown(
            options=menu,
            value=ood,
            description="OOD set",
            style={"description_width": "initial"},
            layout=w.Layout(width="auto"),
        )
        self.status = w.HTML()
        self.out = w.Output()
        self.figure = None
        self.widget = w.VBox([_row(w, [self.method, self.ood]), self.status, self.out])
        handler = _errors_to(self.status)(lambda _change: self.update())
        self.method.observe(handler, names="value")
        self.ood.observe(handler, names="value")
        self.update(progress=progress)

    @classmethod
    def from_models(
        cls,
        models: Mapping[str, nn.Module],
        test: tuple[Tensor, Tensor],
        ood: Mapping[str, Tensor] | None = None,
        *,
        batch_size: int = 512,
        progress: bool = True,
        **kwargs: Any,
    ) -> ProjectionExplorer:
        """Embed the test and OOD images with every model (``z = g(f(x))``), then build.

        Args:
            models: {name: model}, e.g. ``{"SimCLR": ck.model, ...}``.
            test: (images, labels); ood: {name: images}.
            progress: tqdm.auto bars while embedding and projecting.
            kwargs: see the class.
        """
        from ..embed import embed

        def z(model: nn.Module, x: Tensor) -> Tensor:
            return embed(model, x, batch_size=batch_size, progress=progress)[:, 0]  # (n, d)

        z_test = {name: z(m, test[0]) for name, m in models.items()}
        z_ood = {o: {name: z(m, x) for name, m in models.items()} for o, x in (ood or {}).items()}
        return cls(z_test, test[1], z_ood, progress=progress, **kwargs)

    def set(self, **values: Any) -> ProjectionExplorer:
        """Set ``method`` and / or ``ood`` (each change redraws); returns self."""
        self._set_values(values, ("method", "ood"))
        return self

    def update(self, *, progress: bool = False):
        """Recompute the projections with the current settings and show them.

        Args:
            progress: a tqdm.auto bar over the panels (else the status line counts them).
        """
        t0 = time.perf_counter()
        from ..plots import projection_figure

        ood = self.ood.value
        emb, labels = dict(self.z_test), self.labels
        if ood != "none":
            n_o = len(next(iter(self.z_ood[ood].values())))
            emb = {k: torch.cat([v, self.z_ood[ood][k]]) for k, v in emb.items()}
            labels = torch.cat([labels, torch.full((n_o,), -1, dtype=torch.long)])
        label = self.method.label

        def tell(done: int, total: int, model: str) -> None:
            self.status.value = _escape(
                f"computing the {label} of {model} (panel {done + 1} of {total})..."
            )

        self.figure = projection_figure(
            emb,
            labels,
            method=self.method.value,
            ood_name=dataset_name(ood) if ood != "none" else "OOD",
            sample=self.sample,
            seed=self.seed,
            class_names=self.class_names,
            cache_dir=self.cache_dir,
            progress=True if progress else tell,
        )
        _show(self.out, _plotly_entry(self.figure))
        shown = dataset_name(ood) if ood != "none" else "none"
        self.status.value = _escape(
            f"{label} of {len(emb)} model(s), OOD set: {shown} ({time.perf_counter() - t0:.1f} s)"
        )
        return self.figure
