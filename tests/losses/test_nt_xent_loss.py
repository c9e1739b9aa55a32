"""Tests for mclviz.losses.nt_xent_loss: NT-Xent (Eq. 1-2) against its slow twin."""

from __future__ import annotations

import pytest
import torch
from loss_reference import GOOD_Z, assert_gradcheck, close, make_z, ref_nt_xent

from mclviz.losses import NTXentLoss, nt_xent


@pytest.mark.parametrize("n_img", [1, 2, 5])
@pytest.mark.parametrize("d", [1, 3, 16])
@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_nt_xent_matches_loop(n_img, d, tau):
    gen = torch.Generator().manual_seed(100 * n_img + d)
    z = make_z(n_img, d, gen)
    out = nt_xent(z, tau)
    assert out.dtype == torch.float64 and out.shape == ()
    assert close(out, ref_nt_xent(z, tau))


def test_gradcheck_nt_xent():
    gen = torch.Generator().manual_seed(13)
    z = make_z(3, 4, gen).requires_grad_(True)
    assert_gradcheck(lambda t: nt_xent(t, 0.3), z)


def test_nt_xent_module_checks_tau_and_calls_function():
    gen = torch.Generator().manual_seed(19)
    z = make_z(4, 5, gen)
    torch.testing.assert_close(NTXentLoss(0.3)(z), nt_xent(z, 0.3))
    with pytest.raises(ValueError, match="tau"):
        NTXentLoss(-1.0)


def test_nt_xent_bad_tau_raises():
    with pytest.raises(ValueError, match="tau"):
        nt_xent(GOOD_Z, tau=0)
