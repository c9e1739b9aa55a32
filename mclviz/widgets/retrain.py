"""RetrainPanel: sliders for the method, alpha, beta, lambda and tau that retrain and redraw.

Fast mode retrains the projection head on cached backbone features
(:func:`mclviz.evaluation.retrain_head`); full mode trains the whole network in a
background thread (:func:`mclviz.evaluation.retrain_full`) with a live loss curve, a
progress bar and a Stop button. The mode is named on screen.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import methods
from ..evaluation import (
    MODE_LABELS,
    RETRAIN_METHODS,
    RetrainResult,
    check_hyperparameters,
    retrain_full,
    retrain_head,
)
from ..names import dataset_name, method_name
from ..training import FeatureCache
from ._display import (
    _PROJECTIONS,
    _Displayable,
    _errors_to,
    _escape,
    _figure_box,
    _ipywidgets,
    _plotly_entry,
    _row,
    _show,
)
from .figures import loss_curve, result_projection, result_scores

__all__ = ["RetrainPanel"]

_MODE_COLORS = {"fast": "#e8f1fb", "full": "#fdeeee"}
#: the names ``RetrainPanel.set`` accepts: its widgets
_SETTINGS = (
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


#: the log sliders of alpha and beta: from 0.01 to 1/tau, steps of 10**0.01 (2.3% each)
_LOG_LOW, _LOG_STEP = 0.01, 0.01


def _needs_rotations(method: str) -> bool:
    return methods.get(method).rotation_labels


def _timing(result: RetrainResult) -> str:
    """The status line of a finished run, the mode left to the banner: what was trained,
    how long it took."""
    s = result.seconds
    what = "head retrained" if result.mode == "fast" else "whole network trained"
    return (
        f"{method_name(result.method)}: {what} in {s.get('train', 0):.1f} s, scored in "
        f"{s.get('score', 0):.1f} s ({result.ways}-way SEI)"
    )


class RetrainPanel(_Displayable):
    """Sliders for the method, alpha, beta, lambda and tau that retrain and redraw.

    The mode is named once, in the banner at the top. alpha and beta have log-scale
    sliders (``FloatLogSlider``) over [0.01, 1/tau]: equal drags multiply the value by
    equal factors, so the paper's 0.05 is as easy to reach as 2.5; their readouts take a
    typed value. Every row wraps in a narrow cell, and the figures sit side by side when
    there is room for both, one under the other when not.

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
        self._make_controls(w, choices, method, tau, alpha, beta, lam)
        self._make_run_controls(w, fast_epochs, full_epochs, projection, auto)
        self.widget = self._layout(w)
        self._connect()
        self._on_mode(None)
        self._sync_enabled()

    def _make_controls(self, w, choices, method, tau, alpha, beta, lam) -> None:
        """The mode toggle, the method and the loss sliders (tau, alpha, beta, lambda)."""
        self.mode = w.ToggleButtons(
            options=[("Fast", "fast"), ("Full", "full")],
            value="fast",
            description="mode",
            disabled=not self.full_available,
            tooltips=[MODE_LABELS["fast"], MODE_LABELS["full"]],
            style={"button_width": "auto"},
        )
        self.banner = w.HTML()
        self.method = w.Dropdown(
            options=[(method_name(m), m) for m in choices],
            value=method,
            description="method",
            layout=w.Layout(width="auto"),
        )
        slider = self._slider_style(w)

        def knob(label: str, value: float, low: float, high: float, step: float, tip: str):
            return w.FloatSlider(
                value=value,
                min=low,
                max=high,
                step=step,
                description=label,
                tooltip=tip,
                readout_format=".2f",
                **slider,
            )

        def log_knob(label: str, value: float, tip: str):
            # alpha and beta live in (0, 1/tau] (Eq. 3); _on_tau moves the bound with tau
            return w.FloatLogSlider(
                value=value,
                base=10,
                min=math.log10(_LOG_LOW),
                max=math.log10(1 / tau),
                step=_LOG_STEP,
                description=label,
                tooltip=tip,
                readout_format=".3g",
                **slider,
            )

        self.tau = knob("tau", tau, 0.05, 1.0, 0.01, "temperature of the contrastive loss")
        self.alpha = log_knob("alpha", alpha, "CCM's temperature of same-label views (Eq. 3)")
        self.beta = log_knob(
            "beta", beta, "CCM's temperature of same-class, other-rotation views (Eq. 11)"
        )
        self.lam = knob("lambda", lam, 0.0, 3.0, 0.05, "weight of the SPA loss (Eq. 10)")

    @staticmethod
    def _slider_style(w) -> dict[str, Any]:
        return dict(
            continuous_update=False,
            style={"description_width": "70px"},
            layout=w.Layout(width="360px"),
        )

    def _make_run_controls(self, w, fast_epochs, full_epochs, projection, auto) -> None:
        """Epochs, OOD set, projection, Run / Stop, progress, and the outputs."""
        slider = self._slider_style(w)
        self.fast_epochs = w.IntSlider(
            value=fast_epochs, min=1, max=60, description="epochs", **slider
        )
        self.full_epochs = w.IntSlider(
            value=full_epochs, min=1, max=50, description="epochs", **slider
        )
        self.ood = w.Dropdown(
            options=[(dataset_name(o), o) for o in self.cache.ood],
            description="OOD set",
            layout=w.Layout(width="auto"),
        )
        self.projection = w.ToggleButtons(
            options=[*_PROJECTIONS, ("none", "none")],
            value=projection,
            description="projection",
            tooltips=["t-SNE", "UMAP (its first call compiles)", "no projection (fastest)"],
            style={"button_width": "auto"},
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
        self.projection_out, self.scores_out = _figure_box(w), _figure_box(w)
        self.loss_out = w.Output()

    def _layout(self, w):
        self.full_box = _row(w, [self.full_epochs, self.stop_button, self.progress])
        self.fast_box = _row(w, [self.fast_epochs, self.auto])
        return w.VBox(
            [
                self.banner,
                _row(w, [self.mode, self.method]),
                _row(w, [w.VBox([self.tau, self.alpha]), w.VBox([self.beta, self.lam])]),
                self.fast_box,
                self.full_box,
                _row(w, [self.run_button, self.ood, self.projection]),
                self.status,
                self.metrics_html,
                _row(w, [self.projection_out, self.scores_out]),
                self.loss_out,
            ]
        )

    def _connect(self) -> None:
        """Observe the widgets; a handler's ValueError is shown in the status line."""
        guard = _errors_to(self.status)
        for s in (self.method, self.alpha, self.beta, self.lam, self.fast_epochs):
            s.observe(guard(self._on_param), names="value")
        self.tau.observe(guard(self._on_tau), names="value")
        self.mode.observe(guard(self._on_mode), names="value")
        self.ood.observe(guard(lambda _c: self._redraw()), names="value")
        self.projection.observe(guard(lambda _c: self._redraw()), names="value")
        self.run_button.on_click(guard(lambda _b: self.run(wait=False)))
        self.stop_button.on_click(lambda _b: self.stop())

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
        progress: bool = True,
        **kwargs: Any,
    ) -> RetrainPanel:
        """Build the feature cache from ``data`` (an :class:`mclviz.evaluation.EvalData`), then the panel.

        Args:
            model: the trained model whose backbone fast mode freezes.
            data: train / test / OOD images (``load_eval_data(...)`` with subsets).
            config: base config of full runs (default: ``Config.preset("tiny")``).
            views, rotations, generator: see :meth:`FeatureCache.build`.
            progress: a tqdm.auto bar over the backbone's passes on the augmented
                training images (the slow part; the plain, test and OOD images follow).
            kwargs: see the class.
        """

        from ..config import Config

        cache = FeatureCache.build(
            model,
            *data.train,
            views=views,
            rotations=rotations,
            test=data.test,
            ood=data.ood,
            generator=generator,
            progress=progress,
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
        bad = [k for k in values if k not in _SETTINGS]
        if bad:
            raise ValueError(f"unknown setting(s) {bad}; RetrainPanel has {list(_SETTINGS)}")
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
                if key in ("alpha", "beta") and value > (1 + 1e-9) / self.tau.value:
                    raise ValueError(
                        f"{key}={value:g} exceeds 1/tau = {1 / self.tau.value:g}; "
                        "lower it or lower tau"
                    )
                if key in ("alpha", "beta") and value < _LOG_LOW * (1 - 1e-9):
                    raise ValueError(
                        f"{key}={value:g} is below the slider's lowest value {_LOG_LOW:g}; "
                        f"pass {key} >= {_LOG_LOW:g} (the paper: alpha=0.05, beta=2.5)"
                    )
                getattr(self, key).value = value
        finally:
            self._hold = False
        return self

    # ------------------------------------------------------------------ handlers
    def _on_tau(self, _change) -> None:
        held, self._hold = self._hold, True
        try:  # alpha and beta live in (0, 1/tau] (Eq. 3): move the sliders' range with tau
            top = math.log10(1.0 / self.tau.value)  # the log sliders' bounds are exponents
            for s in (self.alpha, self.beta):
                s.max = max(top, s.min)
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
        reads = methods.get(self.method.value).hyperparameters  # the registry's entry
        self.alpha.disabled = self.beta.disabled = "alpha" not in reads
        self.lam.disabled = "lam" not in reads

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
        self.status.value = f"{_escape(_timing(result))}; redrawn in {self.seconds:.1f} s"
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
        self.status.value = (
            f"training the whole network ({method_name(cfg.method)}, {cfg.epochs} epochs)..."
        )
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
            self.status.value = _escape(_timing(result)) + note
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
            _show(self.projection_out, _plotly_entry(self.figures["projection"]))
        else:
            self.figures.pop("projection", None)
            _show(self.projection_out)
        self.figures["scores"] = result_scores(r, ood=ood)
        _show(self.scores_out, _plotly_entry(self.figures["scores"]))
        if loss_rows is not None:
            title = "Loss (projection head)" if r.mode == "fast" else "Loss (whole network)"
            self.figures["loss"] = loss_curve(list(loss_rows), x=x, title=title)
            _show(self.loss_out, _plotly_entry(self.figures["loss"]))
        au = " &nbsp; ".join(
            f"AUROC {_escape(dataset_name(k))}: <b>{100 * v:.1f}%</b>" for k, v in r.auroc.items()
        )
        self.metrics_html.value = f"accuracy <b>{100 * r.accuracy:.1f}%</b> &nbsp; {au}"

    def export(self, folder: str | Path, prefix: str = "retrain") -> dict[str, Path]:
        """Write the current result's table (CSV) and figures (PNG) into ``folder``.

        Files: ``{prefix}_{mode}.csv`` and ``{prefix}_{mode}_{projection|scores|loss}.png``.
        """
        from ..plots import export_many

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
