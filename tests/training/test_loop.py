"""Tests for mclviz.training.loop: ``optimize``, the one loop of full and head-only training.

A linear least-squares model with fixed batches per step: the loop's schedule, epoch means,
callbacks, saves, early stop and restart are checked against plain Python bookkeeping.
"""

import pytest
import torch

from mclviz.training import LoopState, optimize


def _problem(steps_per_epoch=3):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(steps_per_epoch, 8, 4, generator=g)
    ys = torch.randn(steps_per_epoch, 8, 1, generator=g)

    def step_terms(step):
        i = step % steps_per_epoch  # the batch is a function of the step alone
        err = model(xs[i]) - ys[i]
        mse = err.square().mean()
        return {"loss": mse, "mae": err.abs().mean().detach()}

    return model, step_terms


def _lr(step):
    return 0.1 / (1 + step)


def test_lr_epoch_means_and_callbacks_follow_the_steps():
    model, step_terms = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    events = []
    state, stopped = optimize(
        step_terms,
        opt,
        total_steps=6,
        steps_per_epoch=3,
        lr=_lr,
        callbacks=[events.append],
        progress=False,
    )
    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert not stopped and state.step == 6
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
    assert [e["lr"] for e in steps] == pytest.approx([_lr(s) for s in range(6)])
    assert [e["epoch"] for e in steps] == [0, 0, 0, 1, 1, 1]
    assert len(epochs) == len(state.history) == 2
    for k, row in enumerate(state.history):  # the mean of the epoch's step terms
        block = steps[3 * k : 3 * k + 3]
        assert row["epoch"] == k + 1 and row["step"] == 3 * (k + 1)
        for term in ("loss", "mae"):
            assert row[term] == pytest.approx(sum(e[term] for e in block) / 3)
    assert state.partial == {"sums": {}, "count": 0}


def test_the_update_is_plain_sgd_at_the_scheduled_rate():
    model, step_terms = _problem()
    ref, ref_terms = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    optimize(step_terms, opt, total_steps=4, steps_per_epoch=3, lr=_lr, progress=False)
    for s in range(4):  # the same steps by hand
        ref.zero_grad()
        ref_terms(s)["loss"].backward()
        with torch.no_grad():
            for p in ref.parameters():
                p -= _lr(s) * p.grad
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_saves_early_stop_and_restart_continue_the_run():
    saves = []
    model, step_terms = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    calls = {"n": 0}

    def stop_after_four():
        calls["n"] += 1
        return calls["n"] == 4

    events = []
    state, stopped = optimize(
        step_terms,
        opt,
        total_steps=9,
        steps_per_epoch=3,
        lr=_lr,
        save=saves.append,
        save_every=2,
        callbacks=[events.append],
        should_stop=stop_after_four,
        progress=False,
    )
    # saves: step 2 (every 2), 3 (epoch end), 4 (every 2 and the stop), epochs done each time
    assert stopped and state.step == 4 and saves == [0, 1, 1]
    partial = [e for e in events if e["kind"] == "epoch"][-1]
    assert partial["epoch"] == pytest.approx(1 + 1 / 3)  # a third of the second epoch
    assert state.partial["count"] == 1 and len(state.history) == 1
    state, stopped = optimize(
        step_terms, opt, total_steps=9, steps_per_epoch=3, lr=_lr, state=state, progress=False
    )
    ref_model, ref_terms = _problem()
    ref_state, _ = optimize(
        ref_terms,
        torch.optim.SGD(ref_model.parameters(), lr=1.0),
        total_steps=9,
        steps_per_epoch=3,
        lr=_lr,
        progress=False,
    )
    assert not stopped and state.step == 9
    assert state.history == ref_state.history  # the epoch means continued across the stop
    for a, b in zip(model.parameters(), ref_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_non_finite_loss_saves_then_raises():
    model, _ = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    saves = []

    def step_terms(step):
        loss = model(torch.ones(1, 4)).sum()
        return {"loss": loss * (float("nan") if step == 2 else 1.0)}

    with pytest.raises(
        FloatingPointError,
        match=r"loss became nan at step 2 \(lr=0.03333\); the last good state is saved",
    ):
        optimize(
            step_terms,
            opt,
            total_steps=5,
            steps_per_epoch=5,
            lr=_lr,
            save=saves.append,
            progress=False,
        )
    assert saves == [0]


def test_nothing_to_do_when_the_run_is_complete():
    model, step_terms = _problem()
    state, stopped = optimize(
        step_terms,
        torch.optim.SGD(model.parameters(), lr=1.0),
        total_steps=3,
        steps_per_epoch=3,
        lr=_lr,
        state=LoopState(step=3),
        progress=False,
    )
    assert state.step == 3 and not stopped and state.history == []
