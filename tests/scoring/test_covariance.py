"""Covariance shrinkage (Ledoit-Wolf, OAS) against scikit-learn, and in fit_gaussians."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scoring_reference import gaussian_data, normalize_rows
from sklearn.covariance import empirical_covariance, ledoit_wolf, ledoit_wolf_shrinkage, oas

from mclviz.scoring import (
    SHRINKAGES,
    ClassGaussians,
    Gaussians,
    Mahalanobis,
    RelativeMahalanobis,
    fit_gaussians,
    gaussian_scores,
    shrinkage_coefficient,
)
from mclviz.scoring.covariance import shrink

SHAPES = [(2, 3), (5, 3), (20, 50), (200, 10), (1000, 40)]  # (m rows, d dimensions)


def _rows(m, d, seed):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(d, generator=gen, dtype=torch.float64) * 3 + 0.1  # anisotropic
    return torch.randn(m, d, generator=gen, dtype=torch.float64) * scale + 2.0


def slow_ledoit_wolf(x):
    """Ledoit & Wolf's coefficient with loops over rows and entries (S = x^T x / m)."""
    m, d = x.shape
    S = sum(np.outer(r, r) for r in x) / m
    mu = np.trace(S) / d
    delta = sum((S[i, j] - (mu if i == j else 0.0)) ** 2 for i in range(d) for j in range(d)) / d
    beta = sum(np.sum((np.outer(r, r) - S) ** 2) for r in x) / (m * m) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


@pytest.mark.parametrize(("m", "d"), SHAPES)
def test_shrinkage_coefficients_equal_scikit_learn(m, d):
    x = _rows(m, d, seed=m * d)
    xc = x - x.mean(0)
    lw = shrinkage_coefficient(xc, "ledoit-wolf")
    assert lw == pytest.approx(ledoit_wolf_shrinkage(xc.numpy(), assume_centered=True), rel=1e-12)
    assert lw == pytest.approx(ledoit_wolf(x.numpy())[1], rel=1e-12)  # it centres itself
    if m * d <= 1000:
        assert lw == pytest.approx(slow_ledoit_wolf(xc.numpy()), rel=1e-10)
    s_oas = shrinkage_coefficient(xc, "oas")
    assert s_oas == pytest.approx(oas(xc.numpy(), assume_centered=True)[1], rel=1e-12)
    assert s_oas == pytest.approx(oas(x.numpy())[1], rel=1e-12)
    assert 0 <= lw <= 1 and 0 <= s_oas <= 1
    assert shrinkage_coefficient(xc, "none") == 0.0
    assert shrinkage_coefficient(xc, 0.25) == 0.25


def test_shrinkage_edge_cases():
    x = _rows(30, 1, seed=0)
    assert shrinkage_coefficient(x - x.mean(0), "ledoit-wolf") == 0.0  # d = 1, as sklearn
    assert shrinkage_coefficient(x - x.mean(0), "oas") == 0.0
    iso = torch.eye(4, dtype=torch.float64).repeat(3, 1)  # S = I / 4 * 3 ... isotropic
    assert shrinkage_coefficient(iso, "ledoit-wolf") == pytest.approx(
        ledoit_wolf_shrinkage(iso.numpy(), assume_centered=True), abs=1e-15
    )
    cov = torch.tensor([[2.0, 1.0], [1.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(shrink(cov, 0.5), torch.tensor([[2.5, 0.5], [0.5, 3.5]]).double())
    assert torch.equal(shrink(cov, 0.0), cov)
    assert SHRINKAGES == ("none", "ledoit-wolf", "oas")
    with pytest.raises(ValueError, match="shrinkage='lw' is unknown; choose one of"):
        shrinkage_coefficient(x, "lw")
    with pytest.raises(ValueError, match=r"shrinkage=1.5 is outside \[0, 1\]"):
        shrinkage_coefficient(x, 1.5)
    with pytest.raises(TypeError, match="shrinkage=True is a bool"):
        fit_gaussians(x, torch.zeros(30, dtype=torch.long), shrinkage=True)
    with pytest.raises(ValueError, match=r"expected \(m, d\) centred rows"):
        shrinkage_coefficient(torch.zeros(3), "oas")


@pytest.mark.parametrize("method", ["ledoit-wolf", "oas"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize(("n", "d", "C"), [(30, 4, 2), (90, 8, 3), (60, 40, 3)])
def test_class_covariances_equal_scikit_learn(method, normalize, n, d, C):
    """unbiased=False, ridge=0: each Sigma_c is sklearn's shrunk covariance of class c."""
    z, y = gaussian_data(n, d, C, seed=n + d)
    g = fit_gaussians(z, y, shrinkage=method, unbiased=False, ridge=0.0, normalize=normalize)
    zn = normalize_rows(z.numpy()) if normalize else z.numpy()
    estimator = ledoit_wolf if method == "ledoit-wolf" else oas
    for c in range(C):
        cov, s = estimator(zn[y.numpy() == c])
        np.testing.assert_allclose(g.covariances[c].numpy(), cov, rtol=1e-10, atol=1e-14)
        assert float(g.shrinkage[c]) == pytest.approx(s, rel=1e-12)
    # the unbiased normaliser scales the same estimate by n_c / (n_c - 1)
    gu = fit_gaussians(z, y, shrinkage=method, ridge=0.0, normalize=normalize)
    for c in range(C):
        n_c = int((y == c).sum())
        cov, _ = estimator(zn[y.numpy() == c])
        np.testing.assert_allclose(
            gu.covariances[c].numpy(), cov * n_c / (n_c - 1), rtol=1e-10, atol=1e-14
        )


@pytest.mark.parametrize("method", ["ledoit-wolf", "oas", 0.3])
@pytest.mark.parametrize(("n", "d", "C"), [(30, 4, 2), (90, 8, 3), (40, 60, 4)])
def test_tied_covariance_is_the_shrunk_pooled_scatter(method, n, d, C):
    """Tied: the within-class-centred rows pooled, then shrunk (a loop over classes)."""
    z, y = gaussian_data(n, d, C, seed=2 * n + d)
    zn, yn = z.numpy(), y.numpy()
    rows = np.concatenate([zn[yn == c] - zn[yn == c].mean(0) for c in range(C)])
    if method == "ledoit-wolf":
        cov, s = ledoit_wolf(rows, assume_centered=True)
    elif method == "oas":
        cov, s = oas(rows, assume_centered=True)
    else:
        s = method
        emp = empirical_covariance(rows, assume_centered=True)
        cov = (1 - s) * emp + s * np.trace(emp) / d * np.eye(d)
    g = fit_gaussians(
        z, y, covariance="tied", shrinkage=method, unbiased=False, ridge=1e-7, normalize=False
    )
    for c in range(C):
        np.testing.assert_allclose(
            g.covariances[c].numpy(), cov + 1e-7 * np.eye(d), rtol=1e-10, atol=1e-14
        )
    assert g.shrinkage.tolist() == pytest.approx([s] * C, rel=1e-12)
    gu = fit_gaussians(z, y, covariance="tied", shrinkage=method, ridge=0.0, normalize=False)
    np.testing.assert_allclose(gu.covariances[0].numpy(), cov * n / (n - C), rtol=1e-10)


def test_unbiased_false_without_shrinkage_is_the_ml_estimate():
    z, y = gaussian_data(80, 5, 2, seed=1)
    g = fit_gaussians(z, y, unbiased=False, ridge=0.0, normalize=False)
    for c in range(2):
        want = np.cov(z.numpy()[y.numpy() == c], rowvar=False, bias=True)
        np.testing.assert_allclose(g.covariances[c].numpy(), want, rtol=1e-12)
    assert g.shrinkage is None  # no shrinkage: nothing stored, as before


def test_shrinkage_makes_small_classes_well_conditioned():
    z, y = gaussian_data(60, 32, 3, seed=5)  # 20 samples per class in 32 dimensions
    with pytest.raises(ValueError, match="class 0 has 20 samples.*shrinkage='ledoit-wolf'"):
        fit_gaussians(z, y)
    for method in ("ledoit-wolf", "oas"):
        g = fit_gaussians(z, y, shrinkage=method, ridge=0.0)
        assert (g.shrinkage > 0).all()
        assert torch.linalg.cond(g.covariances).max() < 1e4
        assert torch.isfinite(gaussian_scores(z, g)).all()
    yy = y.clone()
    yy[0] = 3  # a one-sample class has no covariance, shrunk or not
    with pytest.raises(ValueError, match="class 3 has 1 samples"):
        fit_gaussians(z, yy, shrinkage="ledoit-wolf")


def test_shrunk_gaussians_state_dict_roundtrip(tmp_path):
    z, y = gaussian_data(100, 6, 3)
    plain = fit_gaussians(z, y)
    assert "shrinkage" not in plain.state_dict()  # unchanged keys for the default fit
    g = fit_gaussians(z, y, shrinkage="oas", covariance="tied")
    save_file(g.state_dict(), tmp_path / "g.safetensors")
    back = Gaussians.from_state_dict(load_file(tmp_path / "g.safetensors"))
    assert torch.equal(back.shrinkage, g.shrinkage) and back.tied
    q = torch.randn(9, 6, dtype=torch.float64)
    assert torch.equal(gaussian_scores(q, back), gaussian_scores(q, g))
    g32 = g.to(dtype=torch.float32)
    assert g32.shrinkage.dtype == torch.float32 and g32.counts.dtype == torch.int64


def test_detectors_pass_shrinkage_through():
    z, y = gaussian_data(120, 6, 3, seed=2)
    q = torch.randn(7, 6, dtype=torch.float64)
    det = ClassGaussians(shrinkage="ledoit-wolf", normalize=False).fit(z, y)
    g = fit_gaussians(z, y, shrinkage="ledoit-wolf", normalize=False)
    torch.testing.assert_close(det.score(q), gaussian_scores(q, g).amax(1), rtol=1e-12, atol=0)
    assert "ledoit-wolf" in det.label and det.get_params()["shrinkage"] == "ledoit-wolf"
    det = Mahalanobis(shrinkage="oas").fit(z, y)
    g = fit_gaussians(
        z, y, covariance="tied", shrinkage="oas", unbiased=False, normalize=False, ridge=det.ridge
    )
    torch.testing.assert_close(det.score(q), gaussian_scores(q, g).amax(1), rtol=1e-12, atol=0)
    det = RelativeMahalanobis(shrinkage=0.1).fit(z, y)
    assert float(det.gaussians_.shrinkage[0]) == 0.1 and float(det.background_.shrinkage[0]) == 0.1
    assert "shrinkage 0.1" in det.label
