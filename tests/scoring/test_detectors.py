"""The detector protocol and MCL's own detectors (ClassGaussians, ClassMean)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scoring_reference import clusters, gaussian_data, normalize_rows, slow_fit, slow_scores

from mclviz.metrics import ood_metrics
from mclviz.scoring import ClassGaussians, ClassMean, Detector, NotFittedError


@pytest.mark.parametrize("ways", [1, 4, 8])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_mahalanobis_sei_end_to_end(ways, variant):
    d, C = 16, 3
    ztr, ytr = clusters(300, d, C, seed=0, views=4)
    zin, yin = clusters(150, d, C, seed=1, views=8)
    zout, _ = clusters(150, d, C, seed=2, views=8, ood=True)
    det = ClassGaussians(views=ways, aggregation="w-avg", variant=variant)
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
    with pytest.raises(ValueError, match=f"views={ways} expects"):
        det.score(zin if ways != 8 else zin[:, :4])


def test_mahalanobis_sei_plain_embeddings_and_errors():
    ztr, ytr = clusters(300, 8, 2, seed=0)
    det = ClassGaussians().fit(ztr, ytr)  # (n, d) for one view
    assert det.score(ztr[:5]).shape == (5,)
    assert torch.equal(det.score(ztr[:5]), det.score(ztr[:5, None]))
    with pytest.raises(ValueError, match="views=4 needs training outputs in 4 rotations"):
        ClassGaussians(views=4).fit(ztr, ytr)
    with pytest.raises(ValueError, match="views=9"):
        ClassGaussians(views=9)
    with pytest.raises(ValueError, match="method='median'"):
        ClassGaussians(aggregation="median")
    with pytest.raises(ValueError, match="variant='x'"):
        ClassGaussians(variant="x")
    with pytest.raises(ValueError, match="covariance='full'"):
        ClassGaussians(covariance="full")
    with pytest.raises(ValueError, match="needs the training labels"):
        ClassGaussians().fit(ztr)
    with pytest.raises(ValueError, match="z has 4 features, but the Gaussians expect 8"):
        det.score(torch.randn(3, 4))


def test_class_mean_matches_loop_and_detects():
    ztr, ytr = clusters(300, 16, 3, seed=0)
    det = ClassMean().fit(ztr, ytr)
    q = torch.randn(10, 16)
    mu = [
        normalize_rows(normalize_rows(ztr[ytr == c].double().numpy()).mean(0, keepdims=True))[0]
        for c in range(3)
    ]
    qn = normalize_rows(q.double().numpy())
    want = [max(qn[i] @ mu[c] for c in range(3)) for i in range(10)]
    np.testing.assert_allclose(det.score(q).numpy(), want, rtol=1e-5, atol=1e-6)
    zin, yin = clusters(100, 16, 3, seed=1)
    zout, _ = clusters(100, 16, 3, seed=2, ood=True)
    assert ood_metrics(det.score(zin), det.score(zout))["auroc"] > 0.99
    assert torch.equal(det.predict(zin), yin)
    with pytest.raises(NotFittedError, match=r"call fit\(\) first"):
        ClassMean().predict(zin)


SIZES = [(40, 3, 2, 1), (90, 6, 3, 17), (300, 12, 5, 40)]  # (n_train, d, C, n_query)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
@pytest.mark.parametrize("covariance", ["class", "tied"])
@pytest.mark.parametrize("normalize", [True, False])
def test_class_gaussians_one_view_matches_slow_loop(n, d, C, m, covariance, normalize):
    """views=1: max_c and argmax_c of -(z - mu_c)^T Sigma_c^-1 (z - mu_c) (Eq. 12-14)."""
    z, y = gaussian_data(n, d, C, seed=n + d)
    q = torch.randn(m, d, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    det = ClassGaussians(covariance=covariance, normalize=normalize, ridge=1e-4).fit(z, y)
    means, covs = slow_fit(
        z.numpy(), y.numpy(), C, covariance=covariance, ridge=1e-4, normalize=normalize
    )
    S = slow_scores(q.numpy(), means, covs, normalize=normalize)  # (m, C)
    np.testing.assert_allclose(det.score(q).numpy(), S.max(1), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(det.predict(q).numpy(), S.argmax(1))


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_class_mean_matches_slow_loop_sizes(n, d, C, m):
    z, y = gaussian_data(n, d, C, seed=n)
    q = torch.randn(m, d, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    det = ClassMean().fit(z, y)
    zn, qn = normalize_rows(z.numpy()), normalize_rows(q.numpy())
    mu = [zn[y.numpy() == c].mean(0) for c in range(C)]
    mu = [v / np.linalg.norm(v) for v in mu]
    want = [[float(qn[i] @ mu[c]) for c in range(C)] for i in range(m)]
    np.testing.assert_allclose(det.score(q).numpy(), np.max(want, 1), rtol=1e-12)
    np.testing.assert_array_equal(det.predict(q).numpy(), np.argmax(want, 1))


def test_base_protocol_defaults():
    class Constant(Detector):
        name = "constant"

        def _predict_score(self, x):
            return None, torch.zeros(len(x))

    det = Constant()
    assert det.bind(torch.nn.Linear(2, 2)) is det  # the base bind is a no-op
    assert det.key == "constant" and det.label == "constant" and det.epsilon == 0.0
    with pytest.raises(NotFittedError):
        det.differentiable_score(torch.zeros(3, 2))
    det.fit(torch.zeros(3, 2))
    assert det.fitted_ and det.differentiable_score(torch.zeros(3, 2)).shape == (3,)
    assert Constant().fit_views == 1 and ClassGaussians(views=8).fit_views == 4
