"""The report's tables: the paper's Tables 1-5 with our numbers, the open set, the budget.

* :func:`reproduced_table`: one paper table in its shape, the paper's rows (those we do
  not run say why), our setting and numbers, the published ones and the differences
  (``mclviz.paper_numbers``); the numbers in percent.
* :func:`detector_table`: every detector of the field (``mclviz.evaluation.BASELINES``)
  and MCL's class Gaussians with and without SEI, on every model: AUROC per OOD set and
  the accuracy of the detectors that classify (issue 16).
* :func:`openset_table`: the open-set model (6 known / 4 unknown CIFAR-10 classes).
* :func:`budget_table`, :func:`preset_differences_table`: how each checkpoint was trained,
  and where its config differs from the preset; :func:`data_caveats` quotes the data
  root's README.

Data sets, models and detectors are named by :mod:`mclviz.names`; the paper tables' rows
keep the paper's names (they address its published numbers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import PRESETS, Config
from ..evaluation import BASELINES
from ..names import dataset_name, detector_name, method_name, sei_name
from ..scoring import KNN, ODIN, Energy, Mahalanobis
from .compared import (
    DETECTOR_LABELS,
    MSP,
    OPEN_SET,
    ComparedModel,
    Setting,
    expected_config,
    no_sei,
    sei,
)
from .ood import PAPER_OOD, ablation_ood, ood_column

__all__ = [
    "DETECTOR_HOW",
    "DETECTOR_ROWS",
    "TABLE_ROWS",
    "budget_table",
    "config_differences",
    "data_caveats",
    "detector_table",
    "openset_table",
    "precision_note",
    "preset_differences_table",
    "reproduced_table",
]

# Table rows: (paper row name, our setting) or (paper row name, reason it is not run).
_NOT_IMPL = "not run: not implemented in mclviz"
# mclviz.training.fine_tune is the mean-shifted one-class method's; nothing fine-tunes a
# SimCLR or MCL backbone with cross-entropy (alone or with NT-Xent)
_NO_CE_FINETUNE = (
    "not run: mclviz has no cross-entropy fine-tuning of a contrastive backbone "
    "(its only fine-tuning, mclviz.training.fine_tune, is the mean-shifted one-class method)"
)
_NO_JOINT_FINETUNE = (
    "not run: mclviz has no joint cross-entropy + NT-Xent fine-tuning "
    "(its only fine-tuning, mclviz.training.fine_tune, is the mean-shifted one-class method)"
)
_NO_DA = "not run: no mclviz method trains on rotated images without rotation labels"
#: the rows of each paper table: (paper row, our setting or why it is not run)
TABLE_ROWS: dict[str, list[tuple[str, Setting | str]]] = {
    "table1": [
        ("Baseline", MSP["ce"]),
        ("ODIN", Setting("ce", "odin")),  # the paper's row has post-processing (*)
        ("Mahalanobis", Setting("ce", "mahalanobis+pre")),  # * : with input pre-processing
        ("Auxiliary Rotation", MSP["rot"]),
        ("Outlier Exposure", _NOT_IMPL + " (needs auxiliary OOD training data)"),
        ("SupCLR", no_sei("supclr")),
        ("CSI + SupCLR", _NOT_IMPL),
        ("CSI + SupCLR + Ensemble", _NOT_IMPL),
        ("Auxiliary Rotation + SEI", sei("rot")),
        ("MCL + SEI", sei("mcl")),  # renamed to the paper's ResNet-18 / ResNet-34 row
        ("SimCLR (ours only, no fine-tuning)", no_sei("simclr")),
        ("MCL + auxiliary CE + SEI (ours only, not the paper's loss)", sei("mcl-ce")),
    ],
    "table2": [
        ("SupCLR", no_sei("supclr")),
        ("MCL", no_sei("mcl")),
        ("MCL + SEI", sei("mcl")),
    ],
    "table3": [
        ("Baseline (w/o NT-Xent)", MSP["ce"]),
        ("SimCLR (CE fine-tuned)", _NO_CE_FINETUNE),
        ("SimCLR (joint fine-tuned)", _NO_JOINT_FINETUNE),
        ("MCL (w/o SPA, w/o aux)", no_sei("ccm")),
        ("MCL (w/o aux)", no_sei("mcl-noaux")),
        ("MCL (CE fine-tuned)", _NO_CE_FINETUNE),
        ("MCL", no_sei("mcl")),
        ("SimCLR (ours only, no fine-tuning)", no_sei("simclr")),
    ],
    "table4": [
        ("MCL + w/o SEI", no_sei("mcl")),
        *[
            (f"MCL + {w}-way SEI {a}", sei("mcl", w, a))
            for w in (4, 8)
            for a in ("avg", "max", "w-avg")
        ],
    ],
    "table5": [
        ("MCL + w/o Aux", no_sei("mcl-noaux")),
        ("MCL + w/o Aux + SEI w-avg", sei("mcl-noaux")),
        ("MCL + DA", _NO_DA),
        ("MCL + DA + SEI w-avg", _NO_DA),
        ("MCL + Aux", no_sei("mcl")),
        ("MCL + Aux + SEI w-avg", sei("mcl")),
    ],
}
#: the wide tables (one AUROC column per OOD set of the paper) and their columns
_WIDE = ("table1", "table2")
_WIDE_PAPER_COLUMNS = ("svhn", "lsun_fix", "imagenet_fix", "cifar100")


# ----------------------------------------------------------------------------- paper tables


#: the paper's MCL backbones and the names of its Table 1 rows
_PAPER_BACKBONES = {"resnet18": "ResNet-18", "resnet34": "ResNet-34"}
#: display names of our other backbones
_OUR_BACKBONES = {"fastnet": "FastNet"}


def _row_specs(name: str, models: dict[str, ComparedModel]) -> list[tuple[str, Setting | str]]:
    """The table's rows; in Table 1 our MCL fills the paper row of its backbone.

    An MCL on a backbone the paper did not use (``fastnet``) fills neither paper row: both
    say "not run: our MCL is a FastNet" and our numbers get their own row,
    "MCL + SEI (FastNet)", with no paper numbers to compare against.
    """
    specs = list(TABLE_ROWS[name])
    if name != "table1":
        return specs
    mcl = models.get("mcl")
    arch = mcl.checkpoint.config.arch if mcl is not None and mcl.ok else "resnet18"
    i = [r for r, _ in specs].index("MCL + SEI")
    setting = specs[i][1]
    tag = _PAPER_BACKBONES.get(arch) or _OUR_BACKBONES.get(arch, arch)
    not_run = f"not run: our MCL is a {tag}"
    specs[i : i + 1] = [
        (f"MCL + SEI ({paper})", setting if paper == tag else not_run)
        for paper in _PAPER_BACKBONES.values()
    ]
    if arch not in _PAPER_BACKBONES:  # right after the paper's MCL rows
        specs.insert(i + len(_PAPER_BACKBONES), (f"MCL + SEI ({tag})", setting))
    return specs


def _paper_columns(name: str, ood: Sequence[str]) -> dict[str, str]:
    """{the paper's AUROC column: the OOD set of ours measuring it}."""
    if name in _WIDE:
        return {c: o for c, o in PAPER_OOD.items() if o in ood}
    return {"auroc": ablation_ood(ood)} if ablation_ood(ood) else {}


def _row_numbers(
    name: str,
    row: str,
    spec: Setting | str,
    models: dict[str, ComparedModel],
    ood: Sequence[str],
    pairs: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the row's setting, status and our numbers per OOD set; the values compared with
    the paper's, None when the row was not run)."""
    info: dict[str, Any] = {"row": row}
    if isinstance(spec, str):
        info.update(model="", setting="", status=spec)
        return info, None
    model = models.get(spec.model)
    first = model.row(spec, ood[0]) if model is not None else None
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
        return info, None
    info["status"] = "ours"
    values = {"row": row, "acc": 100 * float(first["accuracy"])}
    for col, o in pairs.items():
        values[col] = 100 * float(model.row(spec, o)["auroc"])
    for o in ood:
        r = model.row(spec, o)
        info[f"auroc_{ood_column(o)}_ours"] = 100 * float(r["auroc"])
        info[f"fpr95_{ood_column(o)}_ours"] = 100 * float(r["fpr95"])
    if spec.ways > 1 or name in ("table4", "table5"):
        off = spec._replace(variant="official")
        info["acc_official"] = 100 * float(model.row(off, ood[0])["accuracy"])
        for col, o in pairs.items():
            info[f"{col}_official"] = 100 * float(model.row(off, o)["auroc"])
    return info, values


def _column_order(out: pd.DataFrame, pairs: dict[str, str], ood: Sequence[str]) -> list[str]:
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
    first += [f"{c}_paper" for c in ("auroc", *_WIDE_PAPER_COLUMNS)]
    for o in ood:
        first += [f"auroc_{ood_column(o)}_ours", f"fpr95_{ood_column(o)}_ours"]
    first = [c for c in dict.fromkeys(first) if c in out.columns]
    return first + [c for c in out.columns if c not in first]


def reproduced_table(
    name: str, models: dict[str, ComparedModel], ood: Sequence[str]
) -> pd.DataFrame:
    """One paper table in its shape: paper rows, our setting and numbers, paper's, diff.

    Args:
        name: ``"table1"`` ... ``"table5"``.
        models: the evaluated models.
        ood: our OOD sets.

    Returns:
        One row per paper row (in the paper's order) with ``row, model, detector, ways,
        aggregation, variant, setting, status`` ("ours" or "not run: ..."), ``acc_*`` and
        each AUROC column of the paper as ``<col>_ours, <col>_paper, <col>_diff`` (percent),
        our AUROC and FPR at 95% TPR on every OOD set, and for SEI rows the official
        variant's numbers.
    """
    from ..paper_numbers import comparison_table, paper_table

    paper = paper_table(name)
    specs = _row_specs(name, models)
    pairs = _paper_columns(name, ood)
    ours_rows, meta = [], []
    for row, spec in specs:
        info, values = _row_numbers(name, row, spec, models, ood, pairs)
        meta.append(info)
        if values is not None:
            ours_rows.append(values)
    ours = pd.DataFrame(ours_rows, columns=["row", "acc", *pairs])
    if ours.empty:  # comparison_table needs a metric column: give it an empty frame
        ours = pd.DataFrame({"row": pd.Series([], dtype=object), "acc": pd.Series([], dtype=float)})
    cmp = comparison_table(ours, name)
    out = pd.DataFrame(meta).set_index("row").join(cmp, how="left")
    # order: paper rows (as in the paper) then ours, as specified
    out = out.loc[[r for r, _ in specs]]
    # the paper's AUROC columns even where none of ours is there to compare
    for c in _WIDE_PAPER_COLUMNS if name in _WIDE else ("auroc",):
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
    return out[_column_order(out, pairs, ood)]


# ----------------------------------------------------------------------------- detectors


#: whose detector a row of the detector table is, where the display name does not say
_CITED = {"mahalanobis": "Lee et al.", "mahalanobis+pre": "Lee et al.", "knn": "Sun et al."}


def _detector_rows() -> list[tuple[str, str, int, str]]:
    rows = [
        (detector_name(n) + (f" ({_CITED[n]})" if n in _CITED else ""), n, 1, "none")
        for n in BASELINES
    ]
    gaussians = f"{method_name('mcl')}'s {detector_name('gaussians')}"
    rows += [
        (f"{gaussians}, {sei_name(1)} (Eq. 12-14)", "gaussians", 1, "none"),
        (f"{gaussians}, 8-way SEI w-avg (Eq. 15-20)", "gaussians", 8, "w-avg"),
    ]
    return rows


#: the rows of the detector x model table: (row, detector name, SEI views, aggregation)
DETECTOR_ROWS: list[tuple[str, str, int, str]] = _detector_rows()
_GAUSSIANS_HOW = (
    "the method's scored output (z = g(f(x)) for contrastive models, the penultimate "
    "features for classifiers), L2-normalised (as the authors' code; Eq. 12 has none); "
    "covariance 'auto': one per class (Eq. 12) when every class has more training images "
    "than dimensions, else one tied covariance (each model's choice: in its cell); "
    "+ 1e-3 I (the ridge chosen on held-out training images, docs/covariance.md)"
)
_LEE = (
    "raw penultimate features (not normalised); one tied covariance, the within-class "
    "scatter / N (Lee et al.) + 1e-6 I"
)
#: how each detector normalises its inputs and which covariance it uses
DETECTOR_HOW: dict[str, str] = {
    "msp": "logits; no normalisation, no covariance",
    "energy": f"logits, T = {Energy().temperature:g}; no normalisation, no covariance",
    "odin": f"logits / T (T = {ODIN().temperature:g}) of the inputs moved by eps = "
    f"{ODIN().epsilon:g} along the sign of the score's gradient; no normalisation, no "
    "covariance",
    "mahalanobis": _LEE,
    "mahalanobis+pre": f"{_LEE}; on the inputs moved by eps = "
    f"{Mahalanobis.PREPROCESSING_EPSILON:g} along the sign of the score's gradient",
    "rmd": "raw penultimate features; the tied class covariance and one background "
    "covariance of all training features (both / N, + 1e-6 I)",
    "knn": "L2-normalised penultimate features; no covariance (minus the distance to the "
    f"k-th nearest training feature, k = {KNN().k})",
    "vim": "raw penultimate features centred at the classifier's origin; principal "
    "subspace of their second moment (D = N / 2 for our widths); no covariance",
    "gaussians": _GAUSSIANS_HOW,
}


def _all_ood(models: dict[str, ComparedModel]) -> list[str]:
    seen: dict[str, None] = {}
    for m in models.values():
        if m.ok:
            seen.update(dict.fromkeys(m.table["ood"]))
    return list(seen)


def _detector_cell(m: ComparedModel, name: str, ways: int, agg: str) -> dict[str, Any]:
    """One (detector, model) cell: its status and, when run, its numbers (percent)."""
    if not m.ok:
        return {"status": f"not run: {m.status or 'not evaluated'}"}
    if name in m.not_run:
        return {"status": m.not_run[name]}
    rows = m.rows(Setting(m.name, name, ways, agg))
    if not len(rows):
        why = "n/a (not scored with SEI)" if ways > 1 and max(m.sei) < ways else "not evaluated"
        return {"status": why}
    first = rows.iloc[0]
    cell: dict[str, Any] = {
        "status": "ours",
        "output": first["output"],
        "normalize": first["normalize"],
        "covariance": first["covariance"],
        "setting_key": first["key"],
        "acc": 100 * float(first["accuracy"]) if pd.notna(first["accuracy"]) else np.nan,
    }
    for _, r in rows.iterrows():
        cell[f"auroc_{ood_column(r['ood'])}"] = 100 * float(r["auroc"])
    return cell


def detector_table(models: dict[str, ComparedModel]) -> pd.DataFrame:
    """Every detector row of :data:`DETECTOR_ROWS` on every model, one row per pair.

    Columns: ``row, detector, ways, aggregation, model, status`` ("ours"; "n/a (no
    classifier)" for a detector that reads a classifier's logits on a model without one;
    "n/a (not scored with SEI)"; "not run: ..."), ``setting`` (the detector and its
    hyperparameters), ``how`` (its normalisation and covariance, :data:`DETECTOR_HOW`),
    ``output, normalize, covariance`` as the
    evaluation recorded them, ``setting_key`` (the detector's key in ``results.csv``),
    ``acc`` (only for detectors that classify) and ``auroc_<ood>`` per OOD set the model
    was evaluated on, in percent.
    """
    oods = _all_ood(models)
    out = []
    for row, name, ways, agg in DETECTOR_ROWS:
        for model_name, m in models.items():
            cell = _detector_cell(m, name, ways, agg)
            out.append(
                {
                    "row": row,
                    "detector": name,
                    "ways": ways,
                    "aggregation": agg,
                    "model": model_name,
                    "setting": DETECTOR_LABELS.get(name, row),
                    "how": DETECTOR_HOW[name],
                    **cell,
                }
            )
    columns = [
        "row", "detector", "ways", "aggregation", "model", "status", "setting", "how", "output",
        "normalize", "covariance", "setting_key", "acc",
        *[f"auroc_{ood_column(o)}" for o in oods],
    ]  # fmt: skip
    return pd.DataFrame(out).reindex(columns=columns)


def openset_table(models: dict[str, ComparedModel]) -> pd.DataFrame:
    """The open-set model's rows (class Gaussians, every SEI setting, paper variant):
    accuracy on the known classes, AUROC of known vs unknown test images; one 'not run'
    row when it was not evaluated (the baselines on it: :func:`detector_table`)."""
    model = models.get(OPEN_SET)
    row0 = f"{method_name('mcl')} (open set: 6 known / 4 unknown {dataset_name('cifar10')} classes)"
    if model is None or not model.ok:
        reason = "open_set=False" if model is None else model.status
        return pd.DataFrame(
            [{"row": row0, "model": OPEN_SET, "setting": "", "status": f"not run: {reason}"}]
        )
    rows = []
    t = model.table
    # MCL's scoring in every SEI setting; the baselines on this model: the detector table
    t = t[(t["ood"] == "open-set") & (t["variant"] == "paper") & (t["detector"] == "gaussians")]
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


def config_differences(
    cfg: Config, preset: str, overrides: dict[str, Any] | None = None
) -> list[tuple[str, Any, Any]]:
    """(field, checkpoint's value, preset's value) where ``cfg`` differs from ``preset``
    with the model's own fields (``overrides``: ``expected_config(name)``; default the
    checkpoint's method and known classes); the data root and the class count that
    training records (``num_classes``, left to the labels by the presets) are no recipe
    change."""
    fields = {"method": cfg.method, "known_classes": cfg.known_classes, **(overrides or {})}
    ref = Config.preset(preset, **fields).to_dict()
    got = cfg.to_dict()
    diffs = []
    for key, value in got.items():
        if key == "data_root":
            continue
        want = ref.get(key)
        if key == "num_classes" and want is None:  # training sets it from the labels
            continue
        if key == "extra":  # older checkpoints recorded the class count there
            value = {k: v for k, v in value.items() if k != "num_classes"}
            want = {k: v for k, v in (want or {}).items() if k != "num_classes"}
        if value != want:
            diffs.append((key, value, want))
    return diffs


def budget_table(models: dict[str, ComparedModel]) -> pd.DataFrame:
    """How each model was trained and evaluated: one row per model (its status alone when
    there is no checkpoint)."""
    rows = []
    for name, m in models.items():
        if m.checkpoint is None:
            rows.append({"model": name, "status": m.status or "not evaluated"})
            continue
        ck, cfg = m.checkpoint, m.checkpoint.config
        hist = ck.metrics.get("history") or [{}]
        same = [p for p in PRESETS if not config_differences(cfg, p, expected_config(name))]
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
    return pd.DataFrame(rows)


def preset_differences_table(models: dict[str, ComparedModel], preset: str) -> pd.DataFrame:
    """Every config field where a checkpoint differs from ``preset`` (JSON values), and a
    row for a run that stopped before its configured epochs."""
    diffs = []
    for name, m in models.items():
        if m.checkpoint is None:
            continue
        ck, cfg = m.checkpoint, m.checkpoint.config
        for key, value, want in config_differences(cfg, preset, expected_config(name)):
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
    return pd.DataFrame(diffs, columns=["model", "field", "checkpoint", f"preset_{preset}"])


def precision_note(models: dict[str, ComparedModel]) -> str:
    """The embedding precision(s) the evaluation used (``mclviz.device`` decided them)."""
    names = sorted({m.scores.outputs.precision.name for m in models.values() if m.ok})
    return "/".join(names) or "no"


def data_caveats(data_root: str | None) -> list[str]:
    """The caveat bullets of the data root's README.md (``Caveats`` section)."""
    from ..data import data_root as _root

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
