"""``reproduce``: find (or train) the checkpoints, load the images once, evaluate every
model, then write the tables, claims, figures and the page.

Evaluation work is shared: the images are loaded once (``load_eval_data``) and passed to
``evaluate`` once per model, with the standard detectors and the baselines together
(``make_detectors``), so every detector of a model reads the same embeddings; the figures
and the claims read the embeddings and scores ``evaluate`` returns
(:class:`mclviz.evaluation.Scores`), so nothing is embedded twice (``cache_dir`` also
keeps the embeddings on disk between runs). The model table's ``detector`` column is
renamed to the ``make_detectors`` names (``mahalanobis+pre`` is the ``Mahalanobis``
detector with input pre-processing), the vocabulary of :class:`~.compared.Setting`.

Cost: on the full sets (50,000 training images fit the Gaussians of each rotation, 10,000
test images and 10,000 per OOD set, 8 SEI views for mcl / rot / mcl-noaux / mcl-openset,
1 view for the others) evaluation is about 2.2 million forward passes, most of the run's
time on a CPU (fp32, as ``evaluate`` embeds). The baselines add the penultimate features
of the six contrastive models (one view of every image: about 0.5 million forward
passes) and input pre-processing for ODIN (``ce``, ``rot``) and ``mahalanobis+pre`` (every
model) on the test and OOD images: about 0.4 million images, each a forward and backward
pass and then a forward pass. ``train_subset=10000, test_subset=2000``
cuts it five-fold; the report states the subsets it used.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..config import PRESETS, Config
from .claims import claims_table
from .compared import (
    DEFAULT_METHODS,
    OPEN_SET,
    ComparedModel,
    config_mismatch,
    expected_config,
)
from .figures import make_figures
from .html import write_html
from .ood import DEFAULT_OOD, choose_claim_ood
from .tables import (
    TABLE_ROWS,
    budget_table,
    data_caveats,
    detector_table,
    openset_table,
    precision_note,
    preset_differences_table,
    reproduced_table,
)

__all__ = ["reproduce"]

_CHECKPOINT_NAME = "checkpoint.safetensors"


# ----------------------------------------------------------------------------- checkpoints


def _find_checkpoint(name: str, folder: Path) -> tuple[Path | None, str, dict[str, Any]]:
    """(path, reason when there is none, manifest entry) for model ``name`` in ``folder``."""
    from .. import zoo

    entry = dict(zoo.manifest(folder).get(name, {}))
    try:
        path = zoo.shipped_checkpoint(name, folder)
    except ValueError as err:
        return None, f"the checkpoint for {name} fails its sha256 check ({err})", entry
    if path is None and (folder / name / _CHECKPOINT_NAME).is_file():
        path = folder / name / _CHECKPOINT_NAME
    if path is None:
        return None, f"no checkpoint for {name}", entry
    return path, "", entry


def _train_one(
    name: str, preset: str, out: Path, data_root: str | None, progress: bool
) -> tuple[Path, float]:
    """Train (or resume) ``name`` with ``preset`` into ``out/runs/name``; (path, wall s).

    The images are passed to ``train`` so that the saved config holds no data root: a run
    resumes whichever data root the next call names.
    """
    from ..training import prepare_data, train

    config = Config.preset(preset, **expected_config(name))
    images = prepare_data(config.replace(data_root=data_root))
    run_dir = out / "runs" / name
    ck_path = run_dir / _CHECKPOINT_NAME
    before = ck_path.stat().st_mtime_ns if ck_path.exists() else None
    result = train(config, out=run_dir, resume=True, data=images, progress=progress)
    # wall time summed over the sessions that trained (a finished run is only reloaded)
    log = run_dir / "train_seconds.json"
    seconds = json.loads(log.read_text())["seconds"] if log.exists() else 0.0
    if ck_path.stat().st_mtime_ns != before:
        seconds += float(result.seconds)
        log.write_text(json.dumps({"seconds": seconds}))
    return Path(result.checkpoint), seconds


def _wall_time(
    entry: dict[str, Any], metrics: dict[str, Any], path: Path | None = None
) -> float | None:
    """Training wall time: the manifest's or checkpoint's record, or train=True's log."""
    log = path.parent / "train_seconds.json" if path is not None else None
    logged = json.loads(log.read_text()) if log is not None and log.is_file() else {}
    for source in (entry.get("metrics", {}), entry, metrics, logged):
        for key in ("seconds", "train_seconds", "wall_seconds", "wall_time"):
            value = source.get(key) if isinstance(source, dict) else None
            if isinstance(value, int | float):
                return float(value)
    return None


@dataclass
class _Run:
    """The checked settings of one ``reproduce`` run (see its arguments)."""

    out: Path
    train: bool
    preset: str
    folder: Path | None  # the checkpoints' folder (None with train=True)
    data_root: str | None
    train_subset: int | None
    test_subset: int | None
    ood: tuple[str, ...]
    claim_ood: str
    precision: str
    device: torch.device
    n_boot: int
    figures: bool
    progress: bool
    cache: Path  # the embedding cache
    started: float = field(default_factory=time.perf_counter)  # when the run began


def _locate_checkpoints(models: dict[str, ComparedModel], run: _Run, bar) -> None:
    """Step 1: each model's checkpoint, trained here or found, loaded and checked."""
    from ..checkpoint import load

    for n, m in models.items():
        bar.set_postfix_str(f"{'train' if run.train else 'find'} {n}")
        if run.train:
            m.path, m.train_seconds = _train_one(
                n, run.preset, run.out, run.data_root, run.progress
            )
        else:
            m.path, m.status, m.manifest_entry = _find_checkpoint(n, run.folder)
        if m.path is not None:
            m.checkpoint = load(m.path, device=run.device)
            m.status = config_mismatch(n, m.checkpoint.config)
            if m.train_seconds is None:
                m.train_seconds = _wall_time(m.manifest_entry, m.checkpoint.metrics, m.path)
        bar.update(1)


# ----------------------------------------------------------------------------- evaluation


def _load_data(models: dict[str, ComparedModel], run: _Run):
    """Step 2: the closed-set images, and the open-set ones when its model is there."""
    from ..evaluation import load_eval_data

    subsets = dict(
        data_root=run.data_root, train_subset=run.train_subset, test_subset=run.test_subset
    )
    data = load_eval_data("cifar10", ood=run.ood, **subsets)
    open_model = models.get(OPEN_SET)
    open_data = None
    if open_model is not None and open_model.checkpoint is not None and not open_model.status:
        known = open_model.checkpoint.config.known_classes
        open_data = load_eval_data("cifar10", ood=(), known_classes=known, **subsets)
    return data, open_data


def _detectors(m: ComparedModel) -> tuple[list, dict[str, str], dict[str, str]]:
    """The detectors one model is evaluated with: the standard ones (its SEI views) and
    every baseline that applies; ({detector key: make_detectors name}, {name: why not})."""
    from ..evaluation import BASELINES, detector_unavailable, make_detectors, standard_detectors

    config = m.checkpoint.config
    dets = standard_detectors(config.method_entry, sei=m.sei)
    names = {d.key: d.name for d in dets}
    not_run: dict[str, str] = {}
    for name in BASELINES:
        reason = detector_unavailable(name, config)
        if reason:
            not_run[name] = f"n/a ({reason})"
            continue
        (det,) = make_detectors([name], config)
        if det.key not in names:  # MSP is standard for classifiers already
            dets.append(det)
            names[det.key] = name
    return dets, names, not_run


def _evaluate_all(models: dict[str, ComparedModel], data, open_data, run: _Run, bar) -> None:
    """Step 3: ``evaluate`` every model found on the shared images, once, with the standard
    detectors and the baselines (one set of embeddings per model; table and scores)."""
    from ..evaluation import evaluate

    for n, m in models.items():
        bar.set_postfix_str(f"evaluate {n}")
        if m.checkpoint is not None and not m.status:
            dets, names, m.not_run = _detectors(m)
            try:
                m.table, m.scores = evaluate(
                    m.checkpoint,
                    precision=run.precision,
                    ood=run.ood if n != OPEN_SET else (),
                    detectors=dets,
                    data=open_data if n == OPEN_SET else data,
                    cache_dir=run.cache,
                    progress=run.progress,
                    return_scores=True,
                )
            except ValueError as err:  # e.g. too few training images per class
                m.status = f"evaluating {n} failed: {err}"
            else:
                # one vocabulary: the make_detectors names ("mahalanobis+pre" is the
                # Mahalanobis detector with input pre-processing)
                m.table["detector"] = m.table["key"].map(names)
                m.eval_seconds = float(m.table.attrs.get("seconds", 0.0))
        bar.update(1)


# ----------------------------------------------------------------------------- files


def _results_table(models: dict[str, ComparedModel]) -> pd.DataFrame:
    """Every ``evaluate`` row of every evaluated model, ``model`` first."""
    results = pd.concat(
        [m.table.assign(model=n) for n, m in models.items() if m.ok] or [pd.DataFrame()],
        ignore_index=True,
    )
    if len(results):
        results = results[["model", *[c for c in results.columns if c != "model"]]]
    return results


def _run_info(models: dict[str, ComparedModel], data, run: _Run) -> dict[str, Any]:
    """What the page's header and caveats say of this run."""
    source = (
        f"trained here with preset {run.preset!r} into {run.out / 'runs'}"
        if run.train
        else f"checkpoints in {run.folder}"
    )
    return {
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "platform": f"{platform.platform()}, {torch.get_num_threads()} threads, eval on "
        f"{run.device} ({precision_note(models)} embeddings)",
        "seconds": time.perf_counter() - run.started,
        "source": source,
        "n_train": len(data.train[1]),
        "n_test": len(data.test[1]),
        "n_ood": {k: len(v) for k, v in data.ood.items()},
        "n_boot": run.n_boot,
        "subsets": (
            f"test_subset={run.test_subset} (seed 0; OOD sets seed 2, open-set unknowns "
            f"seed 1), train_subset={run.train_subset} (seed 0)"
        ),
    }


def _write_report(models: dict[str, ComparedModel], data, run: _Run, bar) -> Path:
    """Steps 4-6: claims and tables, figures, then the CSVs and the page."""
    from ..data import class_names

    bar.set_postfix_str("claims")
    claims = claims_table(models, run.claim_ood, n_boot=run.n_boot)
    tables = {name: reproduced_table(name, models, run.ood) for name in TABLE_ROWS}
    detectors = detector_table(models)
    openset = openset_table(models)
    budget, diffs = budget_table(models), preset_differences_table(models, run.preset)
    bar.update(1)

    bar.set_postfix_str("figures")
    if run.figures:
        names = class_names("cifar10", run.data_root)
        files, notes, interactive = make_figures(models, data, run.claim_ood, names, run.out)
    else:
        files, interactive = {}, {}
        notes = {k: f"Figure {k[3]} not made (figures=False)." for k in ("fig1", "fig4", "fig5")}
    bar.update(1)

    results = _results_table(models)
    csvs = {"results": results, "claims": claims, **tables, "detectors": detectors}
    csvs.update(openset=openset, budget=budget, preset_differences=diffs)
    for name, df in csvs.items():
        df.to_csv(run.out / f"{name}.csv", index=False)
    index = run.out / "index.html"
    write_html(
        index,
        claims=claims,
        tables=tables,
        openset=openset,
        budget=budget,
        diffs=diffs,
        caveats=data_caveats(run.data_root),
        files=files,
        notes=notes,
        info=_run_info(models, data, run),
        ood=run.ood,
        claim_ood=run.claim_ood,
        preset=run.preset,
        detectors=detectors,
        results=results,
        models=list(models),
        interactive=interactive,
    )
    bar.update(1)
    return index


def _check_arguments(
    methods: tuple[str, ...],
    ood: tuple[str, ...],
    preset: str,
    test_subset: int | None,
    train_subset: int | None,
    n_boot: int,
    train: bool,
    checkpoints: str | Path | None,
) -> Path | None:
    """Raise on a bad argument before any work; the checkpoint folder (None with train)."""
    unknown = [m for m in methods if m not in DEFAULT_METHODS]
    if unknown:
        raise ValueError(
            f"methods={list(methods)} holds {unknown}; choose among {list(DEFAULT_METHODS)}"
        )
    if not ood:
        raise ValueError(
            "ood=() is empty; pass at least one OOD set, e.g. ood=('tinyimagenet-resize',)"
        )
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not known; choose one of {sorted(PRESETS)}")
    for name, value in (("test_subset", test_subset), ("train_subset", train_subset)):
        if value is not None and int(value) < 1:
            raise ValueError(f"{name}={value!r} must be a positive number of images or None")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot={n_boot!r} must be a positive number of resamples (e.g. 1000)")
    if train and checkpoints is not None:
        raise ValueError(
            "pass either train=True (retrain into out/runs) or checkpoints=DIR, not both"
        )
    if train:
        return None
    from .. import zoo

    folder = Path(checkpoints) if checkpoints is not None else zoo.checkpoints_dir()
    if checkpoints is not None and not folder.is_dir():
        raise FileNotFoundError(
            f"checkpoints={str(checkpoints)!r} is not a folder; pass "
            "the folder holding manifest.json or <model>/"
            f"{_CHECKPOINT_NAME}"
        )
    return folder


# ----------------------------------------------------------------------------- entry point


def reproduce(
    out: str | Path = "report",
    *,
    train: bool = False,
    preset: str = "small",
    checkpoints: str | Path | None = None,
    data_root: str | None = None,
    test_subset: int | None = None,
    train_subset: int | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    ood: Sequence[str] = DEFAULT_OOD,
    open_set: bool = True,
    progress: bool = True,
    device: str = "auto",
    n_boot: int = 1000,
    cache_dir: str | Path | None = None,
    figures: bool = True,
    precision: str = "auto",
) -> Path:
    """Evaluate the paper's comparison and write the report into ``out``.

    Args:
        out: report folder (created); ``index.html``, CSVs and figures go there.
        train: retrain every model with ``preset`` first, into ``out/runs/<model>``
            (resumed when a run is there); otherwise use ``checkpoints``.
        preset: the training preset (``train=True``), and the recipe each checkpoint is
            compared with field by field in the report.
        checkpoints: folder of checkpoints (``manifest.json``, or ``<model>/
            checkpoint.safetensors``); default: the shipped ones (``mclviz.zoo``).
        data_root: data root (default ``$MCLVIZ_DATA``); its README's caveats are quoted.
        test_subset: use this many test images, and as many of each OOD set (seeded).
        train_subset: fit the class Gaussians (and find the nearest neighbours of Figure 4)
            on this many training images (seeded); training itself uses the preset's data.
        methods: the models of the comparison (a subset of ``DEFAULT_METHODS``); those
            left out are reported as not tested.
        ood: OOD sets (``mclviz.data`` names); the claims use ``tinyimagenet-resize`` when
            it is there, else the first.
        open_set: also evaluate ``mcl-openset`` (trained with ``train=True``).
        progress: tqdm.auto progress bars.
        device: where models are evaluated (``"auto"``: the first GPU when there is one,
            as ``evaluate``; ``"cpu"``, ``"cuda"``).
        n_boot: bootstrap resamples of each claim's AUROC difference.
        cache_dir: embedding cache (kept for re-runs); default a temporary folder removed
            at the end.
        figures: make Figures 1, 4 and 5 (False: tables and claims only, faster).
        precision: embedding precision for ``evaluate`` (``"auto"``: bf16 where the
            device does it fast, measured to move AUROC by < 0.001; ``"fp32"``: exact).

    Returns:
        Path of ``out/index.html``.

    Cost: see the module docstring; ``train_subset=10000, test_subset=2000`` cuts it
    five-fold, and the report states the subsets it used.

    >>> reproduce("report", checkpoints="runs", test_subset=2000)  # doctest: +SKIP
    PosixPath('report/index.html')
    """
    from tqdm.auto import tqdm

    from ..device import resolve_device

    methods, ood = tuple(methods), tuple(ood)
    folder = _check_arguments(
        methods, ood, preset, test_subset, train_subset, n_boot, train, checkpoints
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="mclviz-report-") if cache_dir is None else None
    run = _Run(
        out=out,
        train=train,
        preset=preset,
        folder=folder,
        data_root=data_root,
        train_subset=train_subset,
        test_subset=test_subset,
        ood=ood,
        claim_ood=choose_claim_ood(ood),
        precision=precision,
        device=resolve_device(device),
        n_boot=int(n_boot),
        figures=figures,
        progress=progress,
        cache=Path(tmp if tmp is not None else cache_dir),
    )
    names = [*methods, *([OPEN_SET] if open_set else [])]
    models = {n: ComparedModel.for_name(n) for n in names}
    bar = tqdm(total=2 * len(names) + 4, desc="reproduce", unit="task", disable=not progress)
    try:
        _locate_checkpoints(models, run, bar)
        bar.set_postfix_str("load data")
        data, open_data = _load_data(models, run)
        bar.update(1)
        _evaluate_all(models, data, open_data, run, bar)
        return _write_report(models, data, run, bar)
    finally:
        bar.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
