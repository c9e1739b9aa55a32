"""Tests for mclviz.losses.mcl_loss: the MCL loss (Eq. 10) and its terms against the slow twins."""

from __future__ import annotations

import pytest
import torch
from loss_reference import (
    AUX_PATTERNS,
    GOOD_Y,
    GOOD_Z,
    assert_gradcheck,
    close,
    make_aux,
    make_labels,
    make_z,
    ref_ccm,
    ref_spa,
)

from mclviz.losses import MCLLoss, ccm, mcl, mcl_terms, sample_positives, spa_positive_mask


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


def test_mcl_without_positive_is_ccm():
    gen = torch.Generator().manual_seed(10)
    z = make_z(1, 4, gen).requires_grad_(True)  # N = 1: no other image, so no positive
    y = torch.tensor([3, 3])
    out = mcl(z, y)  # only the CCM term is left
    torch.testing.assert_close(out, ccm(z, y))
    out.backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradcheck_mcl(variant):
    gen = torch.Generator().manual_seed(12)
    z = make_z(3, 4, gen).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    y_aux = torch.tensor([0, 0, 0, 1, 1, 0])
    positives = torch.tensor([2, 2, 0, -1, -1, -1])
    kw = {"tau": 0.5, "alpha": 0.3, "beta": 1.2, "variant": variant}
    assert_gradcheck(lambda t: mcl(t, y, y_aux, lam=0.7, positives=positives, **kw), z)
    assert_gradcheck(lambda t: mcl(t, y, y_aux, lam=0.7, mode="expected", **kw), z)


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


def test_bad_mcl_options_raise():
    with pytest.raises(ValueError, match="mode"):
        mcl(GOOD_Z, GOOD_Y, mode="mean")
    with pytest.raises(ValueError, match="lam"):
        mcl(GOOD_Z, GOOD_Y, lam=-1.0)
    with pytest.raises(TypeError, match="unknown"):
        mcl(GOOD_Z, GOOD_Y, temperature=0.1)


def test_mcl_module_checks_hyperparameters_and_calls_function():
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
