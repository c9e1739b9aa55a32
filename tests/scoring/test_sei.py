"""fit_sei_gaussians / sei_scores / aggregate against slow loops written from Eq. 15-20."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scoring_reference import slow_aggregate, slow_fit, slow_scores

from mclviz.scoring import aggregate, fit_sei_gaussians, gaussian_scores, sei_scores


def test_fit_sei_gaussians_and_sei_scores_match_per_view_loop():
    n, R, d, C = 120, 4, 5, 3
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(n, R, d, dtype=torch.float64, generator=gen)
    z += torch.arange(R, dtype=torch.float64)[None, :, None]  # each rotation its own place
    y = torch.arange(n) % C
    gs = fit_sei_gaussians(z, y, ridge=1e-5)
    assert len(gs) == R
    for r in range(R):
        means, covs = slow_fit(z[:, r].numpy(), y.numpy(), C, ridge=1e-5)
        np.testing.assert_allclose(gs[r].means.numpy(), means, rtol=1e-12)
    q = torch.randn(7, 8, d, dtype=torch.float64, generator=gen)
    s = sei_scores(q, gs)
    assert s.shape == (7, 8, C)
    for m in range(8):  # view m uses rotation m % 4's Gaussians, flips included
        means, covs = slow_fit(z[:, m % 4].numpy(), y.numpy(), C, ridge=1e-5)
        np.testing.assert_allclose(
            s[:, m].numpy(), slow_scores(q[:, m].numpy(), means, covs), rtol=1e-8
        )
    # explicit view indices: columns are views 4 and 2
    s2 = sei_scores(q[:, [4, 2]], gs, views=[4, 2])
    np.testing.assert_allclose(s2.numpy(), s[:, [4, 2]].numpy(), rtol=1e-12)
    # one Gaussians for every view
    s3 = sei_scores(q, gs[0])
    for m in (3, 5):
        np.testing.assert_allclose(
            s3[:, m].numpy(), gaussian_scores(q[:, m], gs[0]).numpy(), rtol=1e-12
        )


def test_sei_scores_errors():
    z = torch.randn(60, 2, 3, dtype=torch.float64)
    gs = fit_sei_gaussians(z, torch.arange(60) % 2)
    with pytest.raises(ValueError, match="need rotation 3's Gaussians.*2 entries"):
        sei_scores(torch.randn(4, 4, 3), gs)
    with pytest.raises(ValueError, match="views=.*names 1 views, but z_views has 2"):
        sei_scores(torch.randn(4, 2, 3), gs, views=[0])
    with pytest.raises(ValueError, match=r"expected \(n, W, d\)"):
        sei_scores(torch.randn(4, 3), gs)
    with pytest.raises(ValueError, match="z has 4 features, but the Gaussians expect 3"):
        sei_scores(torch.randn(4, 2, 4), gs)
    with pytest.raises(ValueError, match="R <= 4"):
        fit_sei_gaussians(torch.randn(60, 8, 3), torch.arange(60) % 2)


# ----------------------------------------------------------------------------- aggregate


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("method", ["avg", "max", "w-avg"])
@pytest.mark.parametrize(
    ("n", "W", "C"), [(1, 1, 1), (13, 1, 4), (9, 2, 3), (25, 4, 10), (11, 8, 5)]
)
def test_aggregate_matches_slow_loops(method, variant, n, W, C):
    gen = torch.Generator().manual_seed(n * W + C)
    S = -torch.rand(n, W, C, dtype=torch.float64, generator=gen) * 50 - 1e-3  # -d^2 < 0
    pred, score = aggregate(S, method, variant)
    want_pred, want_score = slow_aggregate(S.numpy(), method, variant)
    assert pred.dtype == torch.int64 and pred.shape == (n,) and score.shape == (n,)
    np.testing.assert_array_equal(pred.numpy(), want_pred)
    np.testing.assert_allclose(score.numpy(), want_score, rtol=1e-12)


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("method", ["avg", "max", "w-avg"])
def test_aggregate_ties_go_to_lowest_class(method, variant):
    gen = torch.Generator().manual_seed(5)
    S = -torch.rand(40, 4, 5, dtype=torch.float64, generator=gen) * 3 - 0.01
    S[:, :, 3] = S[:, :, 1]  # class 3 is an exact copy of class 1: an exact tie
    S[:20, :, 1] = -1e-3  # ... and the best class for half of the rows
    pred, score = aggregate(S, method, variant)
    want_pred, want_score = slow_aggregate(S.numpy(), method, variant)
    np.testing.assert_array_equal(pred.numpy(), want_pred)
    np.testing.assert_allclose(score.numpy(), want_score, rtol=1e-12)
    assert (pred[:20] == 1).all() and not (pred == 3).any()  # never the later copy


@pytest.mark.parametrize(
    ("method", "variant"), [("avg", "paper"), ("max", "paper"), ("max", "official")]
)
def test_aggregate_integer_ties_exact_arithmetic(method, variant):
    """Small integer scores: many ties that exact arithmetic keeps exact."""
    gen = torch.Generator().manual_seed(6)
    S = -torch.randint(1, 4, (60, 4, 5), generator=gen).double()
    pred, score = aggregate(S, method, variant)
    want_pred, want_score = slow_aggregate(S.numpy(), method, variant)
    np.testing.assert_array_equal(pred.numpy(), want_pred)
    np.testing.assert_allclose(score.numpy(), want_score, rtol=1e-12)


def test_official_literal_loop_agrees_without_ties():
    """The authors' 'min' loop uses <= (last of a tie); without ties it equals ours."""
    gen = torch.Generator().manual_seed(11)
    S = -torch.rand(30, 8, 10, dtype=torch.float64, generator=gen) * 9 - 0.1
    pred, score = aggregate(S, "max", "official")
    for k in range(30):
        dist = np.sqrt(-S[k].numpy())
        best, final = 999999, -1
        for m in range(8):
            for j in range(10):
                if dist[m][j] <= best:
                    best, final = dist[m][j], j
        assert pred[k] == final and score[k] == pytest.approx(-dist[:, final].min())


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("method", ["avg", "max", "w-avg"])
def test_aggregate_single_view_is_plain_argmax(method, variant):
    S = -torch.rand(50, 1, 7, dtype=torch.float64) * 10
    pred, score = aggregate(S, method, variant)
    assert torch.equal(pred, S[:, 0].argmax(dim=1))
    plain = S[:, 0].amax(dim=1)
    want = plain if variant == "paper" else -(-plain).sqrt()
    torch.testing.assert_close(score, want, rtol=1e-15, atol=0)
    pred2, score2 = aggregate(S[:, 0], method, variant)  # (n, C) means W = 1
    assert torch.equal(pred2, pred) and torch.equal(score2, score)


def test_weighted_average_weights_are_positive_and_penalise_low_views():
    # view 1 has much larger distances (much lower scores): it gets the larger weight
    S = torch.tensor([[[-1.0, -2.0], [-100.0, -200.0]]], dtype=torch.float64)
    pred, score = aggregate(S, "w-avg", "paper")
    w = torch.tensor([1 / (1 / -1.0 + 1 / -2.0), 1 / (1 / -100.0 + 1 / -200.0)])
    assert (w < 0).all()
    wn = w / w.sum()
    assert (wn > 0).all() and wn[1] > 0.9
    assert score.item() == pytest.approx(float(wn[0] * -1.0 + wn[1] * -100.0))
    assert pred.item() == 0


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_zero_distance_is_finite(variant):
    S = -torch.rand(6, 4, 3, dtype=torch.float64) - 0.5
    S[0, 2, 1] = 0.0  # a query exactly at a mean
    S[1, :, 2] = 0.0  # at the mean in every view
    S32 = S.float()
    for s in (S, S32):
        pred, score = aggregate(s, "w-avg", variant)
        assert torch.isfinite(score).all()
        assert pred[1] == 2 and score[1] == pytest.approx(0.0, abs=1e-30)
    if variant == "official":  # harmonic mean with a zero term -> 0, the best score
        assert aggregate(S, "w-avg", variant)[0][0] == 1


def test_aggregate_errors():
    S = -torch.rand(4, 2, 3)
    with pytest.raises(ValueError, match="method='mean' is unknown"):
        aggregate(S, "mean")
    with pytest.raises(ValueError, match="variant='authors' is unknown"):
        aggregate(S, "avg", "authors")
    with pytest.raises(ValueError, match="positive values.*gaussian_scores"):
        aggregate(-S, "w-avg")
    with pytest.raises(ValueError, match="positive values"):
        aggregate(-S, "avg", "official")
    aggregate(-S, "avg", "paper")  # any real scores are fine for the plain mean / max
    bad = S.clone()
    bad[1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        aggregate(bad)
    with pytest.raises(ValueError, match=r"\(n, W, C\)"):
        aggregate(torch.zeros(2, 2, 2, 2))
