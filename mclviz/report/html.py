"""The report page: one self-contained ``index.html`` (tables as HTML, figures as
embedded PNG, no script, nothing fetched).

:func:`write_html` writes the page: the verdict on each claim, the budget and data
caveats, Tables 1-5 in the paper's shape, the open-set table and the figures.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from .claims import CLAIM_IDS, CLAIMS, untested_claims
from .ood import PAPER_OOD, ablation_ood, ood_column, ood_label

__all__ = ["write_html"]

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
    claim = CLAIMS[cid]
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
        f"<b>({cid}) {html.escape(claim.statement)} ({claim.table})</b>: "
        f'<span class="{cls}">{html.escape(verdict)}</span>. ' + "; ".join(parts) + extra + "</li>"
    )


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
    from ..paper_numbers import TABLES

    caption = TABLES[name]["caption"]
    cols = list(_T12_COLS if name in ("table1", "table2") else _T345_COLS)
    shown = (
        {o for c, o in PAPER_OOD.items() if f"{c}_ours" in df.columns}
        if name in ("table1", "table2")
        else {ablation_ood(ood)}
    )
    for o in ood:  # our AUROC on the other OOD sets (no published counterpart)
        if o not in shown:
            cols.append((f"auroc_{ood_column(o)}_ours", f"AUROC {ood_label(o)} ours"))
    if name in ("table1", "table2"):
        note = (
            "Our AUROC on Tiny ImageNet (resize) is set beside the paper's ImageNet (FIX) "
            "column as its nearest stand-in; the two sets differ. Our noise-set AUROCs "
            "have no published counterpart."
        )
    else:
        stand = "CIFAR-100" if "cifar100" in ood else ood_label(claim_ood)
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


def _header(info: dict[str, Any]) -> str:
    return (
        f"<h1>mclviz reproduce: do the claims of Cho, Seol &amp; Lee (IJCAI 2021) hold?</h1>"
        f"<p class='note'>Generated {html.escape(info['generated'])} by mclviz "
        f"{__version__} (torch {torch.__version__}, {html.escape(info['platform'])}) in "
        f"{info['seconds']:.0f} s. Models: {html.escape(info['source'])}. In-distribution: "
        f"CIFAR-10 ({info['n_train']} training images fit the class Gaussians, "
        f"{info['n_test']} test images); OOD: "
        + ", ".join(f"{html.escape(ood_label(o))} ({n})" for o, n in info["n_ood"].items())
        + ".</p>"
    )


def _claims_section(
    claims: pd.DataFrame, n_boot: int, ood: Sequence[str], claim_ood: str
) -> list[str]:
    h = ["<h2 id='claims'>Claims</h2>"]
    h.append(
        "<p class='note'>Each verdict compares the AUROC of two settings on "
        f"{html.escape(ood_label(claim_ood))} (paper aggregation variant, "
        "Eq. 17-20): the difference A − B with its 95% bootstrap interval "
        f"({int(n_boot)} resamples of the IND and OOD images, seed 0). Interval "
        "above 0: supported; below 0: not supported; containing 0: inconclusive. A claim "
        "with several comparisons is supported when all are, not supported when one is. "
        "<a href='claims.csv'>claims.csv</a></p><ul>"
    )
    for cid in CLAIM_IDS:
        h.append(_claim_html(cid, claims[claims["claim"] == cid]))
    h.append("</ul><h3>Claims not tested</h3><ul>")
    h += [f"<li class='not-tested'>{html.escape(line)}</li>" for line in untested_claims(ood)]
    h.append("</ul>")
    return h


def _budget_section(
    budget: pd.DataFrame,
    diffs: pd.DataFrame,
    caveats: list[str],
    subsets: str,
    ood: Sequence[str],
    preset: str,
) -> list[str]:
    h = ["<h2 id='budget'>Budget, seeds and data caveats</h2><h3>Data caveats</h3><ul>"]
    h += [f"<li>{html.escape(c)}</li>" for c in caveats]
    h.append(
        f"<li>OOD sets differ from the paper's: we have {html.escape(', '.join(ood_label(o) for o in ood))}; "
        "the paper uses SVHN, LSUN (FIX), ImageNet (FIX) and CIFAR-100.</li>"
        f"<li>Subsets (seeded, explicit): {html.escape(subsets)}.</li></ul>"
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
    return h


def _openset_section(openset: pd.DataFrame) -> list[str]:
    note = (
        "<h2 id='openset'>Open set (not in the paper)</h2><p class='note'>MCL trained on "
        "CIFAR-10 classes 0-5 only; accuracy on the test images of those classes, AUROC "
        "of known vs unknown (classes 6-9) test images. The paper reports no open-set "
        "numbers. <a href='openset.csv'>openset.csv</a></p>"
    )
    columns = [
        ("row", "Model"),
        ("setting", "setting"),
        ("status", "status"),
        ("acc_known", "Acc (known)"),
        ("auroc_unknown", "AUROC (unknown)"),
        ("fpr95", "FPR at 95% TPR"),
    ]
    return [note, _html_table(openset, columns, "openset")]


def _figures_section(files: dict[str, list[Path]], notes: dict[str, str]) -> list[str]:
    h = ["<h2 id='figures'>Figures</h2>"]
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
    return h


def write_html(
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
    """Write the report page to ``path``.

    Args:
        claims: :func:`~.claims.claims_table`; tables: {"table1": ..., "table5": ...}
            (:func:`~.tables.reproduced_table`); openset, budget, diffs: the open-set,
            budget and preset-differences tables.
        caveats: the data root's caveats; files, notes: the figures' files and captions
            (or why a figure was not made).
        info: the run: ``generated, platform, seconds, source, n_train, n_test, n_ood,
            n_boot, subsets``.
        ood, claim_ood, preset: the OOD sets, the one the claims use, the preset compared.
    """
    h = [_header(info)]
    h += _claims_section(claims, info["n_boot"], ood, claim_ood)
    h += _budget_section(budget, diffs, caveats, info["subsets"], ood, preset)
    h += [_table_html(name, df, ood, claim_ood) for name, df in tables.items()]
    h += _openset_section(openset)
    h += _figures_section(files, notes)
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
