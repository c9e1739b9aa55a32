"""Tests for mclviz.losses.mean_shifted_loss: the mean-shifted and angular center losses."""

from __future__ import annotations

import pytest
import torch
from loss_reference import (
    GOOD_Z,
    assert_gradcheck,
    close,
    make_z,
    ref_angular_center,
    ref_mean_shifted,
)

from mclviz.losses import AngularCenterLoss, MeanShiftedLoss, angular_center, mean_shifted


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


def test_gradcheck_mean_shifted_and_angular_center():
    gen = torch.Generator().manual_seed(13)
    z = make_z(3, 4, gen).requires_grad_(True)
    center = torch.nn.functional.normalize(make_z(4, 4, gen), dim=1).mean(0)
    assert_gradcheck(lambda t: mean_shifted(t, center), z)
    assert_gradcheck(lambda t: angular_center(t, center), z)


def test_bad_center_and_tau_raise():
    with pytest.raises(ValueError, match="center"):
        mean_shifted(GOOD_Z, torch.zeros(3))
    with pytest.raises(ValueError, match="center"):
        angular_center(GOOD_Z, torch.full((4,), float("nan")))
    with pytest.raises(ValueError, match="tau"):
        MeanShiftedLoss(0.0)
