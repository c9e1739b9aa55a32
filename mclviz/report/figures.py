"""The paper's Figures 1, 4 and 5 from the evaluation's embeddings and scores.

Nothing is embedded or scored here: the figures read the :class:`~mclviz.evaluation.Scores`
each model's evaluation returned (its ``outputs`` hold the embeddings). Each figure is
written as PDF and PNG (:func:`export_figure`; a plotly figure falls back to a matplotlib
copy when kaleido finds no Chrome). Figures 1 and 5 also come as interactive plotly
figures for the page (the same t-SNE and the same scores as their static versions). Data
sets and models are named by :mod:`mclviz.names` (Figure 1's panels and OOD legend entry,
Figure 5's legend, the captions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib.figure import Figure

from ..names import dataset_name, method_name
from ..plots import (
    TEXT_WIDTH,
    class_name,
    export,
    failure_cases,
    failure_gallery,
    nearest_neighbours,
    paper_rc,
    projection_figure,
    score_distribution,
)
from .compared import ComparedModel, missing_reason, model_name, no_sei, sei

__all__ = ["FIGURE1_MODELS", "export_figure", "make_figures", "plotly_scatter_to_mpl"]

#: the models of Figure 1, in the paper's order
FIGURE1_MODELS = ("simclr", "supclr", "ccm", "mcl")

# ({key: files}, {key: caption or reason}, {key: interactive plotly figure})
_Made = tuple[dict[str, list[Path]], dict[str, str], dict[str, go.Figure]]


def export_figure(fig, stem: Path) -> list[Path]:
    """PDF and PNG of a figure (``plots.export``); plotly falls back to matplotlib."""
    paths = []
    for suffix in (".pdf", ".png"):
        try:
            paths.append(export(fig, stem.with_suffix(suffix), scale=2 if suffix == ".png" else 1))
        except RuntimeError:
            if not isinstance(fig, go.Figure):
                raise
            paths.append(export(plotly_scatter_to_mpl(fig), stem.with_suffix(suffix)))
    return paths


def plotly_scatter_to_mpl(fig: go.Figure) -> Figure:
    """A matplotlib copy of a plotly scatter grid (used when kaleido has no Chrome)."""
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


def _best(mcl: ComparedModel):
    """MCL's setting with the most SEI views it was evaluated in, w-avg (Figures 4, 5)."""
    w = max(mcl.sei)
    return sei("mcl", w, "w-avg") if w > 1 else no_sei("mcl")


def _figure1(
    models: dict[str, ComparedModel], data, claim_ood: str, names: list[str], out: Path
) -> _Made:
    """Projections of the same test sample (+ OOD in grey) for the four models."""
    panel = [m for m in FIGURE1_MODELS if m in models and models[m].ok]
    if not panel:
        why = "Figure 1 not made: " + missing_reason(models, list(FIGURE1_MODELS))
        return {}, {"fig1": why}, {}
    yte, x_ood = data.test[1], data.ood[claim_ood]
    rng = np.random.default_rng(0)
    n_in, n_out = min(len(yte), 2000), min(len(x_ood), 500)
    i_in = np.sort(rng.choice(len(yte), n_in, replace=False))
    i_out = np.sort(rng.choice(len(x_ood), n_out, replace=False))
    embs = {}
    for m in panel:  # view 0 (the plain image) of the embeddings evaluate computed
        outputs = models[m].scores.outputs
        z_in = outputs.get("z", "test", 1)[:, 0]
        z_out = outputs.get("z", f"ood:{claim_ood}", 1)[:, 0]
        embs[model_name(m)] = torch.cat([z_in[i_in], z_out[i_out]])  # the panel's title
    labels = torch.cat([yte[i_in], torch.full((n_out,), -1, dtype=torch.long)])
    ood = dataset_name(claim_ood)
    fig = projection_figure(embs, labels, ood_name=ood, class_names=names, sample=None, seed=0)
    missing = [model_name(m) for m in FIGURE1_MODELS if m not in panel]
    note = (
        f"Figure 1: t-SNE of the projection z of {n_in} {dataset_name('cifar10')} test "
        f"images (coloured by class) and {n_out} {ood} images (grey), the same points for "
        f"every model ({', '.join(embs)}); seed 0."
        + (f" Not shown: {', '.join(missing)} (not evaluated)." if missing else "")
    )
    return {"fig1": export_figure(fig, out / "fig1_projection")}, {"fig1": note}, {"fig1": fig}


def _figure5(mcl: ComparedModel, data, claim_ood: str, out: Path) -> _Made:
    """Score distributions, MCL + SEI (its most views, w-avg) and MCL without SEI."""
    files, notes, interactive = {}, {}, {}
    best = _best(mcl)
    label, mcl_name = dataset_name(claim_ood), method_name("mcl")
    for key, s in (("fig5", best), ("fig5_nosei", no_sei("mcl"))):
        entry = mcl.detector_scores(s)
        args = (entry.score_in, (entry.pred == data.test[1]).numpy(), entry.score_out[claim_ood])
        fig = score_distribution(*args, ood_name=label, backend="matplotlib")
        interactive[key] = score_distribution(*args, ood_name=label, backend="plotly")
        stem = "fig5_scores" if key == "fig5" else "fig5_scores_nosei"
        files[key] = export_figure(fig, out / stem)
        notes[key] = (
            f"Figure 5{'' if key == 'fig5' else ', without SEI'}: scores of {mcl_name} "
            f"({s.label()}): {dataset_name('cifar10')} test images classified correctly / "
            f"wrongly, and {label}; dashed: the threshold keeping 95% of IND."
        )
    return files, notes, interactive


def _figure4(mcl: ComparedModel, data, claim_ood: str, names: list[str], out: Path) -> _Made:
    """OOD images scored most IND, misclassified IND images, their nearest train images."""
    (xtr, ytr), (xte, yte) = data.train, data.test
    x_ood, label = data.ood[claim_ood], dataset_name(claim_ood)
    best = _best(mcl)
    entry = mcl.detector_scores(best)
    cases = failure_cases(entry.score_in, entry.pred, yte, entry.score_out[claim_ood], n=4)
    outputs = mcl.scores.outputs
    z_tr = outputs.get("z", "train", 1)
    z_te = outputs.get("z", "test", 1)
    z_oo = outputs.get("z", f"ood:{claim_ood}", 1)
    o_idx, m_idx = cases["ood_idx"], cases["misclassified_idx"]
    # the class and score the same SEI aggregation gave the OOD cases
    o_pred = entry.pred_out[claim_ood][o_idx]
    o_score = entry.score_out[claim_ood][o_idx]
    queries = torch.cat([z_oo[o_idx, 0], z_te[m_idx, 0]])
    if not len(queries):
        return {}, {"fig4": "Figure 4 not made: no OOD image and no misclassified test image."}, {}
    images = torch.cat([x_ood[o_idx], xte[m_idx]])
    titles = [
        f"{label.split(' (')[0]}\npred {class_name(int(p), names)}\ns={float(sc):.3g}"
        for p, sc in zip(o_pred, o_score, strict=True)
    ]
    titles += [
        f"GT {class_name(int(yte[i]), names)}\npred {class_name(int(entry.pred[i]), names)}\n"
        f"s={float(entry.score_in[i]):.3g}"
        for i in m_idx
    ]
    k = min(5, len(ytr))
    dist, idx = nearest_neighbours(queries, z_tr[:, 0], k=k)
    nn = torch.from_numpy(idx)
    fig = failure_gallery(images, titles, xtr[nn], ytr[nn], dist, class_names=names)
    note = (
        f"Figure 4: failure cases of {method_name('mcl')} ({best.label()}): the "
        f"{len(o_idx)} {label} images scored most in-distribution (top rows) and the "
        f"{len(m_idx)} misclassified {dataset_name('cifar10')} test images with the highest "
        f"scores, each with its {k} nearest training images (cosine distance "
        "of the projection z, plain view)."
    )
    return {"fig4": export_figure(fig, out / "fig4_failures")}, {"fig4": note}, {}


def make_figures(
    models: dict[str, ComparedModel],
    data,
    claim_ood: str,
    names: list[str],
    out: Path,
) -> _Made:
    """Figures 1, 4, 5 into ``out``; returns ({key: files}, {key: caption or reason not
    made}, {key: interactive plotly figure}) with keys ``fig1``, ``fig4``, ``fig5``,
    ``fig5_nosei`` (interactive: ``fig1``, ``fig5``, ``fig5_nosei``).

    Args:
        models: the evaluated models (their ``scores`` hold embeddings and scores).
        data: the evaluation images (:class:`~mclviz.evaluation.EvalData`).
        claim_ood: the OOD set shown.
        names: the class names.
        out: the report folder.
    """
    files, notes, interactive = _figure1(models, data, claim_ood, names, out)
    mcl = models.get("mcl")
    if mcl is None or not mcl.ok:
        reason = missing_reason(models, ["mcl"])
        notes["fig4"] = f"Figure 4 not made: {reason}"
        notes["fig5"] = f"Figure 5 not made: {reason}"
        return files, notes, interactive
    for made in (_figure5(mcl, data, claim_ood, out), _figure4(mcl, data, claim_ood, names, out)):
        files.update(made[0])
        notes.update(made[1])
        interactive.update(made[2])
    return files, notes, interactive
