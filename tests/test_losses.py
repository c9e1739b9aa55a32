"""Tests for mclviz.losses: every vectorised loss against a slow loop written from the paper.

The slow twins below follow Eq. 1-11 of Cho et al. (2021) literally, with Python loops over
i, j, k in float64, and with the choices documented in ``mclviz/losses.py`` (positive view in
the CCM denominator with 1/tau; SPA positive set with the same auxiliary label; chosen SPA
positive in its denominator with 1/tau; ``variant="official"``: similarities floored at 1e-7
and the sibling kept in the SPA denominator as exp(0)).
"""

from __future__ import annotations

import math

import pytest
import torch

from mclviz.losses import (
    AngularCenterLoss,
    CCMLoss,
    MCLLoss,
    MeanShiftedLoss,
    NTXentLoss,
    SPALoss,
    SupConLoss,
    angular_center,
    ccm,
    ccm_mask,
    mcl,
    mcl_terms,
    mean_shifted,
    nt_xent,
    sample_positives,
    spa,
    spa_positive_mask,
    supcon,
)

# --------------------------------------------------------------------------------------------
# Slow twins, straight from the equations (0-based: views 2k, 2k+1 of image k)
# --------------------------------------------------------------------------------------------


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
    return float(a @ b) / (na * nb)


def ref_sim(z: torch.Tensor, variant: str = "paper") -> list[list[float]]:
    z = z.double()
    n = z.shape[0]
    sim = [[_cos(z[i], z[k]) for k in range(n)] for i in range(n)]  # Eq. 1
    if variant == "official":
        sim = [[max(s, 1e-7) for s in row] for row in sim]
    return sim


def partner(i: int) -> int:
    return i + 1 if i % 2 == 0 else i - 1


def ref_ccm_value(y, y_aux, i, k, tau, alpha, beta) -> float:  # Eq. 3 / Eq. 11
    if y[i] == y[k]:
        if y_aux is None or y_aux[i] == y_aux[k]:
            return alpha
        return beta
    return 1.0 / tau


def ref_nt_xent(z, tau) -> float:
    s = ref_sim(z)
    n = len(s)
    total = 0.0
    for i in range(n):
        j = partner(i)
        den = sum(math.exp(s[i][k] / tau) for k in range(n) if k != i)
        total += -math.log(math.exp(s[i][j] / tau) / den)  # Eq. 1
    return total / n  # Eq. 2


def ref_supcon(z, y, tau) -> float:
    s = ref_sim(z)
    n = len(s)
    total = 0.0
    for i in range(n):
        den = sum(math.exp(s[i][k] / tau) for k in range(n) if k != i)
        positives = [p for p in range(n) if p != i and y[p] == y[i]]
        total += -sum(math.log(math.exp(s[i][p] / tau) / den) for p in positives) / len(positives)
    return total / n


def ref_ccm(z, y, y_aux, tau, alpha, beta, variant="paper") -> float:
    s = ref_sim(z, variant)
    n = len(s)
    total = 0.0
    for i in range(n):
        j = partner(i)
        den = 0.0
        for k in range(n):
            if k == i:
                continue
            if k == j:  # the positive view: same term as the numerator
                den += math.exp(s[i][k] / tau)
            else:
                den += math.exp(s[i][k] * ref_ccm_value(y, y_aux, i, k, tau, alpha, beta))
        total += -math.log(math.exp(s[i][j] / tau) / den)  # Eq. 4-5
    return total / n  # Eq. 6


def ref_positive_set(y, y_aux, i) -> list[int]:  # Eq. 7
    return [
        k
        for k in range(len(y))
        if y[k] == y[i] and (y_aux is None or y_aux[k] == y_aux[i]) and k // 2 != i // 2
    ]


def ref_spa_pair(s, y, y_aux, i, j, tau, alpha, beta, variant) -> float:
    den = 0.0
    for k in range(len(s)):
        if k // 2 == i // 2:  # the parent image's views
            if variant == "official" and k != i:
                den += math.exp(0.0)
            continue
        if k == j:
            den += math.exp(s[i][j] / tau)
        else:
            den += math.exp(s[i][k] * ref_ccm_value(y, y_aux, i, k, tau, alpha, beta))
    return -math.log(math.exp(s[i][j] / tau) / den)  # Eq. 8


def ref_spa(z, y, y_aux, tau, alpha, beta, mode, positives=None, variant="paper") -> float:
    s = ref_sim(z, variant)
    n = len(s)
    total = 0.0
    for i in range(n):
        if mode == "sample":
            j = int(positives[i])
            if j >= 0:
                total += ref_spa_pair(s, y, y_aux, i, j, tau, alpha, beta, variant)
        else:
            pos = ref_positive_set(y, y_aux, i)
            if pos:  # Eq. 9: uniform expectation over B_i^+
                terms = [ref_spa_pair(s, y, y_aux, i, j, tau, alpha, beta, variant) for j in pos]
                total += sum(terms) / len(terms)
    return total / n  # Eq. 10


def ref_mean_shifted(z, center, tau) -> float:
    z = z.double()
    c = center.double()
    rows = []
    for i in range(z.shape[0]):
        u = z[i] / math.sqrt(float(z[i] @ z[i])) - c
        rows.append(u / math.sqrt(float(u @ u)))
    return ref_nt_xent(torch.stack(rows), tau)


def ref_angular_center(z, center) -> float:
    return -sum(_cos(z[i].double(), center.double()) for i in range(z.shape[0])) / z.shape[0]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

LABEL_PATTERNS = ["random", "all_one", "distinct", "singleton"]
AUX_PATTERNS = [None, "per_image", "per_view"]


def make_labels(n_img: int, pattern: str, gen: torch.Generator) -> torch.Tensor:
    if pattern == "all_one":
        img = torch.zeros(n_img, dtype=torch.long)
    elif pattern == "distinct":
        img = torch.arange(n_img) * 3 - 1  # arbitrary, including a negative label
    elif pattern == "singleton":  # one class with a single image, the rest share classes
        img = torch.randint(0, 2, (n_img,), generator=gen)
        img[-1] = 7
    else:
        img = torch.randint(0, 3, (n_img,), generator=gen)
    return img.repeat_interleave(2)  # (2N,), views share their image's label


def make_aux(n_img: int, pattern: str | None, gen: torch.Generator) -> torch.Tensor | None:
    if pattern is None:
        return None
    if pattern == "per_image":
        return torch.randint(0, 2, (n_img,), generator=gen).repeat_interleave(2)
    return torch.randint(0, 2, (2 * n_img,), generator=gen)  # views may differ


def make_z(n_img: int, d: int, gen: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    return (torch.randn(2 * n_img, d, generator=gen, dtype=torch.float64) * 2.0).to(dtype)


def hyper(tau: float, gen: torch.Generator) -> tuple[float, float]:
    u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
    return 0.05 + 0.9 * u[0] / tau, 0.05 + 0.9 * u[1] / tau  # alpha, beta in (0, 1/tau)


def close(a: torch.Tensor, b: float, rtol: float = 1e-9, atol: float = 1e-10) -> bool:
    return abs(float(a) - b) <= atol + rtol * abs(b)


# --------------------------------------------------------------------------------------------
# Against the slow twins
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_img", [1, 2, 5])
@pytest.mark.parametrize("d", [1, 3, 16])
@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_nt_xent_matches_loop(n_img, d, tau):
    gen = torch.Generator().manual_seed(100 * n_img + d)
    z = make_z(n_img, d, gen)
    out = nt_xent(z, tau)
    assert out.dtype == torch.float64 and out.shape == ()
    assert close(out, ref_nt_xent(z, tau))


@pytest.mark.parametrize("pattern", LABEL_PATTERNS)
@pytest.mark.parametrize("n_img", [1, 3, 6])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_supcon_matches_loop(pattern, n_img, tau):
    gen = torch.Generator().manual_seed(7 * n_img)
    z, y = make_z(n_img, 5, gen), make_labels(n_img, pattern, gen)
    assert close(supcon(z, y, tau), ref_supcon(z, y.tolist(), tau))


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("aux", AUX_PATTERNS)
@pytest.mark.parametrize("pattern", LABEL_PATTERNS)
@pytest.mark.parametrize(("n_img", "d", "tau"), [(1, 4, 0.2), (3, 2, 0.5), (6, 8, 0.1)])
def test_ccm_matches_loop(variant, aux, pattern, n_img, d, tau):
    gen = torch.Generator().manual_seed(11 * n_img + d)
    z, y, y_aux = make_z(n_img, d, gen), make_labels(n_img, pattern, gen), make_aux(n_img, aux, gen)
    alpha, beta = hyper(tau, gen)
    out = ccm(z, y, y_aux, tau=tau, alpha=alpha, beta=beta, variant=variant)
    ya = None if y_aux is None else y_aux.tolist()
    assert close(out, ref_ccm(z, y.tolist(), ya, tau, alpha, beta, variant))


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("mode", ["sample", "expected"])
@pytest.mark.parametrize("aux", AUX_PATTERNS)
@pytest.mark.parametrize("pattern", LABEL_PATTERNS)
@pytest.mark.parametrize(("n_img", "d", "tau"), [(1, 3, 0.2), (4, 2, 0.5), (7, 8, 0.1)])
def test_spa_matches_loop(variant, mode, aux, pattern, n_img, d, tau):
    gen = torch.Generator().manual_seed(13 * n_img + d)
    z, y, y_aux = make_z(n_img, d, gen), make_labels(n_img, pattern, gen), make_aux(n_img, aux, gen)
    alpha, beta = hyper(tau, gen)
    ya = None if y_aux is None else y_aux.tolist()
    kw = {"tau": tau, "alpha": alpha, "beta": beta, "variant": variant, "mode": mode}
    if mode == "sample":
        positives = sample_positives(spa_positive_mask(y, y_aux), gen)
        out = spa(z, y, y_aux, positives=positives, **kw)
    else:
        positives = None
        out = spa(z, y, y_aux, **kw)
    expected = ref_spa(z, y.tolist(), ya, tau, alpha, beta, mode, positives, variant)
    assert close(out, expected)


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("mode", ["sample", "expected"])
@pytest.mark.parametrize("aux", AUX_PATTERNS)
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_mcl_matches_loop(variant, mode, aux, lam):
    gen = torch.Generator().manual_seed(5)
    n_img, tau = 6, 0.2
    z, y, y_aux = (
        make_z(n_img, 6, gen),
        make_labels(n_img, "random", gen),
        make_aux(n_img, aux, gen),
    )
    alpha, beta = 0.05, 2.5
    positives = sample_positives(spa_positive_mask(y, y_aux), gen) if mode == "sample" else None
    kw = {"tau": tau, "alpha": alpha, "beta": beta, "lam": lam, "mode": mode, "variant": variant}
    terms = mcl_terms(z, y, y_aux, positives=positives, **kw)
    ya = None if y_aux is None else y_aux.tolist()
    ref_c = ref_ccm(z, y.tolist(), ya, tau, alpha, beta, variant)
    ref_s = ref_spa(z, y.tolist(), ya, tau, alpha, beta, mode, positives, variant)
    assert set(terms) == {"loss", "ccm", "spa"}
    assert close(terms["ccm"], ref_c) and close(terms["spa"], ref_s)
    assert close(terms["loss"], ref_c + lam * ref_s)  # Eq. 10
    assert close(mcl(z, y, y_aux, positives=positives, **kw), ref_c + lam * ref_s)


def test_medium_batch_float32_matches_loop():
    """Float32 inputs at a larger batch: the expected-mode swap keeps float32 accuracy."""
    gen = torch.Generator().manual_seed(3)
    n_img = 16
    z = make_z(n_img, 12, gen, dtype=torch.float32)
    y, y_aux = make_labels(n_img, "random", gen), make_aux(n_img, "per_view", gen)
    out = mcl_terms(z, y, y_aux, mode="expected")
    ya = y_aux.tolist()
    assert out["loss"].dtype == torch.float32
    assert close(out["ccm"], ref_ccm(z, y.tolist(), ya, 0.2, 0.05, 2.5), rtol=1e-5)
    assert close(out["spa"], ref_spa(z, y.tolist(), ya, 0.2, 0.05, 2.5, "expected"), rtol=1e-5)


@pytest.mark.parametrize("tau", [0.03, 0.1])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_float32_close_to_float64_with_extreme_similarities(tau, variant):
    """Views nearly identical, few images, small tau: the terms span many orders of magnitude."""
    gen = torch.Generator().manual_seed(20)
    for n_img in (2, 3):
        z = torch.randn(2 * n_img, 2, generator=gen, dtype=torch.float64)
        z[1::2] = z[0::2] + 0.01 * torch.randn(n_img, 2, generator=gen, dtype=torch.float64)
        y = torch.zeros(2 * n_img, dtype=torch.long)
        for alpha in (0.05, 1 / tau):
            kw = {"tau": tau, "alpha": alpha, "beta": alpha, "variant": variant}
            for mode in ("sample", "expected"):
                positives = (
                    sample_positives(spa_positive_mask(y), gen) if mode == "sample" else None
                )
                ref = mcl_terms(z, y, mode=mode, positives=positives, **kw)
                out = mcl_terms(z.float(), y, mode=mode, positives=positives, **kw)
                for key in ("ccm", "spa"):
                    torch.testing.assert_close(out[key].double(), ref[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_img", [1, 4])
@pytest.mark.parametrize("tau", [0.25, 0.5])
def test_mean_shifted_and_angular_match_loop(n_img, tau):
    gen = torch.Generator().manual_seed(n_img)
    z = make_z(n_img, 5, gen)
    center = torch.nn.functional.normalize(make_z(8, 5, gen), dim=1).mean(0)  # (d,)
    assert close(mean_shifted(z, center, tau), ref_mean_shifted(z, center, tau))
    assert close(angular_center(z, center), ref_angular_center(z, center))
    assert close(MeanShiftedLoss(tau)(z, center), ref_mean_shifted(z, center, tau))
    assert close(AngularCenterLoss()(z, center), ref_angular_center(z, center))


# --------------------------------------------------------------------------------------------
# Mask helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aux", AUX_PATTERNS)
@pytest.mark.parametrize("pattern", LABEL_PATTERNS)
def test_ccm_mask_and_positive_mask_match_definitions(aux, pattern):
    gen = torch.Generator().manual_seed(1)
    n_img, tau, alpha, beta = 5, 0.25, 0.3, 2.0
    y, y_aux = make_labels(n_img, pattern, gen), make_aux(n_img, aux, gen)
    yl = y.tolist()
    ya = None if y_aux is None else y_aux.tolist()
    mask = ccm_mask(y, y_aux, tau=tau, alpha=alpha, beta=beta)
    pos = spa_positive_mask(y, y_aux)
    assert mask.shape == pos.shape == (2 * n_img, 2 * n_img) and pos.dtype == torch.bool
    for i in range(2 * n_img):
        for k in range(2 * n_img):
            assert float(mask[i, k]) == pytest.approx(ref_ccm_value(yl, ya, i, k, tau, alpha, beta))
        assert pos[i].nonzero().flatten().tolist() == ref_positive_set(yl, ya, i)


def test_sample_positives_valid_uniform_and_minus_one():
    gen = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2])  # class 1 has a single image
    pos = spa_positive_mask(y)
    counts = torch.zeros(12, 12)
    draws = 3000
    for _ in range(draws):
        idx = sample_positives(pos, gen)
        assert idx.dtype == torch.int64 and idx.shape == (12,)
        assert idx[6] == -1 and idx[7] == -1
        valid = idx >= 0
        assert pos[torch.arange(12)[valid], idx[valid]].all()
        counts[torch.arange(12)[valid], idx[valid]] += 1
    freq = counts[0, 2:6] / draws  # view 0 has 4 positives, each ~ 1/4
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.04)
    with pytest.raises(ValueError, match="pos_mask"):
        sample_positives(pos.float())


# --------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aux", AUX_PATTERNS)
@pytest.mark.parametrize("tau", [0.2, 0.5])
def test_ccm_with_alpha_beta_inv_tau_is_nt_xent(aux, tau):
    gen = torch.Generator().manual_seed(2)
    z, y, y_aux = make_z(5, 7, gen), make_labels(5, "random", gen), make_aux(5, aux, gen)
    out = ccm(z, y, y_aux, tau=tau, alpha=1 / tau, beta=1 / tau)
    torch.testing.assert_close(out, nt_xent(z, tau))


def test_supcon_with_distinct_labels_is_nt_xent():
    gen = torch.Generator().manual_seed(4)
    z, y = make_z(6, 5, gen), make_labels(6, "distinct", gen)
    torch.testing.assert_close(supcon(z, y, 0.3), nt_xent(z, 0.3))


def test_spa_sample_mode_repeatable_and_matches_sample_positives():
    gen = torch.Generator().manual_seed(8)
    z, y, y_aux = make_z(8, 5, gen), make_labels(8, "random", gen), make_aux(8, "per_view", gen)
    a = spa(z, y, y_aux, generator=torch.Generator().manual_seed(42))
    b = spa(z, y, y_aux, generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, b)
    # the internal draw is the documented one: sample_positives on the Eq. 7 mask
    drawn = sample_positives(spa_positive_mask(y, y_aux), torch.Generator().manual_seed(42))
    torch.testing.assert_close(a, spa(z, y, y_aux, positives=drawn))
    draws = {float(spa(z, y, y_aux, generator=gen)) for _ in range(10)}
    assert len(draws) > 1  # and it does vary between draws


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_sample_mode_average_approaches_expected_mode(variant):
    gen = torch.Generator().manual_seed(9)
    z, y, y_aux = make_z(5, 4, gen), make_labels(5, "random", gen), make_aux(5, "per_view", gen)
    expected = float(spa(z, y, y_aux, mode="expected", variant=variant))
    samples = torch.tensor(
        [float(spa(z, y, y_aux, generator=gen, variant=variant)) for _ in range(200)]
    )
    err = abs(float(samples.mean()) - expected)
    assert err <= 4 * float(samples.std()) / math.sqrt(len(samples)) + 1e-9


def test_views_without_positive_contribute_zero():
    gen = torch.Generator().manual_seed(10)
    z = make_z(1, 4, gen).requires_grad_(True)  # N = 1: no other image, so no positive
    y = torch.tensor([3, 3])
    for mode in ("sample", "expected"):
        for variant in ("paper", "official"):
            out = spa(z, y, mode=mode, variant=variant)
            assert float(out.detach()) == 0.0
            (grad,) = torch.autograd.grad(out, z)
            assert torch.equal(grad, torch.zeros_like(z))
    out = mcl(z, y)  # only the CCM term is left
    torch.testing.assert_close(out, ccm(z, y))
    out.backward()
    assert torch.isfinite(z.grad).all()
    # explicit -1 everywhere also gives 0
    z2, y2 = make_z(3, 4, gen), make_labels(3, "all_one", gen)
    assert float(spa(z2, y2, positives=torch.full((6,), -1))) == 0.0


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def _gradcheck(fn, z):
    assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradcheck_mcl_family(variant):
    gen = torch.Generator().manual_seed(12)
    z = make_z(3, 4, gen).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    y_aux = torch.tensor([0, 0, 0, 1, 1, 0])
    positives = torch.tensor([2, 2, 0, -1, -1, -1])
    kw = {"tau": 0.5, "alpha": 0.3, "beta": 1.2, "variant": variant}
    _gradcheck(lambda t: ccm(t, y, y_aux, **kw), z)
    _gradcheck(lambda t: spa(t, y, y_aux, positives=positives, **kw), z)
    _gradcheck(lambda t: spa(t, y, mode="expected", **kw), z)
    _gradcheck(lambda t: mcl(t, y, y_aux, lam=0.7, positives=positives, **kw), z)
    _gradcheck(lambda t: mcl(t, y, y_aux, lam=0.7, mode="expected", **kw), z)


def test_gradcheck_baselines():
    gen = torch.Generator().manual_seed(13)
    z = make_z(3, 4, gen).requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 0, 0])
    center = torch.nn.functional.normalize(make_z(4, 4, gen), dim=1).mean(0)
    _gradcheck(lambda t: nt_xent(t, 0.3), z)
    _gradcheck(lambda t: supcon(t, y, 0.3), z)
    _gradcheck(lambda t: mean_shifted(t, center), z)
    _gradcheck(lambda t: angular_center(t, center), z)


@pytest.mark.parametrize("mode", ["sample", "expected"])
def test_gradients_finite_at_realistic_size(mode):
    gen = torch.Generator().manual_seed(14)
    z = torch.randn(256, 32, generator=gen).requires_grad_(True)
    y = torch.randint(0, 10, (128,), generator=gen).repeat_interleave(2)
    y_aux = torch.randint(0, 4, (256,), generator=gen)
    for variant in ("paper", "official"):
        z.grad = None
        mcl(z, y, y_aux, mode=mode, generator=gen, variant=variant).backward()
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# Numerical stability and precision
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_computed_in_float32(dtype):
    gen = torch.Generator().manual_seed(15)
    z32 = torch.randn(64, 16, generator=gen) * 30
    y = torch.randint(0, 3, (32,), generator=gen).repeat_interleave(2)
    y_aux = torch.randint(0, 4, (64,), generator=gen)
    z = z32.to(dtype).requires_grad_(True)
    tau = 0.05
    for fn in (
        lambda t: nt_xent(t, tau),
        lambda t: supcon(t, y, tau),
        lambda t: mcl(t, y, y_aux, tau=tau, alpha=1 / tau, beta=1 / tau, mode="expected"),
        lambda t: mcl(t, y, y_aux, tau=tau, alpha=0.05, beta=10.0, generator=gen),
    ):
        out = fn(z)
        assert out.dtype == torch.float32 and torch.isfinite(out)
        (grad,) = torch.autograd.grad(out, z)
        assert grad.dtype == dtype and torch.isfinite(grad.float()).all()
    ref = mcl(z.detach().float(), y, y_aux, mode="expected")
    torch.testing.assert_close(mcl(z.detach(), y, y_aux, mode="expected"), ref)


def test_autocast_does_not_lower_loss_precision():
    gen = torch.Generator().manual_seed(16)
    z = torch.randn(32, 8, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen).repeat_interleave(2)
    ref = mcl(z, y, mode="expected")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mcl(z, y, mode="expected")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


def test_extreme_inputs_stay_finite():
    gen = torch.Generator().manual_seed(17)
    z = torch.randn(16, 4, generator=gen) * 1e4
    z[3] = 0.0  # a zero feature row: cosine 0 with everything
    z[5] = z[4] * 1e-3  # identical directions
    y = torch.tensor([0] * 8 + [1] * 8)
    z.requires_grad_(True)
    for tau in (0.01, 1.0):
        for mode in ("sample", "expected"):
            out = mcl(z, y, tau=tau, alpha=1 / tau, beta=1 / tau, mode=mode, generator=gen)
            (grad,) = torch.autograd.grad(out, z)
            assert torch.isfinite(out) and torch.isfinite(grad).all()


def test_device_and_dtype_follow_input():
    gen = torch.Generator().manual_seed(18)
    z = make_z(3, 4, gen)
    y = make_labels(3, "random", gen)
    for fn in (nt_xent, lambda t: supcon(t, y), lambda t: mcl(t, y), lambda t: ccm(t, y)):
        out = fn(z)
        assert out.dtype == torch.float64 and out.device == z.device


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

GOOD_Z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
GOOD_Y = torch.tensor([0, 0, 1, 1, 0, 0])


@pytest.mark.parametrize("fn", [ccm, spa, mcl, mcl_terms])
@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"y": torch.tensor([0, 0, 1, 1])}, "y"),  # mismatched length
        ({"y": GOOD_Y.float()}, "y"),  # non-integer labels
        ({"y": torch.tensor([0, 1, 1, 1, 0, 0])}, "y"),  # views of one image disagree
        ({"y_aux": torch.tensor([0, 1, 0])}, "y_aux"),
        ({"y_aux": torch.zeros(6)}, "y_aux"),
        ({"z": GOOD_Z[:5]}, "z"),  # odd 2N
        ({"z": GOOD_Z[0]}, "z"),  # not 2-D
        ({"z": GOOD_Z.long()}, "z"),
        ({"tau": 0.0}, "tau"),
        ({"tau": -0.2}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 5.5}, "alpha"),  # > 1/tau = 5
        ({"beta": -1.0}, "beta"),
        ({"beta": 6.0}, "beta"),
        ({"variant": "authors"}, "variant"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(fn, kwargs, arg):
    call = {"z": GOOD_Z, "y": GOOD_Y, "y_aux": None, **kwargs}
    z, y, y_aux = call.pop("z"), call.pop("y"), call.pop("y_aux")
    with pytest.raises(ValueError, match=arg):
        fn(z, y, y_aux, **call)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_z_raises(bad):
    z = GOOD_Z.clone()
    z[2, 1] = bad
    for fn in (nt_xent, lambda t: supcon(t, GOOD_Y), lambda t: mcl(t, GOOD_Y)):
        with pytest.raises(ValueError, match="z contains NaN or inf"):
            fn(z)
    with pytest.raises(ValueError, match="z contains NaN or inf"):
        mean_shifted(z, torch.zeros(4))


def test_bad_spa_options_raise():
    with pytest.raises(ValueError, match="mode"):
        spa(GOOD_Z, GOOD_Y, mode="mean")
    with pytest.raises(ValueError, match="mode"):
        mcl(GOOD_Z, GOOD_Y, mode="mean")
    with pytest.raises(ValueError, match="positives"):
        spa(GOOD_Z, GOOD_Y, mode="expected", positives=torch.full((6,), -1))
    with pytest.raises(ValueError, match="positives"):  # view 2 is the sibling of view 3
        spa(GOOD_Z, GOOD_Y, positives=torch.tensor([4, 4, -1, 2, 0, 0]))
    with pytest.raises(ValueError, match="positives"):  # different label
        spa(GOOD_Z, GOOD_Y, positives=torch.tensor([2, -1, -1, -1, -1, -1]))
    with pytest.raises(ValueError, match="positives"):
        spa(GOOD_Z, GOOD_Y, positives=torch.tensor([4, 4, -1, -1, 0]))
    with pytest.raises(ValueError, match="positives"):
        spa(GOOD_Z, GOOD_Y, positives=torch.tensor([9, 4, -1, -1, 0, 0]))
    with pytest.raises(ValueError, match="lam"):
        mcl(GOOD_Z, GOOD_Y, lam=-1.0)
    with pytest.raises(TypeError, match="unknown"):
        mcl(GOOD_Z, GOOD_Y, temperature=0.1)


def test_bad_input_other_functions():
    with pytest.raises(ValueError, match="tau"):
        nt_xent(GOOD_Z, tau=0)
    with pytest.raises(ValueError, match="y"):
        supcon(GOOD_Z, GOOD_Y[:4])
    with pytest.raises(ValueError, match="center"):
        mean_shifted(GOOD_Z, torch.zeros(3))
    with pytest.raises(ValueError, match="center"):
        angular_center(GOOD_Z, torch.full((4,), float("nan")))
    with pytest.raises(ValueError, match="alpha"):
        ccm_mask(GOOD_Y, tau=0.2, alpha=9.0)
    with pytest.raises(ValueError, match="y"):
        spa_positive_mask(GOOD_Y[:5])
    with pytest.raises(ValueError, match="y_aux"):
        spa_positive_mask(GOOD_Y, torch.zeros(6))


# --------------------------------------------------------------------------------------------
# Module wrappers
# --------------------------------------------------------------------------------------------


def test_modules_check_hyperparameters_and_call_functions():
    gen = torch.Generator().manual_seed(19)
    z, y, y_aux = make_z(4, 5, gen), make_labels(4, "random", gen), make_aux(4, "per_view", gen)
    positives = sample_positives(spa_positive_mask(y, y_aux), gen)
    loss = MCLLoss(tau=0.2, alpha=0.05, beta=2.5, lam=0.5, mode="sample")
    assert "lam=0.5" in repr(loss)
    torch.testing.assert_close(
        loss(z, y, y_aux, positives=positives), mcl(z, y, y_aux, lam=0.5, positives=positives)
    )
    assert set(loss.terms(z, y, y_aux, positives=positives)) == {"loss", "ccm", "spa"}
    torch.testing.assert_close(
        MCLLoss(mode="expected")(z, y, y_aux), mcl(z, y, y_aux, mode="expected")
    )
    torch.testing.assert_close(CCMLoss(variant="official")(z, y), ccm(z, y, variant="official"))
    torch.testing.assert_close(
        SPALoss(mode="expected")(z, y, y_aux), spa(z, y, y_aux, mode="expected")
    )
    torch.testing.assert_close(NTXentLoss(0.3)(z), nt_xent(z, 0.3))
    torch.testing.assert_close(SupConLoss(0.3)(z, y), supcon(z, y, 0.3))
    for bad, arg in [
        ({"tau": 0}, "tau"),
        ({"alpha": 10.0}, "alpha"),
        ({"beta": 0.0}, "beta"),
        ({"lam": -0.1}, "lam"),
        ({"mode": "all"}, "mode"),
        ({"variant": "x"}, "variant"),
    ]:
        with pytest.raises(ValueError, match=arg):
            MCLLoss(**bad)
    with pytest.raises(ValueError, match="tau"):
        NTXentLoss(-1.0)
    with pytest.raises(ValueError, match="beta"):
        CCMLoss(tau=0.5)  # default beta = 2.5 > 1/tau = 2
    with pytest.raises(ValueError, match="mode"):
        SPALoss(mode="x")
    with pytest.raises(ValueError, match="tau"):
        MeanShiftedLoss(0.0)


def test_docstring_examples_run():
    import doctest

    import mclviz.losses

    assert doctest.testmod(mclviz.losses, raise_on_error=False).failed == 0
