"""The paper's claims, and how each is decided on our numbers.

How a claim is decided (all on the claim OOD set, Tiny ImageNet (resize) by default, with
the paper's aggregation variant, Eq. 17-20): the AUROC difference A - B between the two
settings the claim compares, and its 95% percentile-bootstrap interval
(``metrics.bootstrap_ci``; IND and OOD samples resampled independently, each resample
shared by A and B since both score the same images). The interval above 0: *supported*;
below 0: *not supported*; containing 0: *inconclusive*. A claim made of several
comparisons (a, b) is supported when all are, not supported when one is, else
inconclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..names import dataset_name
from ..scoring import Mahalanobis
from .compared import MSP, ComparedModel, Setting, find_row, missing_reason, no_sei, sei
from .ood import PAPER_OOD, PAPER_OOD_LABEL

__all__ = [
    "CLAIMS",
    "CLAIM_IDS",
    "Claim",
    "Comparison",
    "auroc",
    "auroc_diff_ci",
    "claims_table",
    "combine_verdicts",
    "unequal_training",
    "unequal_views",
    "unequal_recipe",
    "untested_claims",
    "verdict",
]

CLAIM_IDS: tuple[str, ...] = ("a", "b", "c", "d", "e")


class Comparison(NamedTuple):
    """One comparison of a claim: setting ``a`` (named ``name_a``) beats setting ``b``."""

    name_a: str
    a: Setting
    name_b: str
    b: Setting


class Claim(NamedTuple):
    """A claim of the paper: the table it rests on, its statement, its comparisons."""

    table: str
    statement: str
    comparisons: list[Comparison]


_BASELINES_T1 = [
    ("Baseline", MSP["ce"]),
    ("ODIN", Setting("ce", "odin")),
    ("Mahalanobis", Setting("ce", "mahalanobis+pre")),  # Table 1's row (post-processing)
    # the same detector without the pre-processing, and MCL's own scoring of the same
    # features (normalised, one covariance per class): the verdict can hang on the choice
    ("Mahalanobis (Lee, no pre-processing)", Setting("ce", "mahalanobis")),
    ("Class Gaussians on CE features", no_sei("ce")),
    ("Auxiliary Rotation", MSP["rot"]),
    ("Auxiliary Rotation + SEI", sei("rot")),
    ("SupCLR", no_sei("supclr")),
    ("SimCLR", no_sei("simclr")),
]
CLAIMS: dict[str, Claim] = {
    "a": Claim(
        "Table 1",
        "MCL + SEI beats every baseline on AUROC",
        [Comparison("MCL + SEI", sei("mcl"), name, s) for name, s in _BASELINES_T1],
    ),
    "b": Claim(
        "Table 2",
        "MCL beats SupCLR on AUROC (with and without SEI)",
        [
            Comparison("MCL", no_sei("mcl"), "SupCLR", no_sei("supclr")),
            Comparison("MCL + SEI", sei("mcl"), "SupCLR", no_sei("supclr")),
        ],
    ),
    "c": Claim(
        "Table 3",
        "SPA helps: MCL w/o aux (CCM + SPA) beats MCL w/o SPA, w/o aux (CCM) on AUROC",
        [Comparison("MCL (w/o aux)", no_sei("mcl-noaux"), "MCL (w/o SPA, w/o aux)", no_sei("ccm"))],
    ),
    "d": Claim(
        "Table 4",
        "SEI (8-way w-avg) helps a model trained with the rotation auxiliary: "
        "MCL + 8-way SEI w-avg beats MCL without SEI on AUROC",
        [Comparison("MCL + 8-way SEI w-avg", sei("mcl"), "MCL w/o SEI", no_sei("mcl"))],
    ),
    "e": Claim(
        "Table 5",
        "SEI hurts a model trained without the auxiliary task: MCL w/o aux "
        "without SEI beats MCL w/o aux + 8-way SEI w-avg on AUROC",
        [
            Comparison(
                "MCL + w/o Aux", no_sei("mcl-noaux"), "MCL + w/o Aux + SEI w-avg", sei("mcl-noaux")
            )
        ],
    ),
}

_COLUMNS = [
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


# ----------------------------------------------------------------------------- bootstrap


def auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """AUROC (IND positive) as the Mann-Whitney statistic, ties counted half (the
    bootstrap's inner loop: ``metrics.ood_metrics`` computes all four metrics)."""
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([s_in, s_out]))
    n1, n0 = len(s_in), len(s_out)
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auroc_diff_ci(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], *, n_boot: int, seed: int
) -> tuple[float, float]:
    """95% bootstrap interval of AUROC(a) - AUROC(b) on the same IND and OOD images.

    Args:
        a, b: (IND scores (n_in,), OOD scores (n_out,)) of the two settings, row i of
            both the same image.
        n_boot, seed: resamples and their seed (``metrics.bootstrap_ci``).
    """
    from ..metrics import bootstrap_ci

    (a_in, a_out), (b_in, b_out) = a, b

    def diff(i: np.ndarray, o: np.ndarray) -> float:
        return auroc(a_in[i], a_out[o]) - auroc(b_in[i], b_out[o])

    # resample IND and OOD indices independently; each draw indexes both models
    return bootstrap_ci(
        diff, np.arange(len(a_in)), np.arange(len(a_out)), n_boot=n_boot, seed=seed, paired=False
    )


def verdict(low: float, high: float) -> str:
    """The verdict of one comparison from its interval (see the module docstring)."""
    if low > 0:
        return "supported"
    if high < 0:
        return "not supported"
    return "inconclusive"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its comparisons' (see the module docstring)."""
    if not verdicts:
        return "not tested"
    if "not supported" in verdicts:
        return "not supported"
    if all(v == "supported" for v in verdicts):
        return "supported"
    return "inconclusive"


# ----------------------------------------------------------------------------- notes


def _compared(models: dict[str, ComparedModel], comparisons) -> dict[str, Any]:
    """The checkpoints of the models a claim compares, in order, those with one only."""
    names = dict.fromkeys(n for _, sa, _, sb in comparisons for n in (sa.model, sb.model))
    return {
        n: models[n].checkpoint for n in names if n in models and models[n].checkpoint is not None
    }


def unequal_training(models: dict[str, ComparedModel], comparisons) -> str:
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


def unequal_views(models: dict[str, ComparedModel], comparisons) -> str:
    """A note when the compared models saw their images in different numbers of views.

    Same epochs are not the same compute: ``mcl`` sees each image in 4 rotations x 2
    views (Eq. 11), the paper's design, so it costs 4x the forward passes of ``supclr``
    per epoch. The reader of a claim should know that.
    """
    views = {n: ck.config.views_per_image for n, ck in _compared(models, comparisons).items()}
    if len(set(views.values())) <= 1:
        return ""
    return "views per training image differ: " + ", ".join(f"{n} {v}" for n, v in views.items())


def _minutes(ck) -> str:
    seconds = (getattr(ck, "metrics", None) or {}).get("seconds")
    return "wall time unknown" if seconds is None else f"{float(seconds) / 60:.0f} min"


def unequal_recipe(models: dict[str, ComparedModel], comparisons) -> str:
    """A note when the compared models are different networks, or took very different
    wall times (more than 1.5x apart): each one's network, epochs and training wall time.

    The shipped models are retrained on the ``fast`` recipe in turn; until every one is,
    a claim may compare a FastNet with a quarter-width ResNet-18, and says so.
    """
    cks = _compared(models, comparisons)
    nets = {n: f"{ck.config.arch} x{ck.config.width:g}" for n, ck in cks.items()}
    secs = [(getattr(ck, "metrics", None) or {}).get("seconds") for ck in cks.values()]
    secs = [float(x) for x in secs if x is not None]
    slow = len(secs) == len(cks) and len(secs) > 1 and max(secs) > 1.5 * min(secs)
    if len(set(nets.values())) <= 1 and not slow:
        return ""
    what = "networks differ" if len(set(nets.values())) > 1 else "wall times differ"
    return f"{what}: " + ", ".join(
        f"{n} {nets[n]} ({ck.config.epochs} epochs, {_minutes(ck)})" for n, ck in cks.items()
    )


# ----------------------------------------------------------------------------- the table


def _comparison_row(
    models: dict[str, ComparedModel], c: Comparison, claim_ood: str, n_boot: int
) -> dict[str, Any] | None:
    """The numbers and verdict of one comparison, None when a side was not evaluated."""
    ra, rb = find_row(models, c.a, claim_ood), find_row(models, c.b, claim_ood)
    if ra is None or rb is None:
        return None
    a = models[c.a.model].score_arrays(c.a, claim_ood)
    b = models[c.b.model].score_arrays(c.b, claim_ood)
    low, high = auroc_diff_ci(a, b, n_boot=n_boot, seed=0)
    auroc_a, auroc_b = 100 * float(ra["auroc"]), 100 * float(rb["auroc"])
    return {
        "a": c.name_a,
        "setting_a": c.a.label(),
        "b": c.name_b,
        "setting_b": c.b.label(),
        "key_a": c.a.key(),
        "key_b": c.b.key(),
        "auroc_a": auroc_a,
        "auroc_b": auroc_b,
        "acc_a": 100 * float(ra["accuracy"]),
        "acc_b": 100 * float(rb["accuracy"]),
        "diff": auroc_a - auroc_b,
        "ci_low": 100 * low,
        "ci_high": 100 * high,
        "verdict": verdict(low, high),
        "n_in": len(a[0]),
        "n_out": len(a[1]),
        "n_boot": n_boot,
        "note": "",
    }


def _claim_rows(
    cid: str, claim: Claim, models: dict[str, ComparedModel], claim_ood: str, n_boot: int
) -> list[dict[str, Any]]:
    """One row per comparison of a claim that could be made, or one 'not tested' row."""
    base = {"claim": cid, "table": claim.table, "statement": claim.statement, "ood": claim_ood}
    tested, skipped = [], []
    for c in claim.comparisons:
        row = _comparison_row(models, c, claim_ood, n_boot)
        if row is None:
            skipped.append((c.name_a, c.name_b, missing_reason(models, [c.a.model, c.b.model])))
        else:
            tested.append({**base, **row})
    if not tested:
        why = "; ".join(dict.fromkeys(w for _, _, w in skipped))
        first = claim.comparisons[0]
        return [
            {
                **base,
                "a": first.name_a,
                "b": first.name_b,
                "verdict": "not tested",
                "claim_verdict": "not tested",
                "note": f"not tested ({why})",
            }
        ]
    notes = []
    if skipped:
        notes.append("not compared: " + "; ".join(f"{a} vs {b} ({why})" for a, b, why in skipped))
    notes += [
        x
        for x in (
            unequal_training(models, claim.comparisons),
            unequal_views(models, claim.comparisons),
            unequal_recipe(models, claim.comparisons),
        )
        if x
    ]
    overall, note = combine_verdicts([r["verdict"] for r in tested]), "; ".join(notes)
    for r in tested:
        r["claim_verdict"], r["note"] = overall, note
    return tested


def claims_table(models: dict[str, ComparedModel], claim_ood: str, *, n_boot: int) -> pd.DataFrame:
    """One row per comparison of every claim (plus one per claim that is not tested).

    Columns: the claim (``claim, table, statement, ood``), the two sides (``a, setting_a,
    b, setting_b``, ``auroc_*`` and ``acc_*`` in percent, ``key_*`` as ``Setting.key``),
    ``diff`` = A - B and its interval ``ci_low, ci_high`` (percentage points),
    ``verdict``, ``claim_verdict``, ``n_in, n_out, n_boot`` and a ``note``.
    """
    rows = [
        r
        for cid, claim in CLAIMS.items()
        for r in _claim_rows(cid, claim, models, claim_ood, n_boot)
    ]
    return pd.DataFrame(rows).reindex(columns=_COLUMNS)


def untested_claims(ood: Sequence[str]) -> list[str]:
    """The paper's claims (and comparisons) this report cannot test, and why."""
    # ImageNet (FIX) is never measured: Tiny ImageNet (resize) only stands in for it
    lacking = [
        lab
        for c, lab in PAPER_OOD_LABEL.items()
        if c in ("lsun_fix", "imagenet_fix") or PAPER_OOD[c] not in ood
    ]
    lines = []
    tin, fix = dataset_name(PAPER_OOD["imagenet_fix"]), PAPER_OOD_LABEL["imagenet_fix"]
    if lacking:
        lines.append(
            f"Tables 1-2: AUROC on {', '.join(lacking)}: not tested (not in the data root). "
            f"{tin} stands in for {fix}: images of the same source, downsampled with the "
            "artefacts Tack et al. 2020 fixed, so its numbers are not one-to-one comparable "
            "with the paper's."
        )
    if "cifar100" not in ood:
        lines.append(
            f"Tables 3-5 use {PAPER_OOD_LABEL['cifar100']} as OOD in the paper: not tested "
            f"on {dataset_name('cifar100')} (not available); our Tables 3-5 and claims "
            f"(c)-(e) use {tin} instead."
        )
    lines += [
        "Table 1: MCL + SEI beats Outlier Exposure and CSI (+ ensemble): not tested "
        "(these methods are not implemented in mclviz).",
        "Table 1: MCL + SEI beats ODIN and Mahalanobis as published: tested only in part. "
        "Our ODIN uses the paper's T = 1000 and eps = 0.0014 (not tuned on OOD data); our "
        "Mahalanobis is Lee et al.'s detector with input pre-processing (eps = "
        f"{Mahalanobis.PREPROCESSING_EPSILON:g}, fixed) on the penultimate features of the "
        "cross-entropy model only: without the feature ensemble over every block and its "
        "weights fitted on OOD validation data.",
        "Table 3: fine-tuning SimCLR or MCL with cross-entropy (or jointly with NT-Xent) "
        "lowers AUROC: not tested (mclviz has no such fine-tuning; its only fine-tuning, "
        "mclviz.training.fine_tune, is the mean-shifted one-class method).",
        "Table 5: SEI gives a slight gain for MCL trained with rotated images but no rotation "
        "labels (DA): not tested (no mclviz method trains that way).",
    ]
    return lines
