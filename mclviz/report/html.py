"""The report page: ``index.html``, tables as HTML, figures as embedded PNG and as
interactive plotly figures; it works offline (opened from disk, nothing is fetched).

:func:`write_html` writes the page: a contents list, the verdict on each claim (each
linked to the table, figures and CSV rows behind it), the budget and data caveats,
Tables 1-5 in the paper's shape, the detector x model table, the open-set table, the
figures (Figures 1 and 5 also interactive) and the rows behind the claims.

The only script is plotly.js, written beside the page as ``plotly.min.js`` (the copy
bundled with the installed plotly, :mod:`mclviz.plots.interactive`) and referenced
relatively, with each interactive figure's inline drawing call; no CDN, no URL.

Data sets, models and detectors are named by :mod:`mclviz.names` (the paper's rows and
columns keep the paper's names).
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
from ..names import dataset_name, detector_name, method_name
from ..plots.interactive import PLOTLY_JS, figure_div, script_tag, write_plotly_js
from .claims import CLAIM_IDS, CLAIMS, untested_claims
from .compared import model_name
from .ood import PAPER_OOD, PAPER_OOD_LABEL, ablation_ood, ood_column
from .tables import DETECTOR_ROWS

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
nav#contents{background:#f8f8f8;border:1px solid #e4e4e4;padding:.3em 1.2em;font-size:.92em}
nav#contents ol{margin:.3em 0}.links{font-size:.85em;color:#444}
tr:target{background:#fff3bf}nav#contents ol{columns:3}td.how{min-width:20em;font-size:.9em}
"""


#: the figures behind each claim (the page links them when they were made)
CLAIM_FIGURES: dict[str, tuple[str, ...]] = {
    "a": ("fig4", "fig5", "fig5-interactive"),
    "b": ("fig1", "fig1-interactive"),
    "c": ("fig1", "fig1-interactive"),
    "d": ("fig5", "fig5-interactive", "fig5_nosei", "fig5_nosei-interactive"),
    "e": (),
}
_FIGURE_NAMES = {
    "fig1": "Figure 1",
    "fig1-interactive": "Figure 1 (interactive)",
    "fig4": "Figure 4",
    "fig5": "Figure 5",
    "fig5-interactive": "Figure 5 (interactive)",
    "fig5_nosei": "Figure 5 without SEI",
    "fig5_nosei-interactive": "Figure 5 without SEI (interactive)",
}


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


def _row_id(csv_name: str, number: int) -> str:
    """The page id of data row ``number`` (1-based, after the header) of ``csv_name``."""
    return f"{csv_name}-row-{number}"


def _result_keys(results: pd.DataFrame) -> dict[str, int]:
    """{``model/detector/ways/aggregation/variant/ood``: its 1-based row in results.csv}."""
    if not len(results):
        return {}
    cols = ["model", "detector", "ways", "aggregation", "variant", "ood"]
    keys = results[cols].astype(str).agg("/".join, axis=1)
    return {k: i + 1 for i, k in enumerate(keys)}


def _claim_links(
    cid: str, rows: pd.DataFrame, result_rows: dict[str, int], anchors: set[str]
) -> str:
    """Links from a claim to its table, figures and the CSV rows behind it."""
    claim = CLAIMS[cid]
    table = "table" + claim.table.split()[-1]
    parts = [f"<a href='#{table}'>{html.escape(claim.table)}</a>"]
    if cid == "a":
        parts.append("<a href='#detectors'>detector x model table</a>")
    claim_rows = [f"<a href='#{_row_id('claims', i + 1)}'>{i + 1}</a>" for i in rows.index.tolist()]
    parts.append("claims.csv row" + ("s " if len(claim_rows) > 1 else " ") + ", ".join(claim_rows))
    numbers = []
    for _, r in rows.iterrows():
        if r["verdict"] == "not tested":
            continue
        for side in ("a", "b"):
            n = result_rows.get(f"{r[f'key_{side}']}/{r['ood']}")
            if n is not None and n not in numbers:
                numbers.append(n)
    if numbers:
        links = ", ".join(f"<a href='#{_row_id('results', n)}'>{n}</a>" for n in numbers)
        parts.append(f"results.csv row{'s' if len(numbers) > 1 else ''} {links}")
    parts += [f"<a href='#{f}'>{_FIGURE_NAMES[f]}</a>" for f in CLAIM_FIGURES[cid] if f in anchors]
    return "<br><span class='links'>Behind it: " + " · ".join(parts) + "</span>"


def _claim_html(
    cid: str, rows: pd.DataFrame, result_rows: dict[str, int], anchors: set[str]
) -> str:
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
        f'<span class="{cls}">{html.escape(verdict)}</span>. '
        + "; ".join(parts)
        + extra
        + _claim_links(cid, rows, result_rows, anchors)
        + "</li>"
    )


_T12_COLS = [
    ("row", "Training method"),
    ("setting", "our setting"),
    ("status", "status"),
    ("acc_ours", "Test acc. ours"),
    ("acc_paper", "paper"),
    ("acc_diff", "Δ"),
    ("imagenet_fix_ours", f"AUROC ImageNet: ours = {dataset_name(PAPER_OOD['imagenet_fix'])}"),
    ("imagenet_fix_paper", f"paper = {PAPER_OOD_LABEL['imagenet_fix']}"),
    ("imagenet_fix_diff", "Δ"),
    ("svhn_ours", f"{dataset_name(PAPER_OOD['svhn'])} ours"),
    ("svhn_paper", f"{PAPER_OOD_LABEL['svhn']} paper"),
    ("svhn_diff", "Δ"),
    ("cifar100_ours", f"{dataset_name(PAPER_OOD['cifar100'])} ours"),
    ("cifar100_paper", f"{PAPER_OOD_LABEL['cifar100']} paper"),
    ("cifar100_diff", "Δ"),
    ("lsun_fix_paper", f"{PAPER_OOD_LABEL['lsun_fix']} paper"),
]
_T345_COLS = [
    ("row", "Model"),
    ("setting", "our setting"),
    ("status", "status"),
    ("acc_ours", "Acc ours"),
    ("acc_paper", "paper"),
    ("acc_diff", "Δ"),
    ("auroc_ours", "AUROC ours"),
    ("auroc_paper", f"paper ({PAPER_OOD_LABEL['cifar100']})"),
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
            cols.append((f"auroc_{ood_column(o)}_ours", f"AUROC {dataset_name(o)} ours"))
    if name in ("table1", "table2"):
        note = (
            f"Our AUROC on {dataset_name(PAPER_OOD['imagenet_fix'])} is set beside the "
            f"paper's {PAPER_OOD_LABEL['imagenet_fix']} column as its nearest stand-in; the "
            "two sets differ. Our noise-set AUROCs have no published counterpart."
        )
    else:
        ours = dataset_name("cifar100")
        stand = ours if "cifar100" in ood else dataset_name(claim_ood)
        note = f"The paper's AUROC uses {PAPER_OOD_LABEL['cifar100']} as OOD; ours uses {stand}" + (
            f" ({ours} is not available), so the differences mix the model gap with "
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


def _and(items: Sequence[str]) -> str:
    """The items joined as in a sentence: "a, b and c"."""
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def _header(info: dict[str, Any]) -> str:
    return (
        f"<h1>mclviz reproduce: do the claims of Cho, Seol &amp; Lee (IJCAI 2021) hold?</h1>"
        f"<p class='note'>Generated {html.escape(info['generated'])} by mclviz "
        f"{__version__} (torch {torch.__version__}, {html.escape(info['platform'])}) in "
        f"{info['seconds']:.0f} s. Models: {html.escape(info['source'])}. In-distribution: "
        f"{dataset_name('cifar10')} ({info['n_train']} training images fit the class "
        f"Gaussians, {info['n_test']} test images); OOD: "
        + ", ".join(f"{html.escape(dataset_name(o))} ({n})" for o, n in info["n_ood"].items())
        + ".</p>"
    )


def _claims_section(
    claims: pd.DataFrame,
    n_boot: int,
    ood: Sequence[str],
    claim_ood: str,
    result_rows: dict[str, int],
    anchors: set[str],
) -> list[str]:
    h = ["<h2 id='claims'>Claims</h2>"]
    h.append(
        "<p class='note'>Each verdict compares the AUROC of two settings on "
        f"{html.escape(dataset_name(claim_ood))} (paper aggregation variant, "
        "Eq. 17-20): the difference A − B with its 95% bootstrap interval "
        f"({int(n_boot)} resamples of the IND and OOD images, seed 0). Interval "
        "above 0: supported; below 0: not supported; containing 0: inconclusive. A claim "
        "with several comparisons is supported when all are, not supported when one is. "
        "Under each claim: the table, the figures and the CSV rows behind it (the rows are "
        "shown in <a href='#evidence'>Rows behind the claims</a>). "
        "<a href='claims.csv'>claims.csv</a></p><ul>"
    )
    for cid in CLAIM_IDS:
        h.append(_claim_html(cid, claims[claims["claim"] == cid], result_rows, anchors))
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
        "<li>OOD sets differ from the paper's: we have "
        f"{html.escape(', '.join(dataset_name(o) for o in ood))}; the paper uses "
        f"{html.escape(_and(list(PAPER_OOD_LABEL.values())))}.</li>"
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
        "<h2 id='openset'>Open set (not in the paper)</h2><p class='note'>"
        f"{method_name('mcl')} trained on {dataset_name('cifar10')} classes 0-5 only; "
        "accuracy on the test images of those classes, AUROC of known vs unknown "
        "(classes 6-9) test images. The paper reports no open-set numbers. "
        "<a href='openset.csv'>openset.csv</a></p>"
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


def _figures_section(
    files: dict[str, list[Path]], notes: dict[str, str], interactive: dict[str, Any]
) -> list[str]:
    h = ["<h2 id='figures'>Figures</h2>"]
    for key in ("fig1", "fig4", "fig5", "fig5_nosei"):
        if key in files:
            png = next(p for p in files[key] if p.suffix == ".png")
            pdf = next(p for p in files[key] if p.suffix == ".pdf")
            width = "100%" if key == "fig1" else "520px"
            h.append(
                f"<figure id='{key}'>{_img(png, width)}<figcaption>{html.escape(notes[key])} "
                f"<a href='{pdf.name}'>PDF</a> <a href='{png.name}'>PNG</a>"
                + (
                    f" <a href='#{key}-interactive'>interactive version</a>"
                    if key in interactive
                    else ""
                )
                + "</figcaption></figure>"
            )
        elif key in notes:
            h.append(f"<p id='{key}' class='not-tested'>{html.escape(notes[key])}</p>")
    if interactive:
        h.append(
            "<h3 id='interactive'>Interactive figures</h3><p class='note'>The same points and "
            "scores as the static figures, drawn by plotly.js (a file beside this page, "
            f"<code>{PLOTLY_JS}</code>; nothing is fetched): hover for values, drag to zoom, "
            "double-click to reset, click a legend entry to hide it.</p>"
        )
    for key in ("fig1", "fig5", "fig5_nosei"):
        if key in interactive:
            h.append(
                f"<figure id='{key}-interactive' class='interactive'><div class='scroll'>"
                + figure_div(interactive[key], f"{key}-plot")
                + f"</div><figcaption>{html.escape(notes.get(key, ''))} Interactive: the "
                f"same data as the <a href='#{key}'>static figure</a>.</figcaption></figure>"
            )
    return h


_SHORT_OOD = {
    "tinyimagenet-resize": "TIN",
    "gaussian": "Gauss.",
    "uniform": "Unif.",
    "open-set": "open set",
    "cifar100": "C-100",
    "svhn": "SVHN",
}


def _detectors_section(detectors: pd.DataFrame, models: Sequence[str]) -> list[str]:
    """The detector x model table: one row per detector, one column per model."""
    h = [
        "<h2 id='detectors'>Detectors x models (not in the paper)</h2>"
        "<p class='note'>Every detector of the field (the baselines of "
        "<code>mclviz.evaluation.BASELINES</code>, each as its paper defines it) and MCL's "
        "class Gaussians with and without SEI, on every model, all from each model's one "
        "evaluation (the same embeddings). Cells: AUROC (%) on each OOD set the model was "
        "evaluated on, and the test accuracy (%) where the detector classifies. Detectors "
        "that read a classifier's logits "
        f"({', '.join(detector_name(d) for d in ('msp', 'energy', 'odin', 'vim'))}) run "
        "only on models with a classifier head: <i>n/a (no classifier)</i> elsewhere; SEI "
        "runs only on the models "
        "scored in 8 views. The second column says which normalisation and covariance each "
        "row uses (for the class Gaussians the covariance each model got is in its cell). "
        + ", ".join(f"{v}: {dataset_name(k)}" for k, v in _SHORT_OOD.items())
        + ". <a href='detectors.csv'>detectors.csv</a></p>"
    ]
    head = "".join(
        f"<th title='{html.escape(m)}'>{html.escape(model_name(m))}</th>" for m in models
    )
    body = []
    oods = [c for c in detectors.columns if c.startswith("auroc_")]
    for i, (row, name, ways, agg) in enumerate(DETECTOR_ROWS):
        sel = detectors[
            (detectors["detector"] == name)
            & (detectors["ways"] == ways)
            & (detectors["aggregation"] == agg)
        ].set_index("model")
        how = sel["how"].iloc[0] if len(sel) else ""
        cells = []
        for m in models:
            r = sel.loc[m] if m in sel.index else None
            if r is None or r["status"] != "ours":
                text = html.escape(str(r["status"])) if r is not None else "–"
                cells.append(f"<td class='na'>{text}</td>")
                continue
            lines = [] if pd.isna(r["acc"]) else [f"acc {r['acc']:.2f}"]
            for c in oods:
                if pd.notna(r[c]):
                    o = c[len("auroc_") :].replace("_", "-")
                    lines.append(f"{html.escape(_SHORT_OOD.get(o, o))} {r[c]:.2f}")
            if name == "gaussians" and isinstance(r["covariance"], str):
                lines.append(f"{html.escape(r['covariance'])} cov.")
            cells.append(f"<td class=num>{'<br>'.join(lines)}</td>")
        body.append(
            f"<tr id='detectors-row-{i + 1}'><th>{html.escape(row)}</th>"
            f"<td class='note how'>{html.escape(how)}</td>{''.join(cells)}</tr>"
        )
    h.append(
        "<div class='scroll'><table id='detectors-data'><thead><tr><th>Detector</th>"
        f"<th>normalisation, covariance</th>{head}</tr></thead><tbody>{''.join(body)}"
        "</tbody></table></div>"
    )
    return h


_EVIDENCE_CLAIM_COLS = [
    "claim", "a", "setting_a", "b", "setting_b", "ood", "auroc_a", "auroc_b", "diff",
    "ci_low", "ci_high", "verdict",
]  # fmt: skip
_EVIDENCE_RESULT_COLS = [
    "model", "detector", "ways", "aggregation", "variant", "ood", "label", "accuracy",
    "auroc", "aupr_in", "aupr_out", "fpr95",
]  # fmt: skip


def _rows_table(df: pd.DataFrame, numbers: list[int], csv_name: str, columns: list[str]) -> str:
    """Rows ``numbers`` (1-based) of a CSV as an HTML table, each row with its anchor."""
    cols = [c for c in columns if c in df.columns]
    head = "<th>row</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for n in numbers:
        r = df.iloc[n - 1]
        cells = "".join(
            f"<td{' class=num' if isinstance(r[c], int | float | np.number) else ''}>"
            f"{_fmt(r[c], general=csv_name == 'results')}</td>"
            for c in cols
        )
        body.append(f"<tr id='{_row_id(csv_name, n)}'><td class=num>{n}</td>{cells}</tr>")
    return (
        f"<div class='scroll'><table id='{csv_name}-evidence'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _evidence_section(claims: pd.DataFrame, results: pd.DataFrame) -> list[str]:
    """Every claims.csv row, and the results.csv rows the claims compare."""
    keys = _result_keys(results)
    used: list[int] = []
    for _, r in claims.iterrows():
        if r["verdict"] == "not tested":
            continue
        for side in ("a", "b"):
            n = keys.get(f"{r[f'key_{side}']}/{r['ood']}")
            if n is not None and n not in used:
                used.append(n)
    h = [
        "<h2 id='evidence'>Rows behind the claims</h2><p class='note'>Row numbers count the "
        "data rows of each CSV from 1 (the header not counted). "
        "<a href='claims.csv'>claims.csv</a>: one row per comparison (AUROC in %). "
        "<a href='results.csv'>results.csv</a>: the evaluate() rows the comparisons read "
        "(fractions, as evaluate returns them).</p>",
        "<h3>claims.csv</h3>",
        _rows_table(claims, list(range(1, len(claims) + 1)), "claims", _EVIDENCE_CLAIM_COLS),
    ]
    if used:
        h += [
            "<h3>results.csv</h3>",
            _rows_table(results, sorted(used), "results", _EVIDENCE_RESULT_COLS),
        ]
    return h


_CONTENTS = [
    ("claims", "Claims"),
    ("budget", "Budget, seeds and data caveats"),
    ("table1", "Table 1"),
    ("table2", "Table 2"),
    ("table3", "Table 3"),
    ("table4", "Table 4"),
    ("table5", "Table 5"),
    ("detectors", "Detectors x models"),
    ("openset", "Open set"),
    ("figures", "Figures"),
    ("interactive", "Interactive figures"),
    ("evidence", "Rows behind the claims"),
    ("files", "Files"),
]


def _contents(present: set[str]) -> str:
    items = "".join(
        f"<li><a href='#{i}'>{html.escape(t)}</a></li>" for i, t in _CONTENTS if i in present
    )
    return f"<nav id='contents'><b>Contents</b><ol>{items}</ol></nav>"


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
    detectors: pd.DataFrame,
    results: pd.DataFrame,
    models: Sequence[str],
    interactive: dict[str, Any] | None = None,
) -> None:
    """Write the report page to ``path`` (and ``plotly.min.js`` beside it when there are
    interactive figures).

    Args:
        claims: :func:`~.claims.claims_table`; tables: {"table1": ..., "table5": ...}
            (:func:`~.tables.reproduced_table`); openset, budget, diffs: the open-set,
            budget and preset-differences tables.
        caveats: the data root's caveats; files, notes: the figures' files and captions
            (or why a figure was not made).
        info: the run: ``generated, platform, seconds, source, n_train, n_test, n_ood,
            n_boot, subsets``.
        ood, claim_ood, preset: the OOD sets, the one the claims use, the preset compared.
        detectors: :func:`~.tables.detector_table`; models: its columns, in order.
        results: every ``evaluate`` row as ``results.csv`` holds them (the claims link
            to their rows).
        interactive: {``fig1`` / ``fig5`` / ``fig5_nosei``: plotly figure}, drawn on the
            page with plotly.js.
    """
    interactive = interactive or {}
    anchors = {k for k in ("fig1", "fig4", "fig5", "fig5_nosei") if k in files or k in notes}
    anchors |= {f"{k}-interactive" for k in interactive}
    result_rows = _result_keys(results)
    body = _claims_section(claims, info["n_boot"], ood, claim_ood, result_rows, anchors)
    body += _budget_section(budget, diffs, caveats, info["subsets"], ood, preset)
    body += [_table_html(name, df, ood, claim_ood) for name, df in tables.items()]
    body += _detectors_section(detectors, models)
    body += _openset_section(openset)
    body += _figures_section(files, notes, interactive)
    body += _evidence_section(claims, results)
    body.append(
        "<h2 id='files'>Files</h2><p class='note'>results.csv holds every evaluate() row of "
        "every model (fractions; its detector column names the detectors as "
        "mclviz.evaluation.make_detectors does, e.g. mahalanobis+pre); the table CSVs and "
        "detectors.csv are in percent."
        + (f" {PLOTLY_JS}: plotly.js for the interactive figures." if interactive else "")
        + "</p>"
    )
    present = {i for i, _ in _CONTENTS if f"id='{i}'" in "".join(body)}
    present |= {i for i, _ in _CONTENTS if f'id="{i}"' in "".join(body)}
    head = script_tag() if interactive else ""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>mclviz reproduce</title>{head}<style>"
        + _CSS
        + "</style></head><body>"
        + "\n".join([_header(info), _contents(present), *body])
        + "</body></html>\n"
    )
    if interactive:
        write_plotly_js(path.parent)
    path.write_text(page, encoding="utf-8")
