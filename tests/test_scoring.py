"""mclviz.scoring against slow loops written straight from the paper's Eq. 12-20."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mclviz.metrics import ood_metrics
from mclviz.scoring import (
    KNN,
    MSP,
    ClassMean,
    Gaussians,
    MahalanobisSEI,
    NotFittedError,
    aggregate,
    fit_gaussians,
    fit_sei_gaussians,
    gaussian_scores,
    sei_scores,
)

# ----------------------------------------------------------------------------- slow twins


def _normalize(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def slow_fit(z, y, C, *, covariance="class", ridge=1e-6, normalize=True):
    """Means and covariances with numpy.cov (n - 1), as the authors' cal_MND_whole."""
    z = _normalize(z) if normalize else z
    d = z.shape[1]
    means = np.stack([z[y == c].mean(axis=0) for c in range(C)])
    if covariance == "class":
        covs = np.stack([np.cov(z[y == c], rowvar=False).reshape(d, d) for c in range(C)])
    else:
        scatter = sum(
            (np.sum(y == c) - 1) * np.cov(z[y == c], rowvar=False).reshape(d, d)
            if np.sum(y == c) > 1
            else np.zeros((d, d))
            for c in range(C)
        )
        covs = np.stack([scatter / (len(y) - C)] * C)
    return means, covs + ridge * np.eye(d)


def slow_scores(z, means, covs, *, normalize=True):
    """S[k, c] = -(z_k - mu_c)^T inv(Sigma_c) (z_k - mu_c), one sample at a time (Eq. 12)."""
    z = _normalize(z) if normalize else z
    out = np.empty((len(z), len(means)))
    for k in range(len(z)):
        for c in range(len(means)):
            delta = z[k] - means[c]
            out[k, c] = -(delta @ np.linalg.inv(covs[c]) @ delta)
    return out


def _first_argmax(values):
    best, arg = -math.inf, -1
    for i, v in enumerate(values):
        if v > best:
            best, arg = v, i
    return arg, best


def slow_aggregate(S, method, variant):
    """Python loops of Eq. 17-20 (paper) and of the authors' released SEI code (official)."""
    n, W, C = S.shape
    preds, scores = [], []
    for k in range(n):
        s = S[k]
        if variant == "paper":
            if method == "avg":  # Eq. 17
                agg = [sum(s[m][i] for m in range(W)) / W for i in range(C)]
            elif method == "max":  # Eq. 18
                agg = [max(s[m][i] for m in range(W)) for i in range(C)]
            else:  # Eq. 19-20
                Wm = [1.0 / sum(1.0 / s[m][j] for j in range(C)) for m in range(W)]
                agg = [sum(Wm[m] * s[m][i] for m in range(W)) / sum(Wm) for i in range(C)]
            arg, best = _first_argmax(agg)
        else:
            pred = [[math.sqrt(-s[m][i]) for i in range(C)] for m in range(W)]
            if method == "avg":  # their "mean": sum of distances (we report the mean)
                final = [sum(pred[m][i] for m in range(W)) for i in range(C)]
                arg = final.index(min(final))
                best = -final[arg] / W
            elif method == "max":  # their "min": smallest distance over views and classes
                per_class = [min(pred[m][i] for m in range(W)) for i in range(C)]
                arg = per_class.index(min(per_class))
                best = -min(pred[m][arg] for m in range(W))
            else:  # their "wa": per class, weights 1/d over the views
                temp = []
                for i in range(C):
                    num = [1.0 / pred[m][i] for m in range(W)]
                    denom = sum(num)
                    temp.append(sum(num[m] * pred[m][i] / denom for m in range(W)))
                arg = temp.index(min(temp))
                best = -min(temp)
        preds.append(arg)
        scores.append(best)
    return np.array(preds), np.array(scores)


def _data(n, d, C, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, d, generator=g, dtype=torch.float64) * spread
    y = torch.arange(n) % C
    z = centres[y] + torch.randn(n, d, generator=g, dtype=torch.float64)
    return z, y


# ----------------------------------------------------------------------------- fit_gaussians


@pytest.mark.parametrize("covariance", ["class", "tied"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(("n", "d", "C"), [(40, 3, 1), (60, 5, 3), (200, 8, 4)])
def test_fit_gaussians_matches_numpy(covariance, normalize, n, d, C):
    z, y = _data(n, d, C, seed=n + d)
    g = fit_gaussians(z, y, covariance=covariance, ridge=1e-4, normalize=normalize)
    means, covs = slow_fit(
        z.numpy(), y.numpy(), C, covariance=covariance, ridge=1e-4, normalize=normalize
    )
    assert g.means.dtype == torch.float64 and g.means.shape == (C, d)
    np.testing.assert_allclose(g.means.numpy(), means, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.covariances.numpy(), covs, rtol=1e-10, atol=1e-14)
    # W W^T is the precision matrix
    prec = g.precisions_cholesky @ g.precisions_cholesky.mT
    np.testing.assert_allclose(prec.numpy(), np.linalg.inv(covs), rtol=1e-8, atol=1e-8)
    assert g.counts.tolist() == torch.bincount(y, minlength=C).tolist()
    assert g.tied == (covariance == "tied") and g.normalize == normalize


def test_fit_gaussians_classes_kwarg_and_float32_input():
    z, y = _data(90, 4, 3)
    g = fit_gaussians(z.float(), y, classes=3)
    assert g.num_classes == 3 and g.dim == 4 and g.means.dtype == torch.float64
    with pytest.raises(ValueError, match="no samples"):
        fit_gaussians(z, y, classes=4)
    with pytest.raises(ValueError, match="classes=2"):
        fit_gaussians(z, y, classes=2)


def test_fit_gaussians_errors():
    z, y = _data(60, 4, 3)
    with pytest.raises(ValueError, match="covariance='bogus'"):
        fit_gaussians(z, y, covariance="bogus")
    with pytest.raises(ValueError, match="ridge"):
        fit_gaussians(z, y, ridge=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        bad = z.clone()
        bad[5, 1] = float("nan")
        fit_gaussians(bad, y)
    with pytest.raises(ValueError, match="negative labels"):
        fit_gaussians(z, torch.where(y == 0, -1, y))
    with pytest.raises(ValueError, match="shape"):
        fit_gaussians(z, y[:-1])
    with pytest.raises(ValueError, match="fit_sei_gaussians"):
        fit_gaussians(z[:, None], y)
    # class 1 missing
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no samples"):
        fit_gaussians(z, torch.where(y == 1, 2, y))


def test_small_class_needs_tied_or_allow_singular():
    z, y = _data(60, 16, 2)
    y = y.clone()
    y[:] = 0
    y[:10] = 1  # class 1: 10 samples <= d = 16
    with pytest.raises(ValueError, match="class 1 has 10 samples.*covariance='tied'.*ridge"):
        fit_gaussians(z, y)
    g = fit_gaussians(z, y, covariance="tied")  # pooled: 58 dof >= 16
    assert torch.isfinite(gaussian_scores(z, g)).all()
    g = fit_gaussians(z, y, allow_singular=True, ridge=1e-3)
    assert torch.isfinite(gaussian_scores(z, g)).all()
    y[:1] = 2  # class 2 with a single sample: no covariance even with allow_singular
    with pytest.raises(ValueError, match="class 2 has 1 samples"):
        fit_gaussians(z, y, allow_singular=True, ridge=1e-3)
    # a tied covariance is fine with a one-sample class
    assert fit_gaussians(z, y, covariance="tied").num_classes == 3


def test_not_positive_definite_names_ridge():
    z = torch.zeros(40, 3, dtype=torch.float64)
    z[:, 0] = torch.randn(40, dtype=torch.float64)  # rank one covariance
    with pytest.raises(ValueError, match="not positive definite.*larger ridge"):
        fit_gaussians(z, torch.zeros(40, dtype=torch.long), ridge=0.0, normalize=False)


# ----------------------------------------------------------------------------- gaussian_scores


@pytest.mark.parametrize("covariance", ["class", "tied"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(("n", "d", "C"), [(1, 3, 1), (17, 5, 3), (64, 8, 4)])
def test_gaussian_scores_match_slow_loop(covariance, normalize, n, d, C):
    z, y = _data(30 * C + 3 * d, d, C, seed=d)
    g = fit_gaussians(z, y, covariance=covariance, ridge=1e-5, normalize=normalize)
    means, covs = slow_fit(
        z.numpy(), y.numpy(), C, covariance=covariance, ridge=1e-5, normalize=normalize
    )
    q = torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    got = gaussian_scores(q, g, chunk_size=7)
    want = slow_scores(q.numpy(), means, covs, normalize=normalize)
    assert got.shape == (n, C) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, atol=1e-10)
    assert (got <= 0).all()
    # float32 queries: float32 result, close to the float64 one
    got32 = gaussian_scores(q.float(), g)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), want, rtol=1e-3, atol=1e-3)


def test_score_at_the_mean_is_zero_and_direction():
    z, y = _data(200, 4, 2)
    g = fit_gaussians(z, y, normalize=False)
    s = gaussian_scores(g.means, g)
    assert torch.allclose(s.diagonal(), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    far = g.means + 100.0
    assert (gaussian_scores(far, g) < s.diagonal()).all()  # farther = lower = less IND


def test_chunked_equals_unchunked_large():
    g = torch.Generator().manual_seed(1)
    d, C = 128, 10
    train = torch.randn(4000, d, generator=g)
    gs = fit_gaussians(train, torch.arange(4000) % C)
    q = torch.randn(20_000, d, generator=g)
    ref = gaussian_scores(q, gs, chunk_size=len(q))
    for chunk in (1000, 4093):
        np.testing.assert_allclose(
            gaussian_scores(q, gs, chunk_size=chunk).numpy(), ref.numpy(), rtol=1e-5, atol=1e-4
        )
    small = q[:20].double()
    ref64 = gaussian_scores(small, gs)
    for chunk in (1, 3, 20, 10_000):
        torch.testing.assert_close(
            gaussian_scores(small, gs, chunk_size=chunk), ref64, rtol=1e-12, atol=0
        )


@pytest.mark.parametrize("covariance", ["class", "tied"])
def test_float32_stays_accurate_far_from_the_origin(covariance):
    """Unnormalised embeddings at distance 1000 from the origin: no cancellation in float32."""
    z, y = _data(400, 16, 4, seed=4)
    z = z + 1000.0
    g = fit_gaussians(z, y, covariance=covariance, normalize=False)
    q = z[:50] + 0.1 * torch.randn(50, 16, dtype=torch.float64)
    s64 = gaussian_scores(q, g)
    s32 = gaussian_scores(q.float(), g)
    rel = ((s32.double() - s64).abs() / s64.abs().clamp_min(1.0)).max()
    assert rel < 1e-4


def test_gaussian_scores_errors():
    z, y = _data(600, 128, 2)
    g = fit_gaussians(z, y)
    with pytest.raises(ValueError, match="z has 64 features, but the Gaussians expect 128"):
        gaussian_scores(torch.randn(5, 64), g)
    bad = torch.randn(5000, 128)
    bad[4321, 3] = float("nan")
    with pytest.raises(ValueError, match=r"NaN.*\(4321, 3\)"):
        gaussian_scores(bad, g, chunk_size=1000)
    with pytest.raises(ValueError, match="sei_scores"):
        gaussian_scores(torch.randn(5, 2, 128), g)
    with pytest.raises(ValueError, match="chunk_size"):
        gaussian_scores(torch.randn(5, 128), g, chunk_size=0)
    with pytest.raises(TypeError, match="Gaussians"):
        gaussian_scores(torch.randn(5, 128), {"means": 1})


def test_gaussians_state_dict_safetensors_roundtrip(tmp_path):
    z, y = _data(100, 6, 3)
    for cov in ("class", "tied"):
        g = fit_gaussians(z, y, covariance=cov, normalize=False)
        save_file(g.state_dict(), tmp_path / "g.safetensors")
        back = Gaussians.from_state_dict(load_file(tmp_path / "g.safetensors"))
        assert back.tied == g.tied and back.normalize is False
        q = torch.randn(9, 6, dtype=torch.float64)
        assert torch.equal(gaussian_scores(q, back), gaussian_scores(q, g))
    g32 = g.to(dtype=torch.float32)
    assert g32.means.dtype == torch.float32 and g32.counts.dtype == torch.int64
    with pytest.raises(ValueError, match="unknown keys \\['extra'\\]"):
        Gaussians.from_state_dict({**g.state_dict(), "extra": torch.zeros(1)})


# ----------------------------------------------------------------------------- SEI scores


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


# ----------------------------------------------------------------------------- detectors


def _clusters(n, d, C, seed, views=None, ood=False):
    """Well separated class clusters on the sphere; OOD from other directions."""
    gen = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(99)))[0]
    y = torch.arange(n) % C
    centre = basis[C + 1] if ood else basis[y]  # (n, d) or (d,)
    shape = (n, views, d) if views else (n, d)
    noise = 0.05 * torch.randn(shape, generator=gen)
    if views:
        # each rotation shifts the embedding along its own direction, like a rotation head
        shift = basis[C + 2 : C + 6][torch.arange(views) % 4] * 0.3  # (W, d)
        z = centre[..., None, :] + shift + noise if not ood else centre + shift + noise
    else:
        z = centre + noise
    return z, y


@pytest.mark.parametrize("ways", [1, 4, 8])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_mahalanobis_sei_end_to_end(ways, variant):
    d, C = 16, 3
    ztr, ytr = _clusters(300, d, C, seed=0, views=4)
    zin, yin = _clusters(150, d, C, seed=1, views=8)
    zout, _ = _clusters(150, d, C, seed=2, views=8, ood=True)
    det = MahalanobisSEI(ways=ways, method="w-avg", variant=variant)
    with pytest.raises(NotFittedError, match=r"call fit\(\) first"):
        det.score(zin[:, :ways])
    assert det.fit(ztr, ytr) is det
    assert len(det.gaussians_) == 4 and det.n_classes_ == C
    s_in, s_out = det.score(zin[:, :ways]), det.score(zout[:, :ways])
    assert s_in.shape == (150,)
    assert ood_metrics(s_in, s_out)["auroc"] > 0.99
    assert (det.predict(zin[:, :ways]) == yin).float().mean() > 0.99
    pred, score = det.predict_score(zin[:, :ways])
    assert torch.equal(score, s_in)
    with pytest.raises(ValueError, match=f"ways={ways} expects"):
        det.score(zin if ways != 8 else zin[:, :4])


def test_mahalanobis_sei_plain_embeddings_and_errors():
    ztr, ytr = _clusters(300, 8, 2, seed=0)
    det = MahalanobisSEI().fit(ztr, ytr)  # (n, d) for ways=1
    assert det.score(ztr[:5]).shape == (5,)
    assert torch.equal(det.score(ztr[:5]), det.score(ztr[:5, None]))
    with pytest.raises(ValueError, match="ways=4 needs training embeddings in 4 rotations"):
        MahalanobisSEI(ways=4).fit(ztr, ytr)
    with pytest.raises(ValueError, match="ways=9"):
        MahalanobisSEI(ways=9)
    with pytest.raises(ValueError, match="method='median'"):
        MahalanobisSEI(method="median")
    with pytest.raises(ValueError, match="variant='x'"):
        MahalanobisSEI(variant="x")
    with pytest.raises(ValueError, match="covariance='full'"):
        MahalanobisSEI(covariance="full")
    with pytest.raises(ValueError, match="z has 4 features, but the Gaussians expect 8"):
        det.score(torch.randn(3, 4))


def test_knn_matches_brute_force_and_detects():
    gen = torch.Generator().manual_seed(0)
    train, q = torch.randn(57, 6, generator=gen), torch.randn(23, 6, generator=gen)
    for k in (1, 2, 5):
        det = KNN(k=k, chunk_size=4).fit(train)
        got = det.score(q)
        tn, qn = _normalize(train.double().numpy()), _normalize(q.double().numpy())
        want = [-np.mean(np.sort(1 - tn @ qn[i])[:k]) for i in range(len(qn))]
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    ztr, _ = _clusters(300, 16, 3, seed=0)
    zin, _ = _clusters(100, 16, 3, seed=1)
    zout, _ = _clusters(100, 16, 3, seed=2, ood=True)
    det = KNN().fit(ztr)
    assert ood_metrics(det.score(zin), det.score(zout))["auroc"] > 0.99
    with pytest.raises(NotFittedError, match=r"KNN is not fitted yet; call fit\(\) first"):
        KNN().score(zin)
    with pytest.raises(ValueError, match="k=5 neighbours.*only 3 rows"):
        KNN(k=5).fit(ztr[:3])
    with pytest.raises(ValueError, match="k=0"):
        KNN(k=0)
    with pytest.raises(ValueError, match="z has 3 features, but the detector was fitted on 16"):
        det.score(torch.randn(2, 3))


def test_class_mean_matches_loop_and_detects():
    ztr, ytr = _clusters(300, 16, 3, seed=0)
    det = ClassMean().fit(ztr, ytr)
    q = torch.randn(10, 16)
    mu = [
        _normalize(_normalize(ztr[ytr == c].double().numpy()).mean(0, keepdims=True))[0]
        for c in range(3)
    ]
    qn = _normalize(q.double().numpy())
    want = [max(qn[i] @ mu[c] for c in range(3)) for i in range(10)]
    np.testing.assert_allclose(det.score(q).numpy(), want, rtol=1e-5, atol=1e-6)
    zin, yin = _clusters(100, 16, 3, seed=1)
    zout, _ = _clusters(100, 16, 3, seed=2, ood=True)
    assert ood_metrics(det.score(zin), det.score(zout))["auroc"] > 0.99
    assert torch.equal(det.predict(zin), yin)
    with pytest.raises(NotFittedError, match=r"call fit\(\) first"):
        ClassMean().predict(zin)


def test_msp():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    logits_in = 8.0 * torch.nn.functional.one_hot(y, 4) + torch.randn(200, 4, generator=gen)
    logits_out = torch.randn(200, 4, generator=gen)
    det = MSP()
    assert det.fit() is det
    s = det.score(logits_in)
    torch.testing.assert_close(s, logits_in.softmax(1).max(1).values)
    assert ood_metrics(s, det.score(logits_out))["auroc"] > 0.99
    assert torch.equal(det.predict(logits_in), y)
    with pytest.raises(ValueError, match="logits has shape"):
        det.score(torch.randn(3))
    with pytest.raises(ValueError, match="NaN"):
        det.score(torch.tensor([[0.0, float("nan")]]))


def test_numpy_inputs_accepted():
    z, y = _data(90, 4, 3)
    g = fit_gaussians(z.numpy(), y.numpy())
    s = gaussian_scores(z.numpy()[:4], g)
    assert isinstance(s, torch.Tensor) and s.shape == (4, 3)
    pred, score = aggregate(s[:, None].numpy())
    assert pred.shape == (4,)
