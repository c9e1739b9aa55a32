"""Tests for mclviz.losses._common, through the public losses.

Precision (half-precision inputs, autocast), extreme inputs, device and dtype.
"""

from __future__ import annotations

import pytest
import torch
from loss_reference import make_labels, make_z

from mclviz.losses import ccm, mcl, nt_xent, supcon


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
