"""Tests for mclviz.losses.ccm_loss: L_ccm (Eq. 3-6, Eq. 11) against its slow twin."""

from __future__ import annotations

import pytest
import torch
from loss_reference import (
    AUX_PATTERNS,
    LABEL_PATTERNS,
    assert_gradcheck,
    close,
    hyper,
    make_aux,
    make_labels,
    make_z,
    ref_ccm,
)

from mclviz.losses import CCMLoss, ccm, nt_xent


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


@pytest.mark.parametrize("aux", AUX_PATTERNS)
@pytest.mark.parametrize("tau", [0.2, 0.5])
def test_ccm_with_alpha_beta_inv_tau_is_nt_xent(aux, tau):
    gen = torch.Generator().manual_seed(2)
    z, y, y_aux = make_z(5, 7, gen), make_labels(5, "random", gen), make_aux(5, aux, gen)
    out = ccm(z, y, y_aux, tau=tau, alpha=1 / tau, beta=1 / tau)
    torch.testing.assert_close(out, nt_xent(z, tau))


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradcheck_ccm(variant):
    gen = torch.Generator().manual_seed(12)
    z = make_z(3, 4, gen).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    y_aux = torch.tensor([0, 0, 0, 1, 1, 0])
    kw = {"tau": 0.5, "alpha": 0.3, "beta": 1.2, "variant": variant}
    assert_gradcheck(lambda t: ccm(t, y, y_aux, **kw), z)


def test_ccm_module_checks_hyperparameters_and_calls_function():
    gen = torch.Generator().manual_seed(19)
    z, y = make_z(4, 5, gen), make_labels(4, "random", gen)
    torch.testing.assert_close(CCMLoss(variant="official")(z, y), ccm(z, y, variant="official"))
    with pytest.raises(ValueError, match="beta"):
        CCMLoss(tau=0.5)  # default beta = 2.5 > 1/tau = 2
