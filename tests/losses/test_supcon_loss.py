"""Tests for mclviz.losses.supcon_loss: SupCon L_out against its slow twin."""

from __future__ import annotations

import pytest
import torch
from loss_reference import (
    GOOD_Y,
    GOOD_Z,
    LABEL_PATTERNS,
    assert_gradcheck,
    close,
    make_labels,
    make_z,
    ref_supcon,
)

from mclviz.losses import SupConLoss, nt_xent, supcon


@pytest.mark.parametrize("pattern", LABEL_PATTERNS)
@pytest.mark.parametrize("n_img", [1, 3, 6])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_supcon_matches_loop(pattern, n_img, tau):
    gen = torch.Generator().manual_seed(7 * n_img)
    z, y = make_z(n_img, 5, gen), make_labels(n_img, pattern, gen)
    assert close(supcon(z, y, tau), ref_supcon(z, y.tolist(), tau))


def test_supcon_with_distinct_labels_is_nt_xent():
    gen = torch.Generator().manual_seed(4)
    z, y = make_z(6, 5, gen), make_labels(6, "distinct", gen)
    torch.testing.assert_close(supcon(z, y, 0.3), nt_xent(z, 0.3))


def test_gradcheck_supcon():
    gen = torch.Generator().manual_seed(13)
    z = make_z(3, 4, gen).requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 0, 0])
    assert_gradcheck(lambda t: supcon(t, y, 0.3), z)


def test_supcon_module_calls_function():
    gen = torch.Generator().manual_seed(19)
    z, y = make_z(4, 5, gen), make_labels(4, "random", gen)
    torch.testing.assert_close(SupConLoss(0.3)(z, y), supcon(z, y, 0.3))


def test_supcon_bad_labels_raise():
    with pytest.raises(ValueError, match="y"):
        supcon(GOOD_Z, GOOD_Y[:4])
