"""mclviz.plots.projection: project (t-SNE / UMAP) and projection_figure (paper Figure 1)."""

from __future__ import annotations

import base64
import io
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image
from plot_inputs import clusters

from mclviz.plots import OOD_COLOR, PALETTE, project, projection_figure
from mclviz.plots.projection import exact_knn


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

    z, _ = clusters(n, 16, 4, seed=5, spread=0.5)
    z = z.astype(np.float32)
    idx, dist = exact_knn(z, 15)
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
    fig = projection_figure(
        emb, y, ood_mask=mask, ood_name="SVHN", class_names=names, sample=sample, seed=5
    )

    assert isinstance(fig, go.Figure)
    idx = np.asarray(fig.layout.meta["sample_idx"])
    expected = np.sort(np.random.default_rng(5).choice(n, sample, replace=False))
    np.testing.assert_array_equal(idx, expected)
    classes = np.unique(y[idx][~ood[idx]])
    per_panel = [c for c in names if names.index(c) in classes] + ["SVHN"]  # the set's name
    assert [t.name for t in fig.data] == per_panel * 3
    assert fig.layout.annotations[0].text == "SimCLR" and fig.layout.annotations[2].text == "MCL"
    n_ood = int(ood[idx].sum())
    assert fig.layout.title.text.replace("<br>", " ") == (
        f"t-SNE, seed 5: {sample - n_ood} test and {n_ood} SVHN images, drawn from {n}"
    )

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
            if t.name == "SVHN":
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
        for i, _name, uri, _j, _where in t.customdata:
            assert uri.startswith("data:image/png;base64,")
            img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
            np.testing.assert_array_equal(np.asarray(img), images[i].transpose(1, 2, 0))
    with pytest.raises(ValueError, match="rows but labels"):
        projection_figure({"a": z, "b": z[:-1]}, y)
    with pytest.raises(TypeError, match="uint8"):
        projection_figure({"a": z}, y, images=images.astype(np.float32))


def test_projection_hover_counts_within_each_set():
    # test rows then OOD rows, as the widgets pass them: the hover box numbers each point
    # within its own set ("OOD image #3 of 10"), not in the concatenation (#33)
    z, y = clusters(40, 6, 3, seed=6)
    y = y.copy()
    y[30:] = -1
    fig = projection_figure({"m": z}, y, ood_name="Gaussian noise", sample=None)
    (ood,) = [t for t in fig.data if t.name == "Gaussian noise"]
    rows = np.array([r[0] for r in ood.customdata])
    within = np.array([r[3] for r in ood.customdata])
    np.testing.assert_array_equal(rows, np.arange(30, 40))
    np.testing.assert_array_equal(within, np.arange(10))
    assert [r[4] for r in ood.customdata][3] == "OOD image #3 of 10"
    assert "customdata[4]" in ood.hovertemplate and "customdata[0]" not in ood.hovertemplate
    test_rows = [r for t in fig.data if t.name != "Gaussian noise" for r in t.customdata]
    assert all(r[0] == r[3] for r in test_rows)
    assert {r[4].split(" #")[0] for r in test_rows} == {"test image"}
    assert test_rows[0][4].endswith("of 30")


def test_projection_figure_wraps_panels_into_a_grid_that_fits_a_cell():
    z, y = clusters(30, 5, 2, seed=7)
    emb = {name: z + k for k, name in enumerate(["SimCLR", "SupCLR", "CCM", "CCM + SPA"])}
    fig = projection_figure(emb, y, sample=None)
    assert fig.layout.width is None and fig.layout.autosize  # the container's width
    axes = {t.xaxis for t in fig.data}
    assert len(axes) == 4
    # two panels a row: each about half the width, never 4 x 380 px in one row
    domains = sorted({tuple(fig.layout[f"xaxis{a[1:]}"].domain) for a in axes})
    assert len(domains) == 2 and all(d[1] - d[0] > 0.45 for d in domains)
    width, height = fig.layout.meta["export_size"]
    assert width <= 1100 and height == fig.layout.height
    # a panel title too long for its panel is wrapped, not left to run into the next
    long = projection_figure(
        {"a model with a name far too long for the one line of its panel": z}, y
    )
    lines = long.layout.annotations[0].text.split("<br>")
    assert len(lines) > 1 and all(len(ln) * 0.6 * 13 <= 400 for ln in lines)
    with pytest.raises(ValueError, match="cols=0"):
        projection_figure(emb, y, cols=0)


def test_projection_figure_reports_progress_per_panel():
    z, y = clusters(20, 4, 2, seed=8)
    seen = []
    projection_figure({"a": z, "b": z * 2}, y, progress=lambda *a: seen.append(a))
    assert seen == [(0, 2, "a"), (1, 2, "b")]
