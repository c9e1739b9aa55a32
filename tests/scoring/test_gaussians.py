"""fit_gaussians / gaussian_scores / Gaussians against slow loops written from Eq. 12-13."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scoring_reference import gaussian_data, slow_fit, slow_scores

from mclviz.scoring import Gaussians, aggregate, fit_gaussians, gaussian_scores

# ----------------------------------------------------------------------------- fit_gaussians


@pytest.mark.parametrize("covariance", ["class", "tied"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(("n", "d", "C"), [(40, 3, 1), (60, 5, 3), (200, 8, 4)])
def test_fit_gaussians_matches_numpy(covariance, normalize, n, d, C):
    z, y = gaussian_data(n, d, C, seed=n + d)
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
    z, y = gaussian_data(90, 4, 3)
    g = fit_gaussians(z.float(), y, classes=3)
    assert g.num_classes == 3 and g.dim == 4 and g.means.dtype == torch.float64
    with pytest.raises(ValueError, match="no samples"):
        fit_gaussians(z, y, classes=4)
    with pytest.raises(ValueError, match="classes=2"):
        fit_gaussians(z, y, classes=2)


def test_fit_gaussians_errors():
    z, y = gaussian_data(60, 4, 3)
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
    z, y = gaussian_data(60, 16, 2)
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
    z, y = gaussian_data(30 * C + 3 * d, d, C, seed=d)
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
    z, y = gaussian_data(200, 4, 2)
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
    z, y = gaussian_data(400, 16, 4, seed=4)
    z = z + 1000.0
    g = fit_gaussians(z, y, covariance=covariance, normalize=False)
    q = z[:50] + 0.1 * torch.randn(50, 16, dtype=torch.float64)
    s64 = gaussian_scores(q, g)
    s32 = gaussian_scores(q.float(), g)
    rel = ((s32.double() - s64).abs() / s64.abs().clamp_min(1.0)).max()
    assert rel < 1e-4


def test_gaussian_scores_errors():
    z, y = gaussian_data(600, 128, 2)
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
    z, y = gaussian_data(100, 6, 3)
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


def test_numpy_inputs_accepted():
    z, y = gaussian_data(90, 4, 3)
    g = fit_gaussians(z.numpy(), y.numpy())
    s = gaussian_scores(z.numpy()[:4], g)
    assert isinstance(s, torch.Tensor) and s.shape == (4, 3)
    pred, score = aggregate(s[:, None].numpy())
    assert pred.shape == (4,)


@pytest.mark.parametrize("covariance", ["class", "tied"])
@pytest.mark.parametrize("normalize", [True, False])
def test_gaussian_scores_differentiable(covariance, normalize):
    """With z requiring grad: the same values, and gradients that pass gradcheck."""
    z, y = gaussian_data(90, 4, 3, seed=7)
    g = fit_gaussians(z, y, covariance=covariance, normalize=normalize, ridge=1e-4)
    q = torch.randn(11, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    qg = q.clone().requires_grad_(True)
    s = gaussian_scores(qg, g, chunk_size=4)
    assert s.requires_grad
    torch.testing.assert_close(s.detach(), gaussian_scores(q, g), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: gaussian_scores(t, g, chunk_size=4), (qg,))
    with torch.no_grad():  # no graph without grad mode
        assert not gaussian_scores(qg, g).requires_grad
