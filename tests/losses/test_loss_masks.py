"""Tests for mclviz.losses.masks: the CCM mask (Eq. 3, 11) and the SPA positives (Eq. 7, 9)."""

from __future__ import annotations

import pytest
import torch
from loss_reference import (
    AUX_PATTERNS,
    GOOD_Y,
    LABEL_PATTERNS,
    make_aux,
    make_labels,
    ref_ccm_value,
    ref_positive_set,
)

from mclviz.losses import ccm_mask, sample_positives, spa_positive_mask


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


def test_mask_helpers_bad_input_raise():
    with pytest.raises(ValueError, match="alpha"):
        ccm_mask(GOOD_Y, tau=0.2, alpha=9.0)
    with pytest.raises(ValueError, match="y"):
        spa_positive_mask(GOOD_Y[:5])
    with pytest.raises(ValueError, match="y_aux"):
        spa_positive_mask(GOOD_Y, torch.zeros(6))
