"""The field's baselines against slow loops written from their papers' equations, and
against pytorch-ood 0.4.0 on the same outputs (its sign: larger = more outlier)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scoring_reference import clusters, normalize_rows

from mclviz.metrics import ood_metrics
from mclviz.scoring import (
    KNN,
    MSP,
    ODIN,
    OUTPUTS,
    ClassGaussians,
    ClassMean,
    CosineKNN,
    Detector,
    Energy,
    Mahalanobis,
    NotFittedError,
    RelativeMahalanobis,
    ViM,
)


def test_cosine_knn_matches_brute_force_and_detects():
    gen = torch.Generator().manual_seed(0)
    train, q = torch.randn(57, 6, generator=gen), torch.randn(23, 6, generator=gen)
    for k in (1, 2, 5):
        det = CosineKNN(k=k, chunk_size=4).fit(train)
        got = det.score(q)
        tn, qn = normalize_rows(train.double().numpy()), normalize_rows(q.double().numpy())
        want = [-np.mean(np.sort(1 - tn @ qn[i])[:k]) for i in range(len(qn))]
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    ztr, _ = clusters(300, 16, 3, seed=0)
    zin, _ = clusters(100, 16, 3, seed=1)
    zout, _ = clusters(100, 16, 3, seed=2, ood=True)
    det = CosineKNN().fit(ztr)
    assert ood_metrics(det.score(zin), det.score(zout))["auroc"] > 0.99
    with pytest.raises(NotFittedError, match=r"CosineKNN is not fitted yet; call fit\(\) first"):
        CosineKNN().score(zin)
    with pytest.raises(ValueError, match="k=5 neighbours.*only 3 rows"):
        CosineKNN(k=5).fit(ztr[:3])
    with pytest.raises(ValueError, match="k=0"):
        CosineKNN(k=0)
    with pytest.raises(ValueError, match="x has 3 features, but the detector was fitted on 16"):
        det.score(torch.randn(2, 3))


def test_msp():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    logits_in = 8.0 * torch.nn.functional.one_hot(y, 4) + torch.randn(200, 4, generator=gen)
    logits_out = torch.randn(200, 4, generator=gen)
    det = MSP()
    with pytest.raises(NotFittedError, match=r"MSP is not fitted yet; call fit\(\) first"):
        det.score(logits_in)
    assert det.fit(logits_in) is det
    s = det.score(logits_in)
    torch.testing.assert_close(s, logits_in.softmax(1).max(1).values)
    assert ood_metrics(s, det.score(logits_out))["auroc"] > 0.99
    assert torch.equal(det.predict(logits_in), y)
    with pytest.raises(ValueError, match="logits has shape"):
        det.score(torch.randn(3))
    with pytest.raises(ValueError, match="NaN"):
        det.score(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match="logits has 2 classes, but the detector was fitted on 4"):
        det.score(torch.randn(3, 2))


# ----------------------------------------------------------------------------- data


SIZES = [(40, 3, 2, 1), (90, 6, 3, 17), (300, 12, 5, 40)]  # (n_train, d, C, n_query)


def _features(n, d, C, seed, spread=3.0):
    """float64 class clusters (n, d) with labels (n,): raw features, not normalised."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, d, generator=gen, dtype=torch.float64) * spread
    y = torch.arange(n) % C
    scale = torch.rand(d, generator=gen, dtype=torch.float64) + 0.5  # anisotropic noise
    return centres[y] + torch.randn(n, d, generator=gen, dtype=torch.float64) * scale, y


def _logits(n, C, seed, scale=4.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=gen, dtype=torch.float64) * scale


# ----------------------------------------------------------------------------- slow twins


def slow_msp(logits):
    """max_c exp(l_c) / sum_j exp(l_j), one sample at a time (Hendrycks & Gimpel)."""
    out = []
    for row in logits.tolist():
        total = sum(math.exp(v) for v in row)
        out.append(max(math.exp(v) / total for v in row))
    return np.array(out)


def slow_energy(logits, T):
    """-E(x) = T log sum_j exp(l_j / T) (Liu et al.)."""
    return np.array([T * math.log(sum(math.exp(v / T) for v in row)) for row in logits.tolist()])


def slow_odin(logits, T):
    """max_c S_c(x; T), S_c = exp(l_c / T) / sum_j exp(l_j / T) (Liang et al. Eq. 1)."""
    out = []
    for row in logits.tolist():
        total = sum(math.exp(v / T) for v in row)
        out.append(max(math.exp(v / T) / total for v in row))
    return np.array(out)


def _class_means(f, y, C):
    return [np.mean([f[i] for i in range(len(f)) if y[i] == c], axis=0) for c in range(C)]


def slow_tied_covariance(f, y, C, ridge):
    """Sigma = (1/N) sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T + ridge I (Lee et al.)."""
    mu = _class_means(f, y, C)
    d = f.shape[1]
    sigma = np.zeros((d, d))
    for i in range(len(f)):
        delta = f[i] - mu[y[i]]
        sigma += np.outer(delta, delta)
    return mu, sigma / len(f) + ridge * np.eye(d)


def slow_mahalanobis(f, y, C, q, ridge):
    """M(x) = max_c -(f - mu_c)^T Sigma^-1 (f - mu_c), and the argmax class."""
    mu, sigma = slow_tied_covariance(f, y, C, ridge)
    prec = np.linalg.inv(sigma)
    scores, preds = [], []
    for x in q:
        s = [-(x - mu[c]) @ prec @ (x - mu[c]) for c in range(C)]
        scores.append(max(s))
        preds.append(int(np.argmax(s)))
    return np.array(scores), np.array(preds)


def slow_rmd(f, y, C, q, ridge):
    """-min_k (MD_k - MD_0), MD_0 under one Gaussian of all training features (Ren et al.)."""
    mu, sigma = slow_tied_covariance(f, y, C, ridge)
    mu0 = f.mean(axis=0)
    sigma0 = sum(np.outer(fi - mu0, fi - mu0) for fi in f) / len(f) + ridge * np.eye(f.shape[1])
    prec, prec0 = np.linalg.inv(sigma), np.linalg.inv(sigma0)
    out = []
    for x in q:
        md0 = (x - mu0) @ prec0 @ (x - mu0)
        rmd = [(x - mu[k]) @ prec @ (x - mu[k]) - md0 for k in range(C)]
        out.append(-min(rmd))
    return np.array(out)


def slow_knn(train, q, k):
    """-||z - z_(k)||, z = f / ||f||, z_(k) the k-th nearest normalised training row (Sun)."""
    tn = [t / np.linalg.norm(t) for t in train]
    out = []
    for x in q:
        z = x / np.linalg.norm(x)
        dists = sorted(float(np.linalg.norm(z - t)) for t in tn)
        out.append(-dists[k - 1])
    return np.array(out)


def slow_vim(f, W, b, q, D):
    """ViM (Wang et al.): u = -pinv(W) b, principal space of (f - u), alpha, the score."""
    u = -np.linalg.pinv(W) @ b
    X = f - u
    cov = X.T @ X / len(X)
    vals, vecs = np.linalg.eig(cov)
    order = np.argsort(-vals.real)
    residual_space = vecs[:, order[D:]].real  # the eigenvectors beyond the top D
    logits = f @ W.T + b
    alpha = sum(max(row) for row in logits) / sum(
        np.linalg.norm((fi - u) @ residual_space) for fi in f
    )
    out = []
    for x in q:
        lx = x @ W.T + b
        energy = math.log(sum(math.exp(v) for v in lx))
        out.append(energy - alpha * np.linalg.norm((x - u) @ residual_space))
    return np.array(out), alpha


# ----------------------------------------------------------------------------- slow twins


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_msp_energy_odin_match_slow_loops(n, d, C, m):
    train, q = _logits(n, C, seed=n), _logits(m, C, seed=m + 1)
    s = MSP().fit(train).score(q)
    np.testing.assert_allclose(s.numpy(), slow_msp(q), rtol=1e-12)
    for T in (1.0, 2.5):
        det = Energy(temperature=T).fit(train)
        np.testing.assert_allclose(det.score(q).numpy(), slow_energy(q, T), rtol=1e-12)
        assert torch.equal(det.predict(q), q.argmax(1))
    for T in (1.0, 10.0, 1000.0):
        det = ODIN(temperature=T).fit(train)
        np.testing.assert_allclose(det.score(q).numpy(), slow_odin(q, T), rtol=1e-12)
        assert torch.equal(det.predict(q), q.argmax(1))


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
@pytest.mark.parametrize("ridge", [1e-6, 1e-2])
def test_mahalanobis_matches_lee_et_al(n, d, C, m, ridge):
    f, y = _features(n, d, C, seed=n + d)
    q, _ = _features(m, d, C, seed=m, spread=4.0)
    det = Mahalanobis(ridge=ridge).fit(f, y)
    want, pred = slow_mahalanobis(f.numpy(), y.numpy(), C, q.numpy(), ridge)
    np.testing.assert_allclose(det.score(q).numpy(), want, rtol=1e-9)
    np.testing.assert_array_equal(det.predict(q).numpy(), pred)
    assert det.class_scores(q).shape == (m, C)
    # float32 features: float32 scores close to the float64 ones
    np.testing.assert_allclose(det.score(q.float()).numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_relative_mahalanobis_matches_ren_et_al(n, d, C, m):
    f, y = _features(n, d, C, seed=n + 2 * d)
    q, _ = _features(m, d, C, seed=m + 3, spread=4.0)
    det = RelativeMahalanobis(ridge=1e-5).fit(f, y)
    want = slow_rmd(f.numpy(), y.numpy(), C, q.numpy(), 1e-5)
    np.testing.assert_allclose(det.score(q).numpy(), want, rtol=1e-9, atol=1e-9)
    # the predicted class is that of the nearest class mean (the background term is shared)
    assert torch.equal(det.predict(q), Mahalanobis(ridge=1e-5).fit(f, y).predict(q))


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
@pytest.mark.parametrize("k", [1, 2, 7])
def test_knn_matches_sun_et_al(n, d, C, m, k):
    f, _ = _features(n, d, C, seed=n * k)
    q, _ = _features(m, d, C, seed=m * k + 1)
    want = slow_knn(f.numpy(), q.numpy(), k)
    for chunk in (None, 3):
        got = KNN(k=k, chunk_size=chunk).fit(f).score(q)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    got32 = KNN(k=k).fit(f.float()).score(q.float())
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_knn_equals_scikit_learn(n, d, C, m):
    from sklearn.neighbors import NearestNeighbors

    f, _ = _features(n, d, C, seed=n)
    q, _ = _features(m, d, C, seed=m + 7)
    k = min(5, n)
    nn_ = NearestNeighbors(n_neighbors=k, n_jobs=1).fit(normalize_rows(f.numpy()))
    dist, _ = nn_.kneighbors(normalize_rows(q.numpy()))
    np.testing.assert_allclose(KNN(k=k).fit(f).score(q).numpy(), -dist[:, -1], rtol=1e-10)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
@pytest.mark.parametrize("k", [1, 2, 7])
def test_cosine_knn_matches_slow_loop(n, d, C, m, k):
    """-(1/k) sum over the k most similar training rows of (1 - cos(z, z_j))."""
    f, _ = _features(n, d, C, seed=n + k)
    q, _ = _features(m, d, C, seed=m + k)
    want = []
    for x in q.numpy():
        dist = sorted(1 - x @ t / (np.linalg.norm(x) * np.linalg.norm(t)) for t in f.numpy())
        want.append(-sum(dist[:k]) / k)
    got = CosineKNN(k=k, chunk_size=5).fit(f).score(q)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_knn_training_points_are_their_own_neighbours():
    f, _ = _features(50, 4, 2, seed=1)
    assert torch.allclose(KNN(k=1).fit(f).score(f), torch.zeros(50, dtype=torch.float64))
    s2 = KNN(k=2).fit(f).score(f)  # the nearest *other* point
    np.testing.assert_allclose(s2.numpy(), slow_knn(f.numpy(), f.numpy(), 2), rtol=1e-10)


def _classifier(d, C, seed, centres=None):
    gen = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(d, C).double()
    with torch.no_grad():
        w = torch.randn(C, d, generator=gen, dtype=torch.float64)
        lin.weight.copy_(centres if centres is not None else w)
        lin.bias.copy_(torch.randn(C, generator=gen, dtype=torch.float64))
    return lin


class _Model(torch.nn.Module):
    """The smallest model with a classifier head, for ``bind``."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
@pytest.mark.parametrize("dim", [None, 1])
def test_vim_matches_wang_et_al(n, d, C, m, dim):
    f, y = _features(n, d, C, seed=n + d, spread=2.0)
    f = f + 3.0  # positive, post-ReLU-like features: positive mean max logit
    q, _ = _features(m, d, C, seed=m + 11)
    lin = _classifier(d, C, seed=d)
    det = ViM(dim=dim).bind(_Model(lin)).fit(f)
    D = ViM.default_dim(d) if dim is None else dim
    assert det.dim_ == D and det.residual_basis_.shape == (d, d - D)
    want, alpha = slow_vim(
        f.numpy(), lin.weight.detach().numpy(), lin.bias.detach().numpy(), q.numpy(), D
    )
    assert det.alpha_ == pytest.approx(alpha, rel=1e-10)
    np.testing.assert_allclose(det.score(q).numpy(), want, rtol=1e-9, atol=1e-9)
    assert torch.equal(det.predict(q), lin(q).argmax(1))
    # the classifier passed to __init__ instead of bind
    det2 = ViM(dim=dim, weight=lin.weight.detach(), bias=lin.bias.detach()).fit(f)
    torch.testing.assert_close(det2.score(q), det.score(q), rtol=1e-12, atol=1e-12)


def test_vim_default_dim_rule():
    assert [ViM.default_dim(n) for n in (4096, 2048, 1024, 768, 512, 256, 128, 3)] == [
        1000,
        1000,
        512,
        512,
        256,
        128,
        64,
        1,
    ]


# ----------------------------------------------------------------------------- detection


def test_feature_detectors_detect_outliers():
    d, C = 16, 3
    ztr, ytr = clusters(300, d, C, seed=0)
    zin, yin = clusters(100, d, C, seed=1)
    zout, _ = clusters(100, d, C, seed=2, ood=True)
    basis = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(99)))[0]
    lin = torch.nn.Linear(d, C)
    with torch.no_grad():
        lin.weight.copy_(10 * basis[:C])
        lin.bias.zero_()
    for det in (
        Mahalanobis(),
        RelativeMahalanobis(),
        KNN(k=10),
        ViM(dim=C).bind(_Model(lin)),
        Mahalanobis(shrinkage="ledoit-wolf"),
    ):
        det.fit(ztr, ytr)
        assert ood_metrics(det.score(zin), det.score(zout))["auroc"] > 0.99, det
        if det.classifies:
            assert (det.predict(zin) == yin).float().mean() > 0.99, det


def test_logit_detectors_detect_outliers():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    logits_in = 8.0 * torch.nn.functional.one_hot(y, 4) + torch.randn(200, 4, generator=gen)
    logits_out = torch.randn(200, 4, generator=gen)
    for det in (Energy(), ODIN(), ODIN(temperature=1.0)):
        det.fit(logits_in)
        assert ood_metrics(det.score(logits_in), det.score(logits_out))["auroc"] > 0.99
        assert torch.equal(det.predict(logits_in), y)


# ----------------------------------------------------------------------------- pytorch-ood


@pytest.fixture
def pyood():
    """pytorch-ood's detectors (a test dependency: no skip), run in float64 (its fitted
    tensors take the default dtype)."""
    import pytorch_ood.detector as detector

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield detector
    torch.set_default_dtype(old)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_logit_detectors_equal_pytorch_ood(pyood, n, d, C, m):
    """MSP, Energy, ODIN (eps = 0) on the logits of a fixed nn.Linear model."""
    f, _ = _features(m, d, C, seed=m)
    model = _classifier(d, C, seed=n).requires_grad_(False)
    logits = model(f)
    ours = MSP().fit(logits).score(logits)
    torch.testing.assert_close(ours, -pyood.MaxSoftmax(model).predict(f), rtol=1e-12, atol=0)
    for T in (1.0, 3.0):
        ours = Energy(temperature=T).fit(logits).score(logits)
        theirs = pyood.EnergyBased(model, t=T).predict(f)
        torch.testing.assert_close(ours, -theirs, rtol=1e-12, atol=1e-12)
    for T in (1000.0, 10.0):
        ours = ODIN(temperature=T, epsilon=0.0).fit(logits).score(logits)
        theirs = pyood.ODIN(model, eps=0.0, temperature=T).predict(f)
        torch.testing.assert_close(ours, -theirs, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_mahalanobis_and_rmd_equal_pytorch_ood(pyood, n, d, C, m):
    """pytorch-ood adds 1e-6 to the scatter matrices (N Sigma): our ridge 1e-6 / N matches.

    Mahalanobis: theirs = min_c d_c^2 / (2N); RMD: theirs = min_k RMD_k / N.
    """
    f, y = _features(n, d, C, seed=n + d)
    q, _ = _features(m, d, C, seed=m + 5, spread=4.0)
    encoder = torch.nn.Identity()
    ours = Mahalanobis(ridge=1e-6 / n).fit(f, y).score(q)
    theirs = pyood.Mahalanobis(encoder).fit_features(f, y).predict(q)
    torch.testing.assert_close(ours, -2 * n * theirs, rtol=1e-8, atol=1e-10)
    theirs_odin = pyood.MahalanobisODIN(encoder, eps=0.0).fit_features(f, y).predict(q.clone())
    torch.testing.assert_close(ours, -2 * n * theirs_odin, rtol=1e-8, atol=1e-10)
    ours = RelativeMahalanobis(ridge=1e-6 / n).fit(f, y).score(q)
    theirs = pyood.RMD(encoder).fit_features(f, y).predict(q)
    torch.testing.assert_close(ours, -n * theirs, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_knn_equals_pytorch_ood(pyood, n, d, C, m):
    f, y = _features(n, d, C, seed=n)
    q, _ = _features(m, d, C, seed=m + 9)
    for k in {1, min(50, n)}:
        theirs_det = pyood.KNN(torch.nn.Identity(), k=k)
        theirs_det.knn.n_jobs = 1  # one thread (pytorch-ood fixes n_jobs=-1)
        theirs = theirs_det.fit_features(f, y).predict(q)
        ours = KNN(k=k).fit(f).score(q)
        torch.testing.assert_close(ours, -theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("n", "d", "C", "m"), SIZES)
def test_vim_equals_pytorch_ood(pyood, n, d, C, m):
    """pytorch-ood computes ViM in float32: equal to ~1e-6 on a well separated spectrum."""
    gen = torch.Generator().manual_seed(n)
    D = max(1, d // 2)
    # features with a clear principal subspace: strong D-dim signal plus weak noise
    basis = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))[0]
    signal = torch.randn(n + m, D, generator=gen, dtype=torch.float64) * 5 @ basis[:D]
    noise = 0.3 * torch.randn(n + m, d, generator=gen, dtype=torch.float64)
    f = 2.0 + signal + noise
    train, q = f[:n], f[n:]
    lin = _classifier(d, C, seed=d)
    ours = ViM(dim=D).bind(_Model(lin)).fit(train).score(q)
    theirs_det = pyood.ViM(torch.nn.Identity(), d=D, w=lin.weight, b=lin.bias)
    theirs = theirs_det.fit_features(train, torch.zeros(n, dtype=torch.long)).predict(q)
    scale = float(ours.abs().max())
    torch.testing.assert_close(ours, -theirs.double(), rtol=1e-5, atol=1e-5 * scale)


# ----------------------------------------------------------------------------- protocol


def _fitted_detectors():
    """(detector, training outputs, labels, query outputs) for every detector, float64."""
    d, C = 6, 3
    f, y = _features(120, d, C, seed=0)
    q, _ = _features(9, d, C, seed=1)
    lin = _classifier(d, C, seed=2)
    train_logits, q_logits = lin(f).detach(), lin(q).detach()
    z4 = torch.stack([f + r for r in range(4)], dim=1)  # (n, 4, d) rotations
    q4 = torch.stack([q + r for r in range(4)], dim=1)
    return [
        (MSP(), train_logits, None, q_logits),
        (Energy(), train_logits, None, q_logits),
        (ODIN(), train_logits, None, q_logits),
        (Mahalanobis(epsilon=Mahalanobis.PREPROCESSING_EPSILON), f, y, q),
        (RelativeMahalanobis(), f, y, q),
        (KNN(k=5), f, None, q),
        (CosineKNN(), f, None, q),
        (ViM().bind(_Model(lin)), f, None, q),
        (ClassGaussians(), f, y, q),
        (ClassGaussians(views=4, shrinkage="oas"), z4, y, q4),
        (ClassGaussians(views=4, variant="official"), z4, y, q4),
        (ClassMean(), f, y, q),
    ]


_IDS = [
    "msp",
    "energy",
    "odin",
    "mahalanobis",
    "rmd",
    "knn",
    "knn-cosine",
    "vim",
    "gaussians",
    "gaussians-sei-oas",
    "gaussians-sei-official",
    "class-mean",
]


@pytest.mark.parametrize("case", range(len(_IDS)), ids=_IDS)
def test_differentiable_score_equals_score_with_finite_gradient(case):
    det, x, y, q = _fitted_detectors()[case]
    with pytest.raises(NotFittedError, match=r"call fit\(\) first"):
        det.differentiable_score(q)
    assert det.fit(x, y) is det
    score = det.score(q)
    qg = q.clone().requires_grad_(True)
    diff = det.differentiable_score(qg)
    assert diff.shape == score.shape == (q.shape[0],) and diff.requires_grad
    if isinstance(det, ODIN):  # the log of its score, as ODIN's gradient is taken of
        torch.testing.assert_close(diff.exp(), score, rtol=1e-12, atol=0)
    else:
        torch.testing.assert_close(diff, score, rtol=1e-10, atol=1e-12)
    (grad,) = torch.autograd.grad(diff.sum(), qg)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # the score is unchanged by a query that requires grad
    torch.testing.assert_close(det.score(qg).detach(), score, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", range(len(_IDS)), ids=_IDS)
def test_protocol(case):
    det, x, y, q = _fitted_detectors()[case]
    assert isinstance(det, Detector) and det.output in OUTPUTS
    assert det.key.startswith(det.name) and det.label and repr(det).startswith(type(det).__name__)
    assert all(not k.endswith("_") for k in det.get_params())
    with pytest.raises(NotFittedError, match=r"is not fitted yet; call fit\(\) first"):
        det.score(q)
    det.fit(x, y)
    pred, score = det.predict_score(q)
    assert torch.equal(score, det.score(q)) and score.dtype == q.dtype
    if det.classifies:
        assert pred.shape == (q.shape[0],) and torch.equal(pred, det.predict(q))
    else:
        assert pred is None
        with pytest.raises(ValueError, match="does not classify"):
            det.predict(q)
    assert det.bind(_Model(torch.nn.Linear(q.shape[-1], 3))) is det
    if det.needs_labels:
        with pytest.raises(ValueError, match=r"needs the training labels: call fit\(x, y\)"):
            type(det)().fit(x)


def test_preprocessing_step_raises_the_score():
    """One step eps * sign(grad differentiable_score) raises the score (identity model)."""
    f, y = _features(200, 8, 4, seed=3)
    q, _ = _features(50, 8, 4, seed=4, spread=4.0)
    logits = _logits(50, 4, seed=5)
    for det, x, y_, out in (
        (ODIN(), logits, None, logits),
        (Mahalanobis(epsilon=0.002), f, y, q),
    ):
        det.fit(x, y_)
        xg = out.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(det.differentiable_score(xg).sum(), xg)
        moved = out + det.epsilon * grad.sign()
        assert (det.score(moved) > det.score(out)).all()


# ----------------------------------------------------------------------------- errors


def test_baseline_errors_name_the_value_and_the_fix():
    f, y = _features(60, 4, 3, seed=0)
    logits = _logits(10, 3, seed=1)
    with pytest.raises(ValueError, match="epsilon=-0.1 must be a finite number >= 0"):
        ODIN(epsilon=-0.1)
    with pytest.raises(ValueError, match="epsilon=nan"):
        Mahalanobis(epsilon=float("nan"))
    with pytest.raises(ValueError, match="temperature=0 must be a finite number > 0"):
        ODIN(temperature=0)
    with pytest.raises(ValueError, match="temperature=-1"):
        Energy(temperature=-1)
    with pytest.raises(ValueError, match="shrinkage='lw' is unknown"):
        Mahalanobis(shrinkage="lw")
    with pytest.raises(ValueError, match="k=0"):
        KNN(k=0)
    with pytest.raises(ValueError, match="k=50 neighbours asked for, but x has only 10 rows"):
        KNN().fit(f[:10])
    for det in (Energy(), ODIN()):
        det.fit(logits)
        with pytest.raises(ValueError, match="logits has 5 classes, but the detector was fitted"):
            det.score(_logits(2, 5, seed=2))
        with pytest.raises(NotFittedError, match="is not fitted yet"):
            type(det)().score(logits)
    bad = f.clone()
    bad[7, 2] = float("inf")
    for det in (Mahalanobis(), RelativeMahalanobis(), KNN(k=2), CosineKNN()):
        with pytest.raises(
            ValueError, match=r"x holds NaN or infinite values \(first at index \(7, 2\)\)"
        ):
            det.fit(bad, y)
        det.fit(f, y)
        with pytest.raises(ValueError, match="x has 5 features, but the detector was fitted on 4"):
            det.score(torch.randn(3, 5, dtype=torch.float64))
        with pytest.raises(ValueError, match="NaN or infinite"):
            det.score(bad)
    # too few samples for the pooled covariance (n - C < d)
    small, ys = _features(8, 16, 2, seed=3)
    with pytest.raises(ValueError, match="degrees of freedom.*shrinkage='ledoit-wolf'"):
        Mahalanobis().fit(small, ys)
    assert torch.isfinite(Mahalanobis(shrinkage="ledoit-wolf").fit(small, ys).score(small)).all()
    with pytest.raises(ValueError, match=r"classes \[1\] have no samples|class\(es\) \[1\]"):
        Mahalanobis().fit(f, torch.where(y == 1, 2, y))


def test_vim_errors_and_bind():
    f, _ = _features(80, 6, 3, seed=0)
    lin = _classifier(6, 3, seed=1)
    with pytest.raises(
        ValueError, match=r"ViM needs the classifier's weight and bias: call bind\(model\)"
    ):
        ViM().fit(f)
    with pytest.raises(ValueError, match="model.classifier is None.*nn.Linear"):
        ViM().bind(_Model(None))
    with pytest.raises(ValueError, match="model.classifier is Sequential"):
        ViM().bind(_Model(torch.nn.Sequential(lin)))
    with pytest.raises(ValueError, match="bias was given without weight"):
        ViM(bias=torch.zeros(3))
    with pytest.raises(ValueError, match=r"bias has shape \(2,\), but weight has 3 classes"):
        ViM(weight=lin.weight.detach(), bias=torch.zeros(2))
    with pytest.raises(ValueError, match=r"weight has shape \(6,\)"):
        ViM(weight=torch.zeros(6))
    with pytest.raises(ValueError, match="dim=0 must be a positive integer"):
        ViM(dim=0)
    det = ViM(dim=6).bind(_Model(lin))
    with pytest.raises(ValueError, match="dim=6 must be in 1..5 for 6-dimensional features"):
        det.fit(f)
    with pytest.raises(ValueError, match="x has 4 features, but the classifier takes 6"):
        ViM().bind(_Model(lin)).fit(f[:, :4])
    det = ViM().bind(_Model(lin)).fit(f)
    assert det.bind(_Model(lin)).fitted_  # the same classifier keeps the fit
    with pytest.raises(ValueError, match="x has 5 features, but the detector was fitted on 6"):
        det.score(f[:, :5])
    other = _classifier(6, 3, seed=2)
    det.bind(_Model(other))  # another classifier: fit again
    with pytest.raises(NotFittedError, match=r"ViM is not fitted yet; call fit\(\) first"):
        det.score(f)
    # a model without bias: zeros
    nobias = torch.nn.Linear(6, 3, bias=False).double()
    s = ViM(dim=3).bind(_Model(nobias)).fit(f).score(f)
    s0 = ViM(dim=3, weight=nobias.weight.detach(), bias=torch.zeros(3)).fit(f).score(f)
    torch.testing.assert_close(s, s0)
    # a flat training set: no residual
    flat = torch.zeros(30, 6, dtype=torch.float64)
    flat[:, 0] = torch.arange(30.0)
    with pytest.raises(ValueError, match="no residual off their top-5 principal subspace"):
        ViM(dim=5, weight=torch.eye(3, 6, dtype=torch.float64)).fit(flat)
