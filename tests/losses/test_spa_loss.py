"""Tests for mclviz.losses.spa_loss: SPA (Eq. 7-10) against its slow twin."""

from __future__ import annotations

import math

import pytest
import torch
from loss_reference import (
    AUX_PATTERNS,
    GOOD_Y,
    GOOD_Z,
    LABEL_PATTERNS,
    assert_gradcheck,
    close,
    hyper,
    make_aux,
    make_labels,
    make_z,
    ref_spa,
)

from mclviz.losses import SPALoss, sample_positives, spa, spa_positive_mask


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
    # explicit -1 everywhere also gives 0
    z2, y2 = make_z(3, 4, gen), make_labels(3, "all_one", gen)
    assert float(spa(z2, y2, positives=torch.full((6,), -1))) == 0.0


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradcheck_spa(variant):
    gen = torch.Generator().manual_seed(12)
    z = make_z(3, 4, gen).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    y_aux = torch.tensor([0, 0, 0, 1, 1, 0])
    positives = torch.tensor([2, 2, 0, -1, -1, -1])
    kw = {"tau": 0.5, "alpha": 0.3, "beta": 1.2, "variant": variant}
    assert_gradcheck(lambda t: spa(t, y, y_aux, positives=positives, **kw), z)
    assert_gradcheck(lambda t: spa(t, y, mode="expected", **kw), z)


def test_bad_spa_options_raise():
    with pytest.raises(ValueError, match="mode"):
        spa(GOOD_Z, GOOD_Y, mode="mean")
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


def test_spa_module_checks_mode_and_calls_function():
    gen = torch.Generator().manual_seed(19)
    z, y, y_aux = make_z(4, 5, gen), make_labels(4, "random", gen), make_aux(4, "per_view", gen)
    torch.testing.assert_close(
        SPALoss(mode="expected")(z, y, y_aux), spa(z, y, y_aux, mode="expected")
    )
    with pytest.raises(ValueError, match="mode"):
        SPALoss(mode="x")
