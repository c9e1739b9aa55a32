"""mclviz.plots and mclviz.paper_numbers: the data inside each figure, on synthetic inputs.

Figures are checked through their contents (trace names, points, colours, line positions,
legend text) against numpy / scipy / scikit-learn computed here, and exported files
through their bytes (PNG magic and size, %PDF and embedded TrueType, SVG as XML).
"""

from __future__ import annotations

import base64
import io
import re
import sys
import xml.etree.ElementTree as ET

import matplotlib as mpl
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.figure import Figure as MplFigure
from PIL import Image
from scipy.stats import gaussian_kde
from sklearn.metrics import roc_auc_score

from mclviz import plots
from mclviz.paper_numbers import TABLES, comparison_table, paper_table
from mclviz.plots import (
    OOD_COLOR,
    PALETTE,
    export,
    failure_cases,
    failure_gallery,
    nearest_neighbours,
    paper_rc,
    project,
    projection_figure,
    score_distribution,
    sei_figure,
    sei_table,
)

# ----------------------------------------------------------------------------- paper numbers


@pytest.mark.parametrize(
    ("table", "row", "column", "value"),
    [
        ("table4", "MCL + 8-way SEI w-avg", "acc", 96.43),
        ("table4", "MCL + 8-way SEI w-avg", "auroc", 94.06),
        ("table4", "MCL + 4-way SEI max", "acc", 95.97),
        ("table4", "MCL + w/o SEI", "auroc", 91.12),
        ("table1", "Baseline", "svhn", 89.9),
        ("table1", "Mahalanobis", "svhn", 99.1),
        ("table1", "MCL + SEI (ResNet-34)", "acc", 96.4),
        ("table1", "MCL + SEI (ResNet-34)", "cifar100", 94.0),
        ("table1", "MCL + SEI (ResNet-18)", "lsun_fix", 96.0),
        ("table1", "CSI + SupCLR + Ensemble", "imagenet_fix", 94.0),
        ("table2", "MCL", "imagenet_fix", 93.6),
        ("table3", "MCL (w/o SPA, w/o aux)", "acc", 91.41),
        ("table3", "MCL (w/o aux)", "auroc", 89.49),
        ("table5", "MCL + w/o Aux", "auroc", 90.49),  # as printed: differs from Table 3
        ("table5", "MCL + w/o Aux + SEI w-avg", "auroc", 71.17),
        ("table5", "MCL + DA + SEI w-avg", "acc", 94.70),
    ],
)
def test_paper_numbers_spot_values(table, row, column, value):
    assert paper_table(table).loc[row, column] == value


def test_paper_tables_are_well_formed():
    expected_rows = {"table1": 11, "table2": 3, "table3": 7, "table4": 7, "table5": 6}
    for name, spec in TABLES.items():
        df = paper_table(name)
        assert len(df) == expected_rows[name]
        assert df.index.is_unique
        assert all(len(r) == len(spec["columns"]) for r in spec["rows"])
        for col in ("acc", "auroc", "svhn", "lsun_fix", "imagenet_fix", "cifar100"):
            if col in df:
                v = df[col].dropna()
                assert v.dtype == np.float64 and ((v > 50) & (v < 100)).all()
    t1 = paper_table("table1")
    assert np.isnan(t1.loc["Outlier Exposure", "acc"])  # "-" in the paper
    assert t1.loc["Outlier Exposure", "cifar100"] == 93.3
    # the paper's own cross-references
    t4, t5, t3 = paper_table("table4"), paper_table("table5"), paper_table("table3")
    assert (
        t4.loc["MCL + w/o SEI", ["acc", "auroc"]].tolist()
        == t3.loc["MCL", ["acc", "auroc"]].tolist()
    )
    assert t5.loc["MCL + Aux + SEI w-avg", ["acc", "auroc"]].tolist() == [96.43, 94.06]
    assert paper_table("table2").loc["MCL + SEI"].drop("backbone").tolist() == (
        t1.loc["MCL + SEI (ResNet-18)"].drop("backbone").tolist()
    )
    with pytest.raises(ValueError, match="table6"):
        paper_table("table6")


def test_comparison_table_fractions_differences_and_missing_rows():
    ours = pd.DataFrame(
        {
            "row": ["mcl", "MCL (w/o aux)", "my new row"],
            "acc": [0.9403, 0.95, 0.5],
            "auroc": [0.90, 0.8949, 0.7],
        }
    )
    out = comparison_table(ours, "table3")
    paper = paper_table("table3")
    assert list(out.columns) == [
        "acc_ours",
        "acc_paper",
        "acc_diff",
        "auroc_ours",
        "auroc_paper",
        "auroc_diff",
    ]
    assert list(out.index) == [*paper.index, "my new row"]  # paper order, then our extra row
    assert out.loc["MCL", "acc_ours"] == pytest.approx(94.03)  # matched case-insensitively
    assert out.loc["MCL", "auroc_diff"] == pytest.approx(90.0 - 91.12)
    assert out.loc["MCL (w/o aux)", "acc_diff"] == pytest.approx(95.0 - 94.35)
    assert out.loc["MCL (w/o aux)", "auroc_diff"] == pytest.approx(0.0, abs=1e-9)
    # missing on our side: paper kept, ours NaN; missing on the paper's side: the reverse
    assert np.isnan(out.loc["SimCLR (CE fine-tuned)", "acc_ours"])
    assert out.loc["SimCLR (CE fine-tuned)", "acc_paper"] == 93.88
    assert np.isnan(out.loc["SimCLR (CE fine-tuned)", "acc_diff"])
    assert out.loc["my new row", "acc_ours"] == pytest.approx(50.0)
    assert np.isnan(out.loc["my new row", "acc_paper"])
    # percent input is taken as is
    pct = comparison_table(pd.DataFrame({"row": ["MCL"], "acc": [94.5], "auroc": [92.0]}), "table3")
    assert pct.loc["MCL", "acc_diff"] == pytest.approx(94.5 - 94.03)


def test_comparison_table_table1_columns_and_errors():
    ours = pd.DataFrame({"row": ["Baseline"], "acc": [0.936], "svhn": [0.9], "cifar100": [0.864]})
    out = comparison_table(ours, paper_table="table1")
    assert [c for c in out.columns if c.endswith("_diff")] == [
        "acc_diff",
        "svhn_diff",
        "cifar100_diff",
    ]
    assert out.loc["Baseline", "svhn_diff"] == pytest.approx(90.0 - 89.9)
    assert out.loc["Baseline", "cifar100_diff"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="row"):
        comparison_table(pd.DataFrame({"name": ["MCL"], "acc": [0.9]}))
    with pytest.raises(ValueError, match="in common"):
        comparison_table(pd.DataFrame({"row": ["MCL"], "svhn": [0.9]}), "table3")
    with pytest.raises(ValueError, match="more than once"):
        comparison_table(pd.DataFrame({"row": ["MCL", "mcl"], "acc": [0.9, 0.8]}))


# ----------------------------------------------------------------------------- projections


def clusters(n: int, d: int, n_classes: int, seed: int, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_classes, d)) * 5
    return centres[y] + spread * rng.normal(size=(n, d)), y


def test_project_tsne_shape_determinism_and_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    z, _ = clusters(60, 16, 3, seed=0)
    a = project(z, "tsne", seed=1)
    b = project(torch.as_tensor(z), "tsne", seed=1)  # torch input, same bytes as float32
    assert a.shape == (60, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert list(tmp_path.iterdir()) == []  # nothing written without cache_dir
    with pytest.raises(ValueError, match="method"):
        project(z, "pca")
    with pytest.raises(ValueError, match="at least 3"):
        project(z[:2])
    z_bad = z.copy()
    z_bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="row 5"):
        project(z_bad)


def test_project_cache_round_trip(tmp_path, monkeypatch):
    z, _ = clusters(40, 8, 2, seed=1)
    cache = tmp_path / "cache" / "proj"
    first = project(z, "tsne", seed=0, cache_dir=cache)
    files = list(cache.glob("*.npy"))
    assert len(files) == 1 and files[0].name.startswith("tsne-seed0-")
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False), first)

    import sklearn.manifold

    def no_tsne(*args, **kwargs):
        raise AssertionError("TSNE was recomputed although the cache holds the result")

    monkeypatch.setattr(sklearn.manifold, "TSNE", no_tsne)
    np.testing.assert_array_equal(project(z, "tsne", seed=0, cache_dir=cache), first)
    # another seed or other data is another key
    with pytest.raises(AssertionError, match="recomputed"):
        project(z, "tsne", seed=1, cache_dir=cache)
    with pytest.raises(AssertionError, match="recomputed"):
        project(z + 1e-3, "tsne", seed=0, cache_dir=cache)


def test_project_umap_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(ImportError, match="pip install umap-learn"):
        project(np.random.default_rng(0).normal(size=(20, 4)), "umap")


@pytest.mark.slow
def test_project_umap_tiny(tmp_path):
    # numba compiles umap on its first call in a process (~10-30 s): the one umap test
    z, y = clusters(150, 16, 3, seed=2, spread=0.5)
    a = project(z, "umap", seed=0, cache_dir=tmp_path)
    assert a.shape == (150, 2) and np.isfinite(a).all()
    assert len(list(tmp_path.glob("umap-seed0-*.npy"))) == 1
    # well-separated clusters stay separated: each point's nearest 2-D neighbour shares its class
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert np.mean(y[d.argmin(1)] == y) > 0.95


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:precomputed_knn.*is not an NNDescent object")
@pytest.mark.parametrize("n", [40, 300])
def test_umap_graph_from_sklearn_neighbours_equals_umaps_own(n):
    # project() hands umap scikit-learn's exact neighbours (below 4,096 points, where umap
    # computes exact ones itself): the fuzzy graph umap builds from them must be its own
    import umap

    from mclviz.plots import _exact_knn

    z, _ = clusters(n, 16, 4, seed=5, spread=0.5)
    z = z.astype(np.float32)
    idx, dist = _exact_knn(z, 15)
    assert (idx[:, 0] == np.arange(n)).all() and (dist[:, 0] == 0).all()
    assert (np.diff(dist, axis=1) >= 0).all()
    own = umap.UMAP(n_neighbors=15, random_state=3, n_jobs=1, n_epochs=1).fit(z)
    given = umap.UMAP(
        n_neighbors=15, random_state=3, n_jobs=1, n_epochs=1, precomputed_knn=(idx, dist, None)
    ).fit(z)
    assert own._small_data and not given._small_data  # the two code paths
    diff = abs(own.graph_ - given.graph_).max()
    assert diff < 1e-4 and own.graph_.nnz == given.graph_.nnz


def _panel_of(trace) -> str:
    return trace.xaxis  # "x", "x2", ... one per panel


def test_projection_figure_same_sample_in_every_panel_and_colours():
    n, sample = 150, 90
    rng = np.random.default_rng(3)
    z, y = clusters(n, 8, 4, seed=3)
    y = y.copy()
    ood_from_labels = np.zeros(n, bool)
    ood_from_labels[rng.choice(n, 15, replace=False)] = True
    y[ood_from_labels] = -1
    mask = np.zeros(n, bool)
    mask[rng.choice(np.flatnonzero(~ood_from_labels), 10, replace=False)] = (
        True  # extra OOD by mask
    )
    ood = ood_from_labels | mask
    names = ["plane", "car", "bird", "cat"]
    emb = {"SimCLR": z + rng.normal(size=z.shape), "SupCLR": z, "MCL": torch.as_tensor(z * 2)}
    fig = projection_figure(emb, y, ood_mask=mask, class_names=names, sample=sample, seed=5)

    assert isinstance(fig, go.Figure)
    idx = np.asarray(fig.layout.meta["sample_idx"])
    expected = np.sort(np.random.default_rng(5).choice(n, sample, replace=False))
    np.testing.assert_array_equal(idx, expected)
    classes = np.unique(y[idx][~ood[idx]])
    per_panel = [c for c in names if names.index(c) in classes] + ["OOD"]
    assert [t.name for t in fig.data] == per_panel * 3
    assert fig.layout.annotations[0].text == "SimCLR" and fig.layout.annotations[2].text == "MCL"
    assert f"{sample} / {n}" in fig.layout.title.text

    panels = {}
    for t in fig.data:
        panels.setdefault(_panel_of(t), []).append(t)
    assert len(panels) == 3
    for traces in panels.values():
        rows = np.concatenate([np.asarray([r[0] for r in t.customdata], dtype=int) for t in traces])
        assert len(rows) == sample == sum(len(t.x) for t in traces)
        np.testing.assert_array_equal(np.sort(rows), idx)  # same points in every panel
        for t in traces:
            rows_t = np.asarray([r[0] for r in t.customdata], dtype=int)
            if t.name == "OOD":
                assert t.marker.color == OOD_COLOR
                assert ood[rows_t].all()
            else:
                c = names.index(t.name)
                assert t.marker.color == PALETTE[c]
                assert (y[rows_t] == c).all() and not ood[rows_t].any()
            assert {r[1] for r in t.customdata} == {t.name}
            assert all(r[2] == "" for r in t.customdata)  # no images given
    # legend entries once per class, linked across panels
    shown = [t.name for t in fig.data if t.showlegend]
    assert shown == per_panel
    assert all(t.legendgroup == t.name for t in fig.data)


def test_projection_figure_thumbnails_and_all_points():
    n = 40
    z, y = clusters(n, 6, 2, seed=4)
    images = np.random.default_rng(4).integers(0, 256, (n, 3, 5, 7), dtype=np.uint8)
    fig = projection_figure(
        {"only": z}, torch.as_tensor(y), images=torch.as_tensor(images), sample=None
    )
    assert fig.layout.meta["sample_idx"] == list(range(n))
    assert [t.name for t in fig.data] == ["class 0", "class 1"]
    for t in fig.data:
        for i, _name, uri in t.customdata:
            assert uri.startswith("data:image/png;base64,")
            img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
            np.testing.assert_array_equal(np.asarray(img), images[i].transpose(1, 2, 0))
    with pytest.raises(ValueError, match="rows but labels"):
        projection_figure({"a": z, "b": z[:-1]}, y)
    with pytest.raises(TypeError, match="uint8"):
        projection_figure({"a": z}, y, images=images.astype(np.float32))


# ----------------------------------------------------------------------------- scores


def score_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    s_in = rng.normal(2.0, 1.0, 400)
    correct = rng.random(400) > 0.15
    s_in[~correct] -= 1.0
    s_out = rng.normal(0.0, 1.0, 250)
    return s_in, correct, s_out


def test_score_distribution_plotly_threshold_auroc_and_groups():
    s_in, correct, s_out = score_data()
    fig = score_distribution(s_in, torch.as_tensor(correct), s_out, ood_name="SVHN", bins=30)
    names = [t.name for t in fig.data]
    assert names[0].startswith(f"IND correct (n={correct.sum()})")
    assert names[2].startswith(f"IND wrong (n={(~correct).sum()})")
    assert names[4].startswith("SVHN (n=250")
    assert [n.endswith(" KDE") for n in names] == [False, True] * 3 + [False]
    threshold = np.percentile(s_in, 5)
    line = fig.data[-1]
    assert line.name.startswith("95% TPR threshold")
    assert line.x[0] == line.x[1] == pytest.approx(threshold, abs=0)
    auroc = roc_auc_score(np.r_[np.ones(400), np.zeros(250)], np.r_[s_in, s_out])
    shown = float(re.search(r"AUROC=([\d.]+)%", names[4]).group(1))
    assert shown == pytest.approx(100 * auroc, abs=0.005)
    assert f"{100 * auroc:.2f}%" in fig.layout.title.text
    assert fig.layout.meta["auroc"] == pytest.approx(auroc, abs=1e-12)
    assert fig.layout.meta["fpr_at_threshold"] == pytest.approx(np.mean(s_out >= threshold))
    # histogram data and KDE curves are the inputs / scipy's density
    np.testing.assert_array_equal(fig.data[0].x, s_in[correct])
    np.testing.assert_array_equal(fig.data[2].x, s_in[~correct])
    np.testing.assert_array_equal(fig.data[4].x, s_out)
    kde = fig.data[5]
    np.testing.assert_allclose(kde.y, gaussian_kde(s_out)(np.asarray(kde.x)), rtol=1e-10)
    assert all(t.histnorm == "probability density" for t in fig.data[0:6:2])
    assert len({(t.xbins.start, t.xbins.size) for t in fig.data[0:6:2]}) == 1  # shared bins


def test_score_distribution_matplotlib_and_edge_cases():
    s_in, correct, s_out = score_data(1)
    fig = score_distribution(s_in, correct, s_out, backend="matplotlib")
    assert isinstance(fig, MplFigure)
    ax = fig.axes[0]
    (vline,) = [ln for ln in ax.lines if ln.get_label().startswith("95% TPR threshold")]
    assert vline.get_xdata()[0] == pytest.approx(np.percentile(s_in, 5), abs=0)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == 4
    auroc = roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out])
    assert any(f"AUROC={100 * auroc:.2f}%" in t for t in legend)
    assert f"{100 * auroc:.2f}%" in ax.get_title()
    assert len(ax.patches) == 3 * 50  # three histograms of 50 bins
    # every IND sample correct: no "wrong" group; a single OOD value: histogram, no KDE
    fig2 = score_distribution(s_in, np.ones(len(s_in), bool), np.array([0.5]))
    names = [t.name for t in fig2.data]
    assert len(names) == 4 and names[0].startswith("IND correct") and names[1] == names[0] + " KDE"
    assert names[2].startswith("OOD (n=1,") and names[3].startswith("95% TPR threshold")
    with pytest.raises(ValueError, match="backend"):
        score_distribution(s_in, correct, s_out, backend="bokeh")
    with pytest.raises(ValueError, match="correct has 3"):
        score_distribution(s_in, correct[:3], s_out)


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize(("q", "n", "d", "k"), [(1, 5, 3, 1), (7, 40, 16, 5), (20, 100, 64, 10)])
def test_nearest_neighbours_matches_brute_force_cosine(q, n, d, k):
    rng = np.random.default_rng(q + n + d)
    zq, zr = rng.normal(size=(q, d)), rng.normal(size=(n, d)) * rng.uniform(0.1, 10, (n, 1))
    dist, idx = nearest_neighbours(torch.as_tensor(zq), zr, k=k)
    assert dist.shape == idx.shape == (q, k) and idx.dtype == np.int64
    for i in range(q):
        cos = []
        for j in range(n):
            cos.append(
                sum(zq[i, t] * zr[j, t] for t in range(d))
                / (np.sqrt(sum(v * v for v in zq[i])) * np.sqrt(sum(v * v for v in zr[j])))
            )
        order = sorted(range(n), key=lambda j: -cos[j])[:k]
        assert idx[i].tolist() == order
        np.testing.assert_allclose(dist[i], [1 - cos[j] for j in order], atol=1e-12)
    with pytest.raises(ValueError, match="k="):
        nearest_neighbours(zq, zr, k=n + 1)
    with pytest.raises(ValueError, match="dimension"):
        nearest_neighbours(zq, np.c_[zr, zr[:, :1]], k=1)


def test_failure_cases_hand_made():
    scores_in = np.array([0.9, 0.1, 0.8, 0.7, 0.95, 0.3, 0.8])
    pred_in = np.array([0, 1, 2, 1, 0, 2, 1])
    y_in = np.array([0, 2, 1, 1, 0, 0, 0])  # wrong: 1 (0.1), 2 (0.8), 5 (0.3), 6 (0.8, tie with 2)
    scores_out = np.array([0.2, 0.99, 0.5, 0.99, -1.0])
    out = failure_cases(scores_in, pred_in, y_in, scores_out, n=3)
    assert out["ood_idx"].tolist() == [1, 3, 2]  # highest first, tie -> lower index first
    assert out["misclassified_idx"].tolist() == [2, 6, 5]
    assert out["ood_idx"].dtype == np.int64
    more = failure_cases(scores_in, pred_in, y_in, scores_out, n=10)
    assert more["ood_idx"].tolist() == [1, 3, 2, 0, 4]
    assert more["misclassified_idx"].tolist() == [2, 6, 5, 1]
    none_wrong = failure_cases(scores_in, y_in, y_in, scores_out, n=2)
    assert none_wrong["misclassified_idx"].tolist() == []
    with pytest.raises(ValueError, match="same IND samples"):
        failure_cases(scores_in, pred_in[:3], y_in, scores_out)


def test_failure_gallery_layout_titles_and_pixels():
    rng = np.random.default_rng(6)
    q, k = 3, 4
    train = rng.integers(0, 256, (30, 3, 8, 8), dtype=np.uint8)
    queries = rng.integers(0, 256, (q, 3, 8, 8), dtype=np.uint8)
    train_labels = rng.integers(0, 3, 30)
    dist, idx = nearest_neighbours(rng.normal(size=(q, 5)), rng.normal(size=(30, 5)), k=k)
    names = ["cat", "dog", "fox"]
    titles = ["OOD: bear\npred dog", "GT cat\npred dog", "GT fox\npred dog"]
    fig = failure_gallery(queries, titles, train[idx], train_labels[idx], dist, class_names=names)
    assert isinstance(fig, MplFigure)
    assert len(fig.axes) == q * (k + 1)
    for i in range(q):
        row = fig.axes[i * (k + 1) : (i + 1) * (k + 1)]
        assert row[0].get_title() == titles[i]
        np.testing.assert_array_equal(row[0].images[0].get_array(), queries[i].transpose(1, 2, 0))
        for j in range(k):
            assert row[j + 1].get_title() == f"{names[train_labels[idx[i, j]]]}\nd={dist[i, j]:.3f}"
            np.testing.assert_array_equal(
                row[j + 1].images[0].get_array(), train[idx[i, j]].transpose(1, 2, 0)
            )
    with pytest.raises(ValueError, match="nn_images"):
        failure_gallery(queries, titles, train[:q], train_labels[idx], dist)
    with pytest.raises(ValueError, match="query_titles"):
        failure_gallery(queries, titles[:1], train[idx], train_labels[idx], dist)


# ----------------------------------------------------------------------------- SEI

SETTINGS = [(1, "none"), (4, "avg"), (4, "max"), (4, "w-avg"), (8, "avg"), (8, "max"), (8, "w-avg")]


def sei_frame(seed: int = 0, oods=("cifar100", "svhn"), methods=("mcl",)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for method in methods:
        for variant in ("official", "paper"):
            for ways, agg in SETTINGS[::-1]:  # deliberately out of order
                acc = rng.uniform(0.9, 0.97)
                for ood in oods:
                    rows.append(
                        dict(
                            method=method,
                            detector="sei",
                            ways=ways,
                            aggregation=agg,
                            variant=variant,
                            accuracy=acc,
                            ood=ood,
                            auroc=rng.uniform(0.85, 0.95),
                            aupr_in=rng.random(),
                            aupr_out=rng.random(),
                            fpr95=rng.random(),
                        )
                    )
    return pd.DataFrame(rows)


def test_sei_table_values_equal_input_rows():
    df = sei_frame()
    t = sei_table(df, ood="cifar100")
    assert list(t.index) == SETTINGS
    assert t.index.names == ["ways", "aggregation"]
    assert list(t.columns) == [
        "acc_paper",
        "acc_official",
        "acc_diff",
        "auroc_paper",
        "auroc_official",
        "auroc_diff",
    ]
    for _, r in df[df["ood"] == "cifar100"].iterrows():
        key = (r["ways"], r["aggregation"])
        assert t.loc[key, f"acc_{r['variant']}"] == r["accuracy"]
        assert t.loc[key, f"auroc_{r['variant']}"] == r["auroc"]
    np.testing.assert_allclose(t["acc_diff"], t["acc_paper"] - t["acc_official"])
    np.testing.assert_allclose(t["auroc_diff"], t["auroc_paper"] - t["auroc_official"])

    with pytest.raises(ValueError, match="several OOD sets"):
        sei_table(df)
    with pytest.raises(ValueError, match="imagenet"):
        sei_table(df, ood="imagenet")
    single = sei_table(df[df["ood"] == "svhn"])  # ood=None with one set
    assert (
        single.loc[(8, "w-avg"), "auroc_paper"]
        == df.query(
            "ood == 'svhn' and variant == 'paper' and ways == 8 and aggregation == 'w-avg'"
        )["auroc"].item()
    )
    # one variant only: the other side NaN
    only_paper = sei_table(df[df["variant"] == "paper"], ood="svhn")
    assert only_paper["acc_official"].isna().all() and only_paper["acc_diff"].isna().all()
    with pytest.raises(ValueError, match="same setting"):
        sei_table(pd.concat([df, df.iloc[:1]]), ood="cifar100")
    with pytest.raises(ValueError, match="aggregation"):
        sei_table(df.assign(aggregation="mean"), ood="cifar100")
    with pytest.raises(ValueError, match="lacks the columns"):
        sei_table(df.drop(columns="fpr95"))


def test_sei_table_several_methods_and_figure():
    df = sei_frame(1, oods=("cifar100",), methods=("mcl", "rotation"))
    t = sei_table(df)
    assert t.index.names == ["method", "ways", "aggregation"]
    assert list(t.index) == [(m, *s) for m in ("mcl", "rotation") for s in SETTINGS]

    fig = sei_figure(sei_frame(2), ood="svhn")
    t = sei_table(sei_frame(2), ood="svhn")
    assert [tr.name for tr in fig.data] == ["paper", "official", "paper", "official"]
    assert [tr.showlegend for tr in fig.data] == [True, True, False, False]
    labels = [
        "no SEI",
        "4-way avg",
        "4-way max",
        "4-way w-avg",
        "8-way avg",
        "8-way max",
        "8-way w-avg",
    ]
    for tr, col in zip(
        fig.data, ["acc_paper", "acc_official", "auroc_paper", "auroc_official"], strict=True
    ):
        assert tr.type == "bar" and list(tr.x) == labels
        np.testing.assert_array_equal(tr.y, t[col].to_numpy())
    assert fig.layout.barmode == "group"
    assert "svhn" in fig.layout.title.text


# ----------------------------------------------------------------------------- style and export


def test_paper_rc_sets_and_restores():
    before = mpl.rcParams["pdf.fonttype"], mpl.rcParams["font.size"]
    with paper_rc():
        assert mpl.rcParams["pdf.fonttype"] == 42 and mpl.rcParams["ps.fonttype"] == 42
        assert mpl.rcParams["font.size"] == 8
        assert list(mpl.rcParams["figure.figsize"]) == [3.3, 2.4]
    assert (mpl.rcParams["pdf.fonttype"], mpl.rcParams["font.size"]) == before
    assert len(PALETTE) == 10 and len(set(PALETTE)) == 10 and OOD_COLOR not in PALETTE
    fig = sei_figure(sei_frame(3), ood="svhn")
    assert fig.layout.template.layout.paper_bgcolor == "white"
    assert fig.layout.template.layout.font.size >= 12


def small_mpl_figure() -> MplFigure:
    with paper_rc():
        fig = MplFigure()
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [1, 0, 1], label="curve")
        ax.set_title("Exported title")
    return fig


def test_export_matplotlib_pdf_svg_png(tmp_path):
    fig = small_mpl_figure()
    pdf = export(fig, tmp_path / "a" / "b" / "fig.pdf")  # parent folders created
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/FontFile2" in data and b"/Type3" not in data  # TrueType embedded, no Type 3
    svg = export(fig, tmp_path / "fig.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "Exported title" in "".join(root.itertext())  # text kept as text
    png = export(fig, tmp_path / "fig.PNG", width=4.0, height=2.0, scale=1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        w, h = im.size
    assert (
        0.7 * 600 < w <= 600 + 10 and 0.7 * 300 < h <= 300 + 10
    )  # 4 x 2 in at 150 dpi, tight bbox
    assert fig.get_size_inches().tolist() == [3.3, 2.4]  # restored
    # the gallery and the score plot export too
    s_in, correct, s_out = score_data(2)
    out = export(
        score_distribution(s_in, correct, s_out, backend="matplotlib", ood_name="LSUN"),
        tmp_path / "s.svg",
    )
    assert "LSUN" in "".join(ET.parse(out).getroot().itertext())


def test_export_rejects_bad_suffix_and_type(tmp_path):
    fig = small_mpl_figure()
    with pytest.raises(ValueError, match=r"'\.jpg'.*\.pdf.*\.svg.*\.png"):
        export(fig, tmp_path / "fig.jpg")
    with pytest.raises(ValueError, match="''"):
        export(fig, tmp_path / "fig")
    with pytest.raises(TypeError, match="go.Figure or a matplotlib Figure"):
        export({"data": []}, tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def test_export_plotly_without_chrome_names_apt_get(tmp_path, monkeypatch):
    import plotly.io._kaleido as pk
    from kaleido.errors import ChromeNotFoundError

    def missing(*args, **kwargs):
        raise ChromeNotFoundError("no chrome")

    monkeypatch.setattr(pk.kaleido, "calc_fig_sync", missing)
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        export(go.Figure(go.Bar(y=[1, 2])), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def kaleido_server():
    """One Chromium for this module's plotly exports (a one-shot export starts its own)."""
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    yield
    kaleido.stop_sync_server(silence_warnings=True)


@pytest.mark.filterwarnings("ignore:The kopts argument is ignored")
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_export_plotly_one_small_figure_per_format(tmp_path, suffix, kaleido_server):
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[2, 1, 3], name="line"))
    fig.update_layout(title="Plotly export title")
    plots._styled(fig)
    path = export(fig, tmp_path / "sub" / f"fig{suffix}", width=300, height=200, scale=2)
    data = path.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as im:
            assert im.size == (600, 400)  # layout px x scale
    elif suffix == ".svg":
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        assert "Plotly export title" in "".join(root.itertext())
    else:
        assert data.startswith(b"%PDF")
