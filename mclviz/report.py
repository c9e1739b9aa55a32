"""``python -m mclviz reproduce``: do the paper's claims hold on our data and budget?

``reproduce(out)`` evaluates every model of the paper's comparison on CIFAR-10 (IND) with
the OOD sets we have (Tiny ImageNet resized to 32x32, Gaussian and uniform noise) and the
open-set split (6 known / 4 unknown CIFAR-10 classes), then writes into ``out/``:

* ``index.html``: one self-contained page (tables as HTML, figures as embedded PNG): the
  verdict on each claim, the budget and data caveats, Tables 1-5 in the paper's shape with
  the published numbers beside ours and the differences, the open-set table, Figures 1, 4
  and 5;
* ``table1.csv`` ... ``table5.csv``, ``openset.csv``, ``claims.csv``, ``budget.csv``,
  ``preset_differences.csv`` and ``results.csv`` (every ``evaluate`` row of every model,
  fractions as ``evaluate`` returns them; the table CSVs are in percent, as the paper);
* ``fig1_projection``, ``fig4_failures``, ``fig5_scores`` (and ``fig5_scores_nosei``) as
  PDF and PNG.

Models come from the shipped checkpoints (``mclviz.zoo``), a folder of checkpoints
(``checkpoints=DIR``: a ``manifest.json`` as ``zoo`` writes it, or ``DIR/<model>/
checkpoint.safetensors`` as ``train=True`` writes it), or are trained first
(``train=True``, into ``out/runs/<model>``, resumable). The open-set model is named
``mcl-openset``: ``mcl`` trained with ``known_classes=[0, 1, 2, 3, 4, 5]``.

How a claim is decided (all on the claim OOD set, Tiny ImageNet (resize) by default, with
the paper's aggregation variant, Eq. 17-20): the AUROC difference A - B between the two
settings the claim compares, and its 95% percentile-bootstrap interval
(``metrics.bootstrap_ci``; IND and OOD samples resampled independently, each resample
shared by A and B since both score the same images). The interval above 0: *supported*;
below 0: *not supported*; containing 0: *inconclusive*. A claim made of several
comparisons (a, b) is supported when all are, not supported when one is, else
inconclusive.

Evaluation work is shared: the images are loaded once (``load_eval_data``) and passed to
``evaluate`` for every model; the figures and the claims read the embeddings and scores
``evaluate`` returns (:class:`mclviz.evaluation.Scores`), so nothing is embedded twice
(``cache_dir`` also keeps the embeddings on disk between runs).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from ._version import __version__
from .config import PRESETS, Config

__all__ = ["CLAIM_IDS", "DEFAULT_METHODS", "DEFAULT_OOD", "KNOWN_CLASSES", "OPEN_SET", "reproduce"]

DEFAULT_METHODS: tuple[str, ...] = ("ce", "rot", "simclr", "supclr", "ccm", "mcl-noaux", "mcl")
DEFAULT_OOD: tuple[str, ...] = ("tinyimagenet-resize", "gaussian", "uniform")
OPEN_SET = "mcl-openset"
KNOWN_CLASSES: list[int] = [0, 1, 2, 3, 4, 5]
CLAIM_IDS: tuple[str, ...] = ("a", "b", "c", "d", "e")
# models evaluated with SEI (1, 4, 8 views); the others are scored on the plain image only
_SEI_MODELS = ("mcl", "rot", "mcl-noaux", OPEN_SET)
_CHECKPOINT_NAME = "checkpoint.safetensors"

_OOD_NAMES = {
    "tinyimagenet-resize": "Tiny ImageNet (resize)",
    "gaussian": "Gaussian noise",
    "uniform": "uniform noise",
    "open-set": "open set (unknown classes)",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
}
_PAPER_OOD = {  # paper column -> our OOD set measuring it (exact or stand-in)
    "svhn": "svhn",
    "lsun_fix": None,
    "imagenet_fix": "tinyimagenet-resize",  # stand-in: same source images, resized not FIX
    "cifar100": "cifar100",
}
_PAPER_OOD_LABEL = {
    "svhn": "SVHN",
    "lsun_fix": "LSUN (FIX)",
    "imagenet_fix": "ImageNet (FIX)",
    "cifar100": "CIFAR-100",
}


# ----------------------------------------------------------------------------- settings


class Setting(NamedTuple):
    """One scored configuration of one model: the keys of an ``evaluate`` row."""

    model: str
    detector: str = "gaussians"
    ways: int = 1
    aggregation: str = "none"
    variant: str = "paper"

    def key(self) -> str:
        """``model/detector/ways/aggregation/variant``: the ``results.csv`` row keys."""
        return "/".join(map(str, self))

    def label(self) -> str:
        if self.detector == "msp":
            how = "MSP"
        elif self.ways == 1:
            how = "Mahalanobis, no SEI" if self.model in ("ce", "rot") else "no SEI"
        else:
            how = f"{self.ways}-way SEI {self.aggregation}"
            if self.variant != "paper":
                how += f" ({self.variant})"
        return f"{self.model}, {how}"


def _no_sei(model: str) -> Setting:
    return Setting(model)


def _sei(model: str, ways: int = 8, agg: str = "w-avg") -> Setting:
    return Setting(model, "gaussians", ways, agg)


_MSP = {m: Setting(m, "msp") for m in ("ce", "rot")}

# Table rows: (paper row name, our setting) or (paper row name, reason it is not run).
_NOT_IMPL = "not run: not implemented in mclviz"
_NO_FINETUNE = "not run: mclviz has no fine-tuning stage"
_TABLE1_ROWS: list[tuple[str, Setting | str]] = [
    ("Baseline", _MSP["ce"]),
    ("ODIN", _NOT_IMPL + " (temperature scaling + input pre-processing)"),
    ("Mahalanobis", _no_sei("ce")),
    ("Auxiliary Rotation", _MSP["rot"]),
    ("Outlier Exposure", _NOT_IMPL + " (needs auxiliary OOD training data)"),
    ("SupCLR", _no_sei("supclr")),
    ("CSI + SupCLR", _NOT_IMPL),
    ("CSI + SupCLR + Ensemble", _NOT_IMPL),
    ("Auxiliary Rotation + SEI", _sei("rot")),
    ("MCL + SEI", _sei("mcl")),  # renamed to the paper's ResNet-18 / ResNet-34 row
    ("SimCLR (ours only, no fine-tuning)", _no_sei("simclr")),
]
_TABLE2_ROWS: list[tuple[str, Setting | str]] = [
    ("SupCLR", _no_sei("supclr")),
    ("MCL", _no_sei("mcl")),
    ("MCL + SEI", _sei("mcl")),
]
_TABLE3_ROWS: list[tuple[str, Setting | str]] = [
    ("Baseline (w/o NT-Xent)", _MSP["ce"]),
    ("SimCLR (CE fine-tuned)", _NO_FINETUNE),
    ("SimCLR (joint fine-tuned)", _NO_FINETUNE),
    ("MCL (w/o SPA, w/o aux)", _no_sei("ccm")),
    ("MCL (w/o aux)", _no_sei("mcl-noaux")),
    ("MCL (CE fine-tuned)", _NO_FINETUNE),
    ("MCL", _no_sei("mcl")),
    ("SimCLR (ours only, no fine-tuning)", _no_sei("simclr")),
]
_TABLE4_ROWS: list[tuple[str, Setting | str]] = [
    ("MCL + w/o SEI", _no_sei("mcl")),
    *[
        (f"MCL + {w}-way SEI {a}", _sei("mcl", w, a))
        for w in (4, 8)
        for a in ("avg", "max", "w-avg")
    ],
]
_NO_DA = "not run: no mclviz method trains on rotated images without rotation labels"
_TABLE5_ROWS: list[tuple[str, Setting | str]] = [
    ("MCL + w/o Aux", _no_sei("mcl-noaux")),
    ("MCL + w/o Aux + SEI w-avg", _sei("mcl-noaux")),
    ("MCL + DA", _NO_DA),
    ("MCL + DA + SEI w-avg", _NO_DA),
    ("MCL + Aux", _no_sei("mcl")),
    ("MCL + Aux + SEI w-avg", _sei("mcl")),
]
_TABLES: dict[str, list[tuple[str, Setting | str]]] = {
    "table1": _TABLE1_ROWS,
    "table2": _TABLE2_ROWS,
    "table3": _TABLE3_ROWS,
    "table4": _TABLE4_ROWS,
    "table5": _TABLE5_ROWS,
}

# Claims: id -> (table, statement, [(name A, setting A, name B, setting B)]); A beats B.
_BASELINES_T1 = [
    ("Baseline", _MSP["ce"]),
    ("Mahalanobis", _no_sei("ce")),
    ("Auxiliary Rotation", _MSP["rot"]),
    ("Auxiliary Rotation + SEI", _sei("rot")),
    ("SupCLR", _no_sei("supclr")),
    ("SimCLR", _no_sei("simclr")),
]
_CLAIMS: dict[str, tuple[str, str, list[tuple[str, Setting, str, Setting]]]] = {
    "a": (
        "Table 1",
        "MCL + SEI beats every baseline on AUROC",
        [("MCL + SEI", _sei("mcl"), name, s) for name, s in _BASELINES_T1],
    ),
    "b": (
        "Table 2",
        "MCL beats SupCLR on AUROC (with and without SEI)",
        [
            ("MCL", _no_sei("mcl"), "SupCLR", _no_sei("supclr")),
            ("MCL + SEI", _sei("mcl"), "SupCLR", _no_sei("supclr")),
        ],
    ),
    "c": (
        "Table 3",
        "SPA helps: MCL w/o aux (CCM + SPA) beats MCL w/o SPA, w/o aux (CCM) on AUROC",
        [("MCL (w/o aux)", _no_sei("mcl-noaux"), "MCL (w/o SPA, w/o aux)", _no_sei("ccm"))],
    ),
    "d": (
        "Table 4",
        "SEI (8-way w-avg) helps a model trained with the rotation auxiliary: "
        "MCL + 8-way SEI w-avg beats MCL without SEI on AUROC",
        [("MCL + 8-way SEI w-avg", _sei("mcl"), "MCL w/o SEI", _no_sei("mcl"))],
    ),
    "e": (
        "Table 5",
        "SEI hurts a model trained without the auxiliary task: MCL w/o aux "
        "without SEI beats MCL w/o aux + 8-way SEI w-avg on AUROC",
        [("MCL + w/o Aux", _no_sei("mcl-noaux"), "MCL + w/o Aux + SEI w-avg", _sei("mcl-noaux"))],
    ),
}


# ----------------------------------------------------------------------------- models


@dataclass
class _Model:
    """One model of the comparison: where it came from and what evaluating it gave."""

    name: str
    status: str = ""  # "" when evaluated, else why not ("no checkpoint for X", ...)
    path: Path | None = None
    checkpoint: Any = None  # mclviz.checkpoint.Checkpoint
    manifest_entry: dict[str, Any] = field(default_factory=dict)
    train_seconds: float | None = None
    sei: tuple[int, ...] = (1,)
    table: pd.DataFrame | None = None
    scores: Any = None  # mclviz.evaluation.Scores
    eval_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.table is not None


def _expected(name: str) -> dict[str, Any]:
    if name == OPEN_SET:
        return {"method": "mcl", "known_classes": list(KNOWN_CLASSES)}
    return {"method": name}


def _check_config(name: str, cfg: Config) -> str:
    """'' when the checkpoint's config is the model the report expects, else why not."""
    if name == OPEN_SET:
        if cfg.method != "mcl" or not cfg.known_classes:
            return (
                f"the checkpoint for {name} is a {cfg.method!r} model with "
                f"known_classes={cfg.known_classes}, not mcl trained on known classes"
            )
    elif cfg.method != name or cfg.known_classes:
        return (
            f"the checkpoint for {name} is a {cfg.method!r} model with "
            f"known_classes={cfg.known_classes}"
        )
    if cfg.dataset != "cifar10":
        return f"the checkpoint for {name} was trained on {cfg.dataset!r}, not cifar10"
    return ""


def _find_checkpoint(name: str, folder: Path) -> tuple[Path | None, str, dict[str, Any]]:
    """(path, reason when there is none, manifest entry) for model ``name`` in ``folder``."""
    from . import zoo

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
    from .training import prepare_data, train

    config = Config.preset(preset, **_expected(name))
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


# ----------------------------------------------------------------------------- numbers


def _row(model: _Model, s: Setting, ood: str) -> pd.Series | None:
    """The ``evaluate`` row of setting ``s`` and OOD set ``ood`` (None when absent)."""
    if not model.ok:
        return None
    t = model.table
    hit = t[
        (t["detector"] == s.detector)
        & (t["ways"] == s.ways)
        & (t["aggregation"] == s.aggregation)
        & (t["variant"] == s.variant)
        & (t["ood"] == ood)
    ]
    return hit.iloc[0] if len(hit) else None


def _get_row(models: dict[str, _Model], s: Setting, ood: str) -> pd.Series | None:
    model = models.get(s.model)
    return None if model is None else _row(model, s, ood)


def _result(model: _Model, s: Setting):
    """The :class:`~mclviz.evaluation.DetectorScores` of setting ``s`` of an evaluated model."""
    for r in model.scores:
        d = r.detector
        ways = getattr(d, "views", 1)
        agg = getattr(d, "aggregation", "none") if ways > 1 else "none"
        if (d.name, ways, agg, getattr(d, "variant", "paper")) == tuple(s)[1:]:
            return r
    raise KeyError(f"{s.key()} was not evaluated")


def _scores(model: _Model, s: Setting, ood: str) -> tuple[np.ndarray, np.ndarray]:
    """(IND scores, OOD scores) of a setting, float64."""
    r = _result(model, s)
    return r.score_in.double().numpy(), r.score_out[ood].double().numpy()


def _auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """AUROC (IND positive) as the Mann-Whitney statistic, ties counted half (the
    bootstrap's inner loop: ``metrics.ood_metrics`` computes all four metrics)."""
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([s_in, s_out]))
    n1, n0 = len(s_in), len(s_out)
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _diff_ci(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], *, n_boot: int, seed: int
) -> tuple[float, float]:
    """95% bootstrap interval of AUROC(a) - AUROC(b) on the same IND and OOD images."""
    from .metrics import bootstrap_ci

    (a_in, a_out), (b_in, b_out) = a, b

    def diff(i: np.ndarray, o: np.ndarray) -> float:
        return _auroc(a_in[i], a_out[o]) - _auroc(b_in[i], b_out[o])

    # resample IND and OOD indices independently; each draw indexes both models
    return bootstrap_ci(
        diff, np.arange(len(a_in)), np.arange(len(a_out)), n_boot=n_boot, seed=seed, paired=False
    )


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "supported"
    if high < 0:
        return "not supported"
    return "inconclusive"


def _combine(verdicts: Sequence[str]) -> str:
    if not verdicts:
        return "not tested"
    if "not supported" in verdicts:
        return "not supported"
    if all(v == "supported" for v in verdicts):
        return "supported"
    return "inconclusive"


def _missing_reason(models: dict[str, _Model], names: Sequence[str]) -> str:
    reasons = []
    for n in dict.fromkeys(names):
        m = models.get(n)
        if m is None:
            reasons.append(f"{n} not in methods")
        elif not m.ok:
            reasons.append(m.status)
    return "; ".join(reasons)


def _compared(models: dict[str, _Model], comparisons) -> dict[str, Any]:
    """The checkpoints of the models a claim compares, in order, those with one only."""
    names = dict.fromkeys(n for _, sa, _, sb in comparisons for n in (sa.model, sb.model))
    return {
        n: models[n].checkpoint for n in names if n in models and models[n].checkpoint is not None
    }


def _unequal_training(models: dict[str, _Model], comparisons) -> str:
    """A note when the compared models trained for different numbers of epochs.

    The shipped checkpoints are trained in turn within CPU budgets, so some may stop
    before their schedule ends; a claim comparing them then says so, since the model
    trained longer has an advantage the paper's comparison does not give it.
    """
    done = {n: (ck.epoch, ck.config.epochs) for n, ck in _compared(models, comparisons).items()}
    equal = len({e for e, _ in done.values()}) <= 1
    if equal and all(e >= c for e, c in done.values()):
        return ""
    what = "trained short of the schedule" if equal else "unequal training"
    return f"{what}: " + ", ".join(f"{n} {e} of {c} epochs" for n, (e, c) in done.items())


def _unequal_views(models: dict[str, _Model], comparisons) -> str:
    """A note when the compared models saw their images in different numbers of views.

    Same epochs are not the same compute: ``mcl`` sees each image in 4 rotations x 2
    views (Eq. 11), the paper's design, so it costs 4x the forward passes of ``supclr``
    per epoch. The reader of a claim should know that.
    """
    views = {n: ck.config.views_per_image for n, ck in _compared(models, comparisons).items()}
    if len(set(views.values())) <= 1:
        return ""
    return "views per training image differ: " + ", ".join(f"{n} {v}" for n, v in views.items())


def _claims(models: dict[str, _Model], claim_ood: str, *, n_boot: int) -> pd.DataFrame:
    """One row per comparison of every claim (plus one per claim that is not tested)."""
    rows: list[dict[str, Any]] = []
    for cid, (table, statement, comparisons) in _CLAIMS.items():
        base = {"claim": cid, "table": table, "statement": statement, "ood": claim_ood}
        tested, skipped = [], []
        for name_a, sa, name_b, sb in comparisons:
            ra, rb = _get_row(models, sa, claim_ood), _get_row(models, sb, claim_ood)
            if ra is None or rb is None:
                skipped.append((name_a, name_b, _missing_reason(models, [sa.model, sb.model])))
                continue
            a = _scores(models[sa.model], sa, claim_ood)
            b = _scores(models[sb.model], sb, claim_ood)
            low, high = _diff_ci(a, b, n_boot=n_boot, seed=0)
            auroc_a, auroc_b = 100 * float(ra["auroc"]), 100 * float(rb["auroc"])
            tested.append(
                {
                    **base,
                    "a": name_a,
                    "setting_a": sa.label(),
                    "b": name_b,
                    "setting_b": sb.label(),
                    "key_a": sa.key(),
                    "key_b": sb.key(),
                    "auroc_a": auroc_a,
                    "auroc_b": auroc_b,
                    "acc_a": 100 * float(ra["accuracy"]),
                    "acc_b": 100 * float(rb["accuracy"]),
                    "diff": auroc_a - auroc_b,
                    "ci_low": 100 * low,
                    "ci_high": 100 * high,
                    "verdict": _verdict(low, high),
                    "n_in": len(a[0]),
                    "n_out": len(a[1]),
                    "n_boot": n_boot,
                    "note": "",
                }
            )
        overall = _combine([r["verdict"] for r in tested])
        notes = []
        if skipped and tested:
            notes.append(
                "not compared: " + "; ".join(f"{a} vs {b} ({why})" for a, b, why in skipped)
            )
        if tested:
            notes += [
                x
                for x in (
                    _unequal_training(models, comparisons),
                    _unequal_views(models, comparisons),
                )
                if x
            ]
        note = "; ".join(notes)
        for r in tested:
            r["claim_verdict"], r["note"] = overall, note
        rows.extend(tested)
        if not tested:
            why = "; ".join(dict.fromkeys(w for _, _, w in skipped))
            rows.append(
                {
                    **base,
                    "a": comparisons[0][0],
                    "b": comparisons[0][2],
                    "verdict": "not tested",
                    "claim_verdict": "not tested",
                    "note": f"not tested ({why})",
                }
            )
    cols = [
        "claim",
        "table",
        "statement",
        "ood",
        "a",
        "setting_a",
        "b",
        "setting_b",
        "auroc_a",
        "auroc_b",
        "diff",
        "ci_low",
        "ci_high",
        "verdict",
        "claim_verdict",
        "acc_a",
        "acc_b",
        "key_a",
        "key_b",
        "n_in",
        "n_out",
        "n_boot",
        "note",
    ]
    return pd.DataFrame(rows).reindex(columns=cols)


# ----------------------------------------------------------------------------- tables


def _col(ood: str) -> str:
    return ood.replace("-", "_")


def _ablation_ood(ood: Sequence[str]) -> str | None:
    """Our OOD set for the paper's Tables 3-5 column (CIFAR-100 there)."""
    for name in ("cifar100", "tinyimagenet-resize"):
        if name in ood:
            return name
    return None


def _paper_table(name: str, models: dict[str, _Model], ood: Sequence[str]) -> pd.DataFrame:
    """One paper table in its shape: paper rows, our setting and numbers, paper's, diff."""
    from .paper_numbers import comparison_table, paper_table

    paper = paper_table(name)
    specs = list(_TABLES[name])
    if name == "table1":  # our MCL fills the paper row of its backbone
        mcl = models.get("mcl")
        arch = mcl.checkpoint.config.arch if mcl is not None and mcl.ok else "resnet18"
        tag = {"resnet18": "ResNet-18", "resnet34": "ResNet-34"}[arch]
        other = "ResNet-34" if tag == "ResNet-18" else "ResNet-18"
        i = [r for r, _ in specs].index("MCL + SEI")
        specs[i] = (f"MCL + SEI ({tag})", specs[i][1])
        specs.insert(i, (f"MCL + SEI ({other})", f"not run: our MCL is a {tag}"))
    wide = name in ("table1", "table2")
    # the paper's AUROC column(s) and the OOD set of ours measuring each
    if wide:
        pairs = {c: o for c, o in _PAPER_OOD.items() if o in ood}
    else:
        pairs = {"auroc": _ablation_ood(ood)} if _ablation_ood(ood) else {}
    ours_rows, meta = [], []
    for row, spec in specs:
        info: dict[str, Any] = {"row": row}
        if isinstance(spec, str):
            info.update(model="", setting="", status=spec)
        else:
            model = models.get(spec.model)
            first = _row(model, spec, ood[0]) if model is not None else None
            info.update(
                model=spec.model,
                detector=spec.detector,
                ways=spec.ways,
                aggregation=spec.aggregation,
                variant=spec.variant,
                setting=spec.label(),
            )
            if first is None:
                reason = "not in methods" if model is None else model.status
                info["status"] = f"not run: {reason}"
            else:
                info["status"] = "ours"
                values = {"row": row, "acc": 100 * float(first["accuracy"])}
                for col, o in pairs.items():
                    values[col] = 100 * float(_row(model, spec, o)["auroc"])
                ours_rows.append(values)
                for o in ood:
                    r = _row(model, spec, o)
                    info[f"auroc_{_col(o)}_ours"] = 100 * float(r["auroc"])
                    info[f"fpr95_{_col(o)}_ours"] = 100 * float(r["fpr95"])
                if spec.ways > 1 or name in ("table4", "table5"):
                    off = spec._replace(variant="official")
                    r_off = _row(model, off, ood[0])
                    info["acc_official"] = 100 * float(r_off["accuracy"])
                    for col, o in pairs.items():
                        info[f"{col}_official"] = 100 * float(_row(model, off, o)["auroc"])
        meta.append(info)
    ours = pd.DataFrame(ours_rows, columns=["row", "acc", *pairs])
    if ours.empty:  # comparison_table needs a metric column: give it an empty frame
        ours = pd.DataFrame({"row": pd.Series([], dtype=object), "acc": pd.Series([], dtype=float)})
    cmp = comparison_table(ours, name)
    meta_df = pd.DataFrame(meta).set_index("row")
    out = meta_df.join(cmp, how="left")
    # order: paper rows (as in the paper) then ours, as specified
    out = out.loc[[r for r, _ in specs]]
    # the paper's AUROC columns even where none of ours is there to compare
    for c in ("svhn", "lsun_fix", "imagenet_fix", "cifar100") if wide else ("auroc",):
        if f"{c}_paper" not in out.columns:
            out[f"{c}_paper"] = [paper[c].get(r, np.nan) for r in out.index]
    for c in ("acc_paper", "acc_ours", "acc_diff"):
        if c not in out.columns:
            out[c] = (
                [paper["acc"].get(r, np.nan) for r in out.index] if c == "acc_paper" else np.nan
            )
    out.index.name = "row"
    out = out.reset_index()
    if "ways" in out.columns:
        out["ways"] = out["ways"].astype("Int64")
    first = [
        "row",
        "model",
        "detector",
        "ways",
        "aggregation",
        "variant",
        "setting",
        "status",
        "acc_ours",
        "acc_paper",
        "acc_diff",
    ]
    for c in pairs:
        first += [f"{c}_ours", f"{c}_paper", f"{c}_diff"]
    first += [f"{c}_paper" for c in ("auroc", "svhn", "lsun_fix", "imagenet_fix", "cifar100")]
    for o in ood:
        first += [f"auroc_{_col(o)}_ours", f"fpr95_{_col(o)}_ours"]
    first = [c for c in dict.fromkeys(first) if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]]


def _openset_table(models: dict[str, _Model]) -> pd.DataFrame:
    model = models.get(OPEN_SET)
    row0 = "MCL (open set: 6 known / 4 unknown CIFAR-10 classes)"
    if model is None or not model.ok:
        reason = "open_set=False" if model is None else model.status
        return pd.DataFrame(
            [{"row": row0, "model": OPEN_SET, "setting": "", "status": f"not run: {reason}"}]
        )
    rows = []
    t = model.table[(model.table["ood"] == "open-set") & (model.table["variant"] == "paper")]
    for _, r in t.iterrows():
        s = Setting(OPEN_SET, r["detector"], int(r["ways"]), r["aggregation"], r["variant"])
        rows.append(
            {
                "row": row0,
                "model": OPEN_SET,
                "setting": s.label(),
                "status": "ours",
                "detector": s.detector,
                "ways": s.ways,
                "aggregation": s.aggregation,
                "variant": s.variant,
                "acc_known": 100 * float(r["accuracy"]),
                "auroc_unknown": 100 * float(r["auroc"]),
                "aupr_in": 100 * float(r["aupr_in"]),
                "aupr_out": 100 * float(r["aupr_out"]),
                "fpr95": 100 * float(r["fpr95"]),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- budget


def _preset_diff(cfg: Config, preset: str) -> list[tuple[str, Any, Any]]:
    """Fields where ``cfg`` differs from ``preset`` (same method / known classes)."""
    ref = Config.preset(preset, method=cfg.method, known_classes=cfg.known_classes).to_dict()
    got = cfg.to_dict()
    diffs = []
    for key, value in got.items():
        if key == "data_root":
            continue
        want = ref.get(key)
        if key == "extra":  # training records the class count there; not a recipe change
            value = {k: v for k, v in value.items() if k != "num_classes"}
            want = {k: v for k, v in (want or {}).items() if k != "num_classes"}
        if value != want:
            diffs.append((key, value, want))
    return diffs


def _budget(models: dict[str, _Model], preset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, diffs = [], []
    for name, m in models.items():
        if m.checkpoint is None:
            rows.append({"model": name, "status": m.status or "not evaluated"})
            continue
        ck, cfg = m.checkpoint, m.checkpoint.config
        hist = ck.metrics.get("history") or [{}]
        same = [p for p in PRESETS if not _preset_diff(cfg, p)]
        rows.append(
            {
                "model": name,
                "status": "evaluated" if m.ok else m.status,
                "preset": same[0] if same else "none (see the differences)",
                "checkpoint": str(m.path),
                "sha256": (ck.sha256 or "")[:12],
                "method": cfg.method,
                "arch": cfg.arch,
                "width": cfg.width,
                "epochs_done": ck.epoch,
                "epochs_config": cfg.epochs,
                "steps": ck.step,
                "batch_size": cfg.batch_size,
                "train_images": cfg.train_subset if cfg.train_subset is not None else "all",
                "known_classes": ",".join(map(str, cfg.known_classes)) if cfg.known_classes else "",
                "seed": cfg.seed,
                "device": ck.metrics.get("device", "not recorded"),
                "precision": ck.metrics.get("precision", "not recorded"),
                "world_size": ck.metrics.get("world_size", 1),
                "train_seconds": m.train_seconds,
                "final_loss": hist[-1].get("loss"),
                "eval_seconds": round(m.eval_seconds, 1),
            }
        )
        for key, value, want in _preset_diff(cfg, preset):
            diffs.append(
                {
                    "model": name,
                    "field": key,
                    "checkpoint": json.dumps(value),
                    f"preset_{preset}": json.dumps(want),
                }
            )
        if ck.epoch < cfg.epochs:
            diffs.append(
                {
                    "model": name,
                    "field": "epochs completed (preset: configured)",
                    "checkpoint": json.dumps(ck.epoch),
                    f"preset_{preset}": json.dumps(cfg.epochs),
                }
            )
    return (
        pd.DataFrame(rows),
        pd.DataFrame(diffs, columns=["model", "field", "checkpoint", f"preset_{preset}"]),
    )


def _precision_note(models: dict[str, _Model]) -> str:
    """The embedding precision(s) the evaluation used (``mclviz.device`` decided them)."""
    names = sorted({m.scores.outputs.precision.name for m in models.values() if m.ok})
    return "/".join(names) or "no"


def _data_caveats(data_root: str | None) -> list[str]:
    """The caveat bullets of the data root's README.md (``Caveats`` section)."""
    from .data import data_root as _root

    readme = _root(data_root) / "README.md"
    if not readme.is_file():
        return [f"The data root {_root(data_root)} has no README.md: its caveats are unknown."]
    lines = readme.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lower().startswith("caveats")), None)
    if start is None:
        return [f"{readme} states no caveats section."]
    bullets: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif line.startswith((" ", "\t")) and bullets and line.strip():
            bullets[-1] += " " + line.strip()
        elif line.strip() and bullets:
            break
    return bullets


# ----------------------------------------------------------------------------- figures


def _export(fig, stem: Path) -> list[Path]:
    """PDF and PNG of a figure (``plots.export``); plotly falls back to matplotlib."""
    import plotly.graph_objects as go

    from .plots import export

    paths = []
    for suffix in (".pdf", ".png"):
        try:
            paths.append(export(fig, stem.with_suffix(suffix), scale=2 if suffix == ".png" else 1))
        except RuntimeError:
            if not isinstance(fig, go.Figure):
                raise
            paths.append(export(_plotly_scatter_to_mpl(fig), stem.with_suffix(suffix)))
    return paths


def _plotly_scatter_to_mpl(fig):
    """A matplotlib copy of a plotly scatter grid (used when kaleido has no Chrome)."""
    from matplotlib.figure import Figure

    from .plots import TEXT_WIDTH, paper_rc

    titles = [a.text for a in fig.layout.annotations]
    ncol = max(1, len(titles))
    with paper_rc({"figure.figsize": (TEXT_WIDTH, TEXT_WIDTH / ncol + 0.6)}):
        out = Figure(layout="constrained")
        axes = out.subplots(1, ncol, squeeze=False)[0]
        for tr in fig.data:
            k = int((tr.xaxis or "x")[1:] or 1) - 1
            axes[k].scatter(tr.x, tr.y, s=2, c=tr.marker.color, label=tr.name if k == 0 else None)
        for ax, t in zip(axes, titles, strict=False):
            ax.set_title(t)
            ax.set_xticks([])
            ax.set_yticks([])
        out.legend(loc="outside lower center", ncol=6, markerscale=3)
    return out


def _figures(
    models: dict[str, _Model],
    data,
    claim_ood: str,
    names: list[str],
    out: Path,
) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Figures 1, 4, 5; returns ({key: files}, {key: caption or reason not made})."""
    from .plots import (
        failure_cases,
        failure_gallery,
        nearest_neighbours,
        projection_figure,
        score_distribution,
    )

    files: dict[str, list[Path]] = {}
    notes: dict[str, str] = {}
    (xtr, ytr), (xte, yte) = data.train, data.test
    x_ood = data.ood[claim_ood]
    ood_label = _OOD_NAMES.get(claim_ood, claim_ood)

    # Figure 1: projections of the same test sample (+ OOD in grey) for four models
    panel = [m for m in ("simclr", "supclr", "ccm", "mcl") if m in models and models[m].ok]
    if panel:
        rng = np.random.default_rng(0)
        n_in, n_out = min(len(yte), 2000), min(len(x_ood), 500)
        i_in = np.sort(rng.choice(len(yte), n_in, replace=False))
        i_out = np.sort(rng.choice(len(x_ood), n_out, replace=False))
        embs = {}
        for m in panel:  # view 0 (the plain image) of the embeddings evaluate computed
            outputs = models[m].scores.outputs
            z_in = outputs.get("z", "test", 1)[:, 0]
            z_out = outputs.get("z", f"ood:{claim_ood}", 1)[:, 0]
            embs[m] = torch.cat([z_in[i_in], z_out[i_out]])
        labels = torch.cat([yte[i_in], torch.full((n_out,), -1, dtype=torch.long)])
        fig = projection_figure(embs, labels, class_names=names, sample=None, seed=0)
        files["fig1"] = _export(fig, out / "fig1_projection")
        missing = [m for m in ("simclr", "supclr", "ccm", "mcl") if m not in panel]
        notes["fig1"] = (
            f"Figure 1: t-SNE of the projection z of {n_in} CIFAR-10 test images "
            f"(coloured by class) and {n_out} {ood_label} images (grey), the same "
            f"points for every model ({', '.join(panel)}); seed 0."
            + (f" Not shown: {', '.join(missing)} (not evaluated)." if missing else "")
        )
    else:
        notes["fig1"] = "Figure 1 not made: " + _missing_reason(
            models, ["simclr", "supclr", "ccm", "mcl"]
        )
    mcl = models.get("mcl")
    if mcl is None or not mcl.ok:
        reason = _missing_reason(models, ["mcl"])
        notes["fig4"] = f"Figure 4 not made: {reason}"
        notes["fig5"] = f"Figure 5 not made: {reason}"
        return files, notes

    # Figure 5: score distributions, MCL + SEI (8-way w-avg) and MCL without SEI
    w = max(mcl.sei)
    best = _sei("mcl", w, "w-avg") if w > 1 else _no_sei("mcl")
    for key, s in (("fig5", best), ("fig5_nosei", _no_sei("mcl"))):
        entry = _result(mcl, s)
        fig = score_distribution(
            entry.score_in,
            (entry.pred == yte).numpy(),
            entry.score_out[claim_ood],
            ood_name=ood_label,
            backend="matplotlib",
        )
        stem = "fig5_scores" if key == "fig5" else "fig5_scores_nosei"
        files[key] = _export(fig, out / stem)
        notes[key] = (
            f"Figure 5{'' if key == 'fig5' else ', without SEI'}: scores of MCL "
            f"({s.label()}): CIFAR-10 test images classified correctly / wrongly, "
            f"and {ood_label}; dashed: the threshold keeping 95% of IND."
        )

    # Figure 4: OOD images scored most IND, misclassified IND images, nearest train images
    entry = _result(mcl, best)
    cases = failure_cases(entry.score_in, entry.pred, yte, entry.score_out[claim_ood], n=4)
    outputs = mcl.scores.outputs
    z_tr = outputs.get("z", "train", 1)
    z_te = outputs.get("z", "test", 1)
    z_oo = outputs.get("z", f"ood:{claim_ood}", 1)
    o_idx, m_idx = cases["ood_idx"], cases["misclassified_idx"]
    # the class and score the same SEI aggregation gave the OOD cases
    o_pred = entry.pred_out[claim_ood][o_idx]
    o_score = entry.score_out[claim_ood][o_idx]

    def cname(c: int) -> str:
        return names[c] if 0 <= c < len(names) else str(c)

    queries = torch.cat([z_oo[o_idx, 0], z_te[m_idx, 0]])
    images = torch.cat([x_ood[o_idx], xte[m_idx]])
    titles = [
        f"{ood_label.split(' (')[0]}\npred {cname(int(p))}\ns={float(sc):.3g}"
        for p, sc in zip(o_pred, o_score, strict=True)
    ]
    titles += [
        f"GT {cname(int(yte[i]))}\npred {cname(int(entry.pred[i]))}\n"
        f"s={float(entry.score_in[i]):.3g}"
        for i in m_idx
    ]
    if len(queries):
        k = min(5, len(ytr))
        dist, idx = nearest_neighbours(queries, z_tr[:, 0], k=k)
        fig = failure_gallery(
            images,
            titles,
            xtr[torch.from_numpy(idx)],
            ytr[torch.from_numpy(idx)],
            dist,
            class_names=names,
        )
        files["fig4"] = _export(fig, out / "fig4_failures")
        notes["fig4"] = (
            f"Figure 4: failure cases of MCL ({best.label()}): the {len(o_idx)} "
            f"{ood_label} images scored most in-distribution (top rows) and the "
            f"{len(m_idx)} misclassified CIFAR-10 test images with the highest "
            f"scores, each with its {k} nearest training images (cosine distance "
            "of the projection z, plain view)."
        )
    else:
        notes["fig4"] = "Figure 4 not made: no OOD image and no misclassified test image."
    return files, notes


# ----------------------------------------------------------------------------- HTML


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
.note{color:#555;font-size:.9em}.claim{margin:.5em 0}
.v-supported{color:#1a7f37;font-weight:bold}.v-not-supported{color:#b42318;font-weight:bold}
.v-inconclusive{color:#9a6700;font-weight:bold}.v-not-tested{color:#666;font-weight:bold}
img{max-width:100%;border:1px solid #eee}figure{margin:1.2em 0}
figcaption{font-size:.9em;color:#444}.scroll{overflow-x:auto}
"""


def _fmt(x: Any, signed: bool = False, general: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "–"
    if isinstance(x, float | np.floating):
        if general:
            return f"{x:.4g}"
        return f"{x:+.2f}" if signed else f"{x:.2f}"
    return html.escape(str(x))


def _html_table(
    df: pd.DataFrame, columns: list[tuple[str, str]], table_id: str, *, general: bool = False
) -> str:
    """An HTML table of ``df[columns]`` with the given headers; ``*_diff`` columns signed.

    Floats print with 2 decimals (percentages), or 4 significant digits when ``general``.
    """
    cols = [(c, h) for c, h in columns if c in df.columns]
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in cols)
    body = []
    for _, r in df.iterrows():
        cells = "".join(
            f"<td{' class=num' if isinstance(r[c], int | float | np.number) else ''}>"
            f"{_fmt(r[c], signed=c.endswith('_diff'), general=general)}</td>"
            for c, _ in cols
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table id="{table_id}-data"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _img(path: Path, width: str = "100%") -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}" '
        f'style="width:{width}">'
    )


def _claim_html(cid: str, rows: pd.DataFrame) -> str:
    table, statement = _CLAIMS[cid][0], _CLAIMS[cid][1]
    verdict = rows["claim_verdict"].iloc[0]
    parts = []
    same_a = rows["a"].nunique() == 1 and len(rows) > 1
    for i, (_, r) in enumerate(rows.iterrows()):
        if r["verdict"] == "not tested":
            parts.append(html.escape(str(r["note"])))
            continue
        a = f"{html.escape(r['a'])} ({html.escape(r['setting_a'])}) {r['auroc_a']:.2f}% "
        parts.append(
            ("" if same_a and i else a)
            + f"vs {html.escape(r['b'])} ({html.escape(r['setting_b'])}) {r['auroc_b']:.2f}%: "
            f"{r['diff']:+.2f} pp [95% CI {r['ci_low']:+.2f}, {r['ci_high']:+.2f}], "
            f"{html.escape(r['verdict'])}"
        )
    note = rows["note"].iloc[0] if rows["verdict"].iloc[0] != "not tested" else ""
    extra = f" <span class='note'>({html.escape(note)})</span>" if note else ""
    cls = "v-" + verdict.replace(" ", "-")
    return (
        f'<li class="claim" id="claim-{cid}" data-verdict="{html.escape(verdict)}">'
        f"<b>({cid}) {html.escape(statement)} ({table})</b>: "
        f'<span class="{cls}">{html.escape(verdict)}</span>. ' + "; ".join(parts) + extra + "</li>"
    )


def _not_tested_lines(ood: Sequence[str]) -> list[str]:
    # ImageNet (FIX) is never measured: Tiny ImageNet (resize) only stands in for it
    lacking = [
        lab
        for c, lab in _PAPER_OOD_LABEL.items()
        if c in ("lsun_fix", "imagenet_fix") or _PAPER_OOD[c] not in ood
    ]
    lines = []
    if lacking:
        lines.append(
            f"Tables 1-2: AUROC on {', '.join(lacking)}: not tested (not in the data root). "
            "Tiny ImageNet (resize) stands in for ImageNet (FIX): images of the same source, "
            "downsampled with the artefacts Tack et al. 2020 fixed, so its numbers are not "
            "one-to-one comparable with the paper's."
        )
    if "cifar100" not in ood:
        lines.append(
            "Tables 3-5 use CIFAR-100 as OOD in the paper: not tested on CIFAR-100 "
            "(not available); our Tables 3-5 and claims (c)-(e) use Tiny ImageNet "
            "(resize) instead."
        )
    lines += [
        "Table 1: MCL + SEI beats ODIN, Outlier Exposure and CSI (+ ensemble): not tested "
        "(these methods are not implemented in mclviz).",
        "Table 1: MCL + SEI beats Mahalanobis as published (with input pre-processing and "
        "feature ensembles): not tested; our Mahalanobis row scores the plain encoder "
        "features of the cross-entropy model.",
        "Table 3: fine-tuning SimCLR or MCL with cross-entropy (or jointly) lowers AUROC: "
        "not tested (mclviz has no fine-tuning stage).",
        "Table 5: SEI gives a slight gain for MCL trained with rotated images but no rotation "
        "labels (DA): not tested (no mclviz method trains that way).",
    ]
    return lines


_T12_COLS = [
    ("row", "Training method"),
    ("setting", "our setting"),
    ("status", "status"),
    ("acc_ours", "Test acc. ours"),
    ("acc_paper", "paper"),
    ("acc_diff", "Δ"),
    ("imagenet_fix_ours", "AUROC ImageNet: ours = Tiny ImageNet (resize)"),
    ("imagenet_fix_paper", "paper = ImageNet (FIX)"),
    ("imagenet_fix_diff", "Δ"),
    ("svhn_ours", "SVHN ours"),
    ("svhn_paper", "SVHN paper"),
    ("svhn_diff", "Δ"),
    ("cifar100_ours", "CIFAR-100 ours"),
    ("cifar100_paper", "CIFAR-100 paper"),
    ("cifar100_diff", "Δ"),
    ("lsun_fix_paper", "LSUN (FIX) paper"),
]
_T345_COLS = [
    ("row", "Model"),
    ("setting", "our setting"),
    ("status", "status"),
    ("acc_ours", "Acc ours"),
    ("acc_paper", "paper"),
    ("acc_diff", "Δ"),
    ("auroc_ours", "AUROC ours"),
    ("auroc_paper", "paper (CIFAR-100)"),
    ("auroc_diff", "Δ"),
    ("acc_official", "Acc official variant"),
    ("auroc_official", "AUROC official variant"),
]


def _table_html(name: str, df: pd.DataFrame, ood: Sequence[str], claim_ood: str) -> str:
    from .paper_numbers import TABLES

    caption = TABLES[name]["caption"]
    cols = list(_T12_COLS if name in ("table1", "table2") else _T345_COLS)
    shown = (
        {o for c, o in _PAPER_OOD.items() if f"{c}_ours" in df.columns}
        if name in ("table1", "table2")
        else {_ablation_ood(ood)}
    )
    for o in ood:  # our AUROC on the other OOD sets (no published counterpart)
        if o not in shown:
            cols.append((f"auroc_{_col(o)}_ours", f"AUROC {_OOD_NAMES.get(o, o)} ours"))
    if name in ("table1", "table2"):
        note = (
            "Our AUROC on Tiny ImageNet (resize) is set beside the paper's ImageNet (FIX) "
            "column as its nearest stand-in; the two sets differ. Our noise-set AUROCs "
            "have no published counterpart."
        )
    else:
        stand = "CIFAR-100" if "cifar100" in ood else _OOD_NAMES.get(claim_ood, claim_ood)
        note = f"The paper's AUROC uses CIFAR-100 as OOD; ours uses {stand}" + (
            " (CIFAR-100 is not available), so the differences mix the model gap with "
            "the data-set gap."
            if "cifar100" not in ood
            else "."
        )
    title = caption.split(":")[0]
    return (
        f'<h2 id="{name}">{html.escape(title)}</h2>'
        f"<p class='note'>{html.escape(caption)} {html.escape(note)} Numbers in percent; "
        "Δ = ours − paper (percentage points); – = not available. "
        f"<a href='{name}.csv'>{name}.csv</a></p>" + _html_table(df, cols, name)
    )


def _write_html(
    path: Path,
    *,
    claims: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    openset: pd.DataFrame,
    budget: pd.DataFrame,
    diffs: pd.DataFrame,
    caveats: list[str],
    files: dict[str, list[Path]],
    notes: dict[str, str],
    info: dict[str, Any],
    ood: Sequence[str],
    claim_ood: str,
    preset: str,
) -> None:
    h: list[str] = []
    h.append(
        f"<h1>mclviz reproduce: do the claims of Cho, Seol &amp; Lee (IJCAI 2021) hold?</h1>"
        f"<p class='note'>Generated {html.escape(info['generated'])} by mclviz "
        f"{__version__} (torch {torch.__version__}, {html.escape(info['platform'])}) in "
        f"{info['seconds']:.0f} s. Models: {html.escape(info['source'])}. In-distribution: "
        f"CIFAR-10 ({info['n_train']} training images fit the class Gaussians, "
        f"{info['n_test']} test images); OOD: "
        + ", ".join(f"{html.escape(_OOD_NAMES.get(o, o))} ({n})" for o, n in info["n_ood"].items())
        + ".</p>"
    )
    h.append("<h2 id='claims'>Claims</h2>")
    h.append(
        "<p class='note'>Each verdict compares the AUROC of two settings on "
        f"{html.escape(_OOD_NAMES.get(claim_ood, claim_ood))} (paper aggregation variant, "
        "Eq. 17-20): the difference A − B with its 95% bootstrap interval "
        f"({int(info['n_boot'])} resamples of the IND and OOD images, seed 0). Interval "
        "above 0: supported; below 0: not supported; containing 0: inconclusive. A claim "
        "with several comparisons is supported when all are, not supported when one is. "
        "<a href='claims.csv'>claims.csv</a></p><ul>"
    )
    for cid in CLAIM_IDS:
        h.append(_claim_html(cid, claims[claims["claim"] == cid]))
    h.append("</ul><h3>Claims not tested</h3><ul>")
    h += [f"<li class='not-tested'>{html.escape(line)}</li>" for line in _not_tested_lines(ood)]
    h.append("</ul>")

    h.append("<h2 id='budget'>Budget, seeds and data caveats</h2><h3>Data caveats</h3><ul>")
    h += [f"<li>{html.escape(c)}</li>" for c in caveats]
    h.append(
        f"<li>OOD sets differ from the paper's: we have {html.escape(', '.join(_OOD_NAMES.get(o, o) for o in ood))}; "
        "the paper uses SVHN, LSUN (FIX), ImageNet (FIX) and CIFAR-100.</li>"
        f"<li>Subsets (seeded, explicit): {html.escape(info['subsets'])}.</li></ul>"
    )
    h.append(
        "<h3>Training budget of each model</h3><p class='note'>From each checkpoint's "
        "config and metrics (train_seconds: wall time of training, – when the "
        "checkpoint does not record it; eval_seconds: this report's evaluation). "
        "<a href='budget.csv'>budget.csv</a></p>"
    )
    # transposed: one column per model reads better than 20 columns
    wide = budget.drop(columns=["checkpoint"], errors="ignore").set_index("model").T
    wide = wide.reset_index(names="field")
    h.append(_html_table(wide, [(c, c) for c in wide.columns], "budget", general=True))
    h.append(f"<h3>Differences from the <code>{html.escape(preset)}</code> preset</h3>")
    if len(diffs):
        h.append(
            "<p class='note'>Every config field where a checkpoint differs from "
            f"<code>Config.preset({preset!r}, method=...)</code>. "
            "<a href='preset_differences.csv'>preset_differences.csv</a></p>"
        )
        h.append(_html_table(diffs, [(c, c) for c in diffs.columns], "preset-diffs", general=True))
    else:
        h.append(
            f"<p>Every evaluated checkpoint was trained with the {html.escape(preset)} "
            "preset exactly.</p>"
        )

    for name, df in tables.items():
        h.append(_table_html(name, df, ood, claim_ood))
    h.append(
        "<h2 id='openset'>Open set (not in the paper)</h2><p class='note'>MCL trained on "
        "CIFAR-10 classes 0-5 only; accuracy on the test images of those classes, AUROC "
        "of known vs unknown (classes 6-9) test images. The paper reports no open-set "
        "numbers. <a href='openset.csv'>openset.csv</a></p>"
    )
    h.append(
        _html_table(
            openset,
            [
                ("row", "Model"),
                ("setting", "setting"),
                ("status", "status"),
                ("acc_known", "Acc (known)"),
                ("auroc_unknown", "AUROC (unknown)"),
                ("fpr95", "FPR at 95% TPR"),
            ],
            "openset",
        )
    )

    h.append("<h2 id='figures'>Figures</h2>")
    for key in ("fig1", "fig4", "fig5", "fig5_nosei"):
        if key in files:
            png = next(p for p in files[key] if p.suffix == ".png")
            pdf = next(p for p in files[key] if p.suffix == ".pdf")
            width = "100%" if key == "fig1" else "520px"
            h.append(
                f"<figure id='{key}'>{_img(png, width)}<figcaption>{html.escape(notes[key])} "
                f"<a href='{pdf.name}'>PDF</a> <a href='{png.name}'>PNG</a>"
                "</figcaption></figure>"
            )
        elif key in notes:
            h.append(f"<p id='{key}' class='not-tested'>{html.escape(notes[key])}</p>")
    h.append(
        "<h2>Files</h2><p class='note'>results.csv holds every evaluate() row of every "
        "model (fractions); the table CSVs are in percent.</p>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>mclviz reproduce</title><style>"
        + _CSS
        + "</style></head><body>"
        + "\n".join(h)
        + "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")


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

    Cost: on the full sets (50,000 training images fit the Gaussians of each rotation,
    10,000 test images and 10,000 per OOD set, 8 SEI views for mcl / rot / mcl-noaux /
    mcl-openset, 1 view for the others) evaluation is about 2.2 million forward passes,
    most of the run's time on a CPU (fp32, as ``evaluate`` embeds). ``train_subset=10000,
    test_subset=2000`` cuts it five-fold; the report states the subsets it used.

    >>> reproduce("report", checkpoints="runs", test_subset=2000)  # doctest: +SKIP
    PosixPath('report/index.html')
    """
    from tqdm.auto import tqdm

    from .checkpoint import load
    from .data import class_names
    from .device import resolve_device
    from .evaluation import evaluate, load_eval_data

    t0 = time.perf_counter()
    methods = tuple(methods)
    unknown = [m for m in methods if m not in DEFAULT_METHODS]
    if unknown:
        raise ValueError(
            f"methods={list(methods)} holds {unknown}; choose among {list(DEFAULT_METHODS)}"
        )
    ood = tuple(ood)
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
    folder = None
    if not train:
        from . import zoo

        folder = Path(checkpoints) if checkpoints is not None else zoo.checkpoints_dir()
        if checkpoints is not None and not folder.is_dir():
            raise FileNotFoundError(
                f"checkpoints={str(checkpoints)!r} is not a folder; pass "
                "the folder holding manifest.json or <model>/"
                f"{_CHECKPOINT_NAME}"
            )
    claim_ood = "tinyimagenet-resize" if "tinyimagenet-resize" in ood else ood[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    names = [*methods, *([OPEN_SET] if open_set else [])]
    models = {n: _Model(n, sei=(1, 4, 8) if n in _SEI_MODELS else (1,)) for n in names}

    tmp = None
    if cache_dir is None:
        tmp = tempfile.mkdtemp(prefix="mclviz-report-")
        cache = Path(tmp)
    else:
        cache = Path(cache_dir)
    bar = tqdm(total=2 * len(names) + 4, desc="reproduce", unit="task", disable=not progress)
    try:
        # 1. checkpoints: trained here, or found
        for n, m in models.items():
            bar.set_postfix_str(f"{'train' if train else 'find'} {n}")
            if train:
                m.path, m.train_seconds = _train_one(n, preset, out, data_root, progress)
            else:
                m.path, m.status, m.manifest_entry = _find_checkpoint(n, folder)
            if m.path is not None:
                m.checkpoint = load(m.path, device=dev)
                m.status = _check_config(n, m.checkpoint.config)
                if m.train_seconds is None:
                    m.train_seconds = _wall_time(m.manifest_entry, m.checkpoint.metrics, m.path)
            bar.update(1)

        # 2. data, loaded once (closed set; open set only when its model is there)
        bar.set_postfix_str("load data")
        data = load_eval_data(
            "cifar10",
            ood=ood,
            data_root=data_root,
            train_subset=train_subset,
            test_subset=test_subset,
        )
        open_model = models.get(OPEN_SET)
        open_data = None
        if open_model is not None and open_model.checkpoint is not None and not open_model.status:
            open_data = load_eval_data(
                "cifar10",
                ood=(),
                known_classes=open_model.checkpoint.config.known_classes,
                data_root=data_root,
                train_subset=train_subset,
                test_subset=test_subset,
            )
        bar.update(1)

        # 3. evaluate every model on the shared data
        for n, m in models.items():
            bar.set_postfix_str(f"evaluate {n}")
            if m.checkpoint is not None and not m.status:
                try:
                    m.table, m.scores = evaluate(
                        m.checkpoint,
                        precision=precision,
                        ood=ood if n != OPEN_SET else (),
                        sei=m.sei,
                        data=open_data if n == OPEN_SET else data,
                        cache_dir=cache,
                        progress=progress,
                        return_scores=True,
                    )
                except ValueError as err:  # e.g. too few training images per class
                    m.status = f"evaluating {n} failed: {err}"
                else:
                    m.eval_seconds = float(m.table.attrs.get("seconds", 0.0))
            bar.update(1)

        # 4. tables and claims
        bar.set_postfix_str("claims")
        claims = _claims(models, claim_ood, n_boot=int(n_boot))
        tables = {name: _paper_table(name, models, ood) for name in _TABLES}
        openset = _openset_table(models)
        budget, diffs = _budget(models, preset)
        bar.update(1)

        # 5. figures
        bar.set_postfix_str("figures")
        if figures:
            cls = class_names("cifar10", data_root)
            files, notes = _figures(models, data, claim_ood, cls, out)
        else:
            files, notes = (
                {},
                {k: f"Figure {k[3]} not made (figures=False)." for k in ("fig1", "fig4", "fig5")},
            )
        bar.update(1)

        # 6. files
        results = pd.concat(
            [m.table.assign(model=n) for n, m in models.items() if m.ok] or [pd.DataFrame()],
            ignore_index=True,
        )
        if len(results):
            results = results[["model", *[c for c in results.columns if c != "model"]]]
        results.to_csv(out / "results.csv", index=False)
        claims.to_csv(out / "claims.csv", index=False)
        for name, df in tables.items():
            df.to_csv(out / f"{name}.csv", index=False)
        openset.to_csv(out / "openset.csv", index=False)
        budget.to_csv(out / "budget.csv", index=False)
        diffs.to_csv(out / "preset_differences.csv", index=False)

        subsets = (
            f"test_subset={test_subset} (seed 0; OOD sets seed 2, open-set unknowns "
            f"seed 1), train_subset={train_subset} (seed 0)"
        )
        source = (
            f"trained here with preset {preset!r} into {out / 'runs'}"
            if train
            else f"checkpoints in {folder}"
        )
        info = {
            "generated": _dt.datetime.now().isoformat(timespec="seconds"),
            "platform": f"{platform.platform()}, {torch.get_num_threads()} threads, eval on {dev} "
            f"({_precision_note(models)} embeddings)",
            "seconds": time.perf_counter() - t0,
            "source": source,
            "n_train": len(data.train[1]),
            "n_test": len(data.test[1]),
            "n_ood": {k: len(v) for k, v in data.ood.items()},
            "n_boot": n_boot,
            "subsets": subsets,
        }
        index = out / "index.html"
        _write_html(
            index,
            claims=claims,
            tables=tables,
            openset=openset,
            budget=budget,
            diffs=diffs,
            caveats=_data_caveats(data_root),
            files=files,
            notes=notes,
            info=info,
            ood=ood,
            claim_ood=claim_ood,
            preset=preset,
        )
        bar.update(1)
    finally:
        bar.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return index
