"""mclviz.plots.failures: nearest neighbours, failure cases and the gallery (paper Figure 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure as MplFigure

from mclviz.plots import failure_cases, failure_gallery, nearest_neighbours


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
