"""Tests for mclviz.training.schedule: the learning-rate schedules and the weight average."""

import math

import pytest
import torch

from mclviz.training import WeightAverage, lr_at


def test_cosine_schedule():
    assert lr_at(0, 100, 1.2) == pytest.approx(1.2)
    assert lr_at(50, 100, 1.2) == pytest.approx(0.6)
    assert lr_at(100, 100, 1.2) == pytest.approx(0.0)
    assert lr_at(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
@pytest.mark.parametrize("total, warmup", [(10, 0), (20, 5), (7, 7)])
def test_schedules_match_their_formula(schedule, total, warmup):
    """Warm-up: base * (s + 1) / warmup; then t = (s - warmup) / (total - warmup) and
    base * (1 + cos(pi t)) / 2 (cosine, the paper) or base * (1 - t) (linear)."""
    base = 0.4
    for s in range(total + 1):
        if s < warmup:
            expected = base * (s + 1) / warmup
        else:
            t = min(1.0, (s - warmup) / max(1, total - warmup))
            expected = (
                base * (1 - t) if schedule == "linear" else base * (1 + math.cos(math.pi * t)) / 2
            )
        assert lr_at(s, total, base, warmup, schedule) == pytest.approx(expected), s
    if warmup:  # the warm-up ends at the base rate
        assert lr_at(warmup - 1, total, base, warmup, schedule) == pytest.approx(base)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.99])
def test_weight_average_matches_a_slow_loop(decay):
    """The first update copies the weights; update t >= 1 does
    a <- a + (w_t - a) (1 - d_t), d_t = min(decay, (1 + t) / (10 + t)), for every parameter
    and floating-point buffer (batch-norm statistics); integer buffers are copied."""
    net = _net()
    avg = WeightAverage(net, decay)
    ref = None
    g = torch.Generator().manual_seed(1)
    for t in range(12):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=g))
        net.train()(torch.randn(8, 3, generator=g))  # moves the running statistics
        current = {k: v.detach().clone().double() for k, v in net.state_dict().items()}
        if ref is None:
            ref = current
        else:
            d = min(decay, (1.0 + t) / (10.0 + t))
            ref = {
                k: (current[k] if "num_batches" in k else ref[k] + (current[k] - ref[k]) * (1 - d))
                for k in ref
            }
        avg.update_parameters(net)
    got = avg.module.state_dict()
    assert int(avg.n_averaged) == 12
    for k, v in ref.items():
        torch.testing.assert_close(got[k].double(), v, rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_weight_average_decay_is_checked(decay):
    with pytest.raises(ValueError, match=rf"decay={decay!r} must lie in \(0, 1\)"):
        WeightAverage(_net(), decay)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="schedule='step': choose 'cosine' or 'linear'"):
        lr_at(0, 10, 0.1, schedule="step")
