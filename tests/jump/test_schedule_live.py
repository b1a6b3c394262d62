"""The schedule through a live GFMJump: planned end, past-the-end targets, step units, max_jumps, resume offsets."""

import pytest
import torch
from torch import nn

from gfm_accel.forecast.simple import LastValueForecaster, LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump
from gfm_accel.params import flatten_params

from _jump_helpers import Quadratic, digits, mlp, train_epoch


def _snap(model):
    return flatten_params(model).clone()


def test_no_periodic_jump_at_the_planned_end():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), n=2, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=2, every=2).attach(model, opt, total=6)
    for epoch in range(6):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    assert [r.step for r in jump.history] == [2, 4]  # not 6: the run ends there


@pytest.mark.parametrize("past_end, steps", [(False, [2, 4]), (True, [2, 4, 6])])
def test_periodic_jump_whose_target_lies_past_the_end_is_skipped(past_end, steps):
    # n=2, K=3, total=8 epochs: the jump due after epoch 6 would target epoch 9 > 8.
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), n=2, horizon=3, jump_past_end=past_end, unit="epoch", tolerance=0.01, optimizer_state="reset", every=2).attach(model, opt, total=8)
    for epoch in range(8):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    assert [r.step for r in jump.history] == steps


def test_step_unit_target_past_the_end_counts_in_steps():
    # snapshots every 2 steps, n=2, K=3 (6 steps ahead), total=12 steps: due at steps 4 and 8;
    # step 8's target (14) lies past 12, so only step 4 jumps.
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), unit="step", every_n_steps=2, n=2, horizon=3, tolerance=0.01, optimizer_state="reset", every=2).attach(model, opt, total=12)
    for step in range(12):
        loss = nn.functional.cross_entropy(model(x[:32]), y[:32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        jump.on_step_end()
    assert [r.step for r in jump.history] == [4]


def test_periodic_every_and_max_jumps():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), n=2, every=3, max_jumps=2, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=2).attach(model, opt)
    for epoch in range(12):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    assert [r.step for r in jump.history] == [3, 6]


def test_step_unit_far_target_from_total_steps():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="step", every_n_steps=3, tolerance=0.01, optimizer_state="reset")
    jump.attach(model, opt, total=30)
    step = 0
    for epoch in range(3):
        for i in range(0, 128, 32):
            loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
            opt.zero_grad(); loss.backward(); opt.step()
            step += 1
            jump.on_step_end(step)
        assert jump.on_epoch_end(epoch) is None
    assert [(r.step, r.n, r.m) for r in jump.history] == [(6, 2, 10)]
    assert jump.recorder.steps == [0, 3, 6]


def test_repeated_epoch_index_is_ignored():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), n=2, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=2, every=2).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    jump.on_epoch_end(0)
    assert jump.recorder.steps == [0, 1]


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_attach_mid_run_with_start(unit):
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    if unit == "epoch":
        jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset").attach(model, opt, total=10, start=3)
        for epoch in range(3, 6):
            train_epoch(model, opt, x, y, epoch)
            jump.on_epoch_end(epoch)
        assert jump.recorder.steps == [3, 4, 5]
        assert [(r.step, r.m) for r in jump.history] == [(5, 7)]  # m counted from w_0 at epoch 3
    else:
        jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="step", every_n_steps=4, tolerance=0.01, optimizer_state="reset")
        jump.attach(model, opt, total=50, start=10)
        for step in range(11, 19):
            jump.on_step_end(step)
        assert jump.recorder.steps == [10, 14, 18]
        assert [(r.step, r.m) for r in jump.history] == [(18, 10)]  # (50 - 10) // 4
    with pytest.raises(ValueError, match="start=12 is not before the planned end total=10"):
        GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset").attach(mlp(), total=10, start=12)


def test_linear_horizon_decay_over_a_run():
    # A jump after every step (n=1, P=1) of a 20-epoch run, K decaying from 10 to 1:
    # K_c = 1 + round_half_up(9 (20 - c) / 20) at counter c = 1 .. 19 (c=10: 1 + 4.5 -> 6).
    model = Quadratic()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    jump = GFMJump(LinearExtrapolationForecaster(), mode="periodic", n=1, horizon=10, every=1, unit="epoch",
                   guard=False, horizon_decay="linear", horizon_min=1).attach(model, opt, total=20)
    for epoch in range(20):
        model.sgd_step(opt)
        before = model.w.detach().clone()
        window = jump.recorder.weights()[-1].clone()
        rec = jump.on_epoch_end(epoch)
        if rec is not None and epoch == 9:  # K = 6: the jump lands at w_n + 6 (w_n - w_{n-1})
            torch.testing.assert_close(model.w.detach(), before + 6 * (before - window), rtol=0, atol=1e-6)
    ks = [r.horizon for r in jump.history]
    assert ks == [10, 9, 9, 8, 8, 7, 7, 6, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1]
    assert [r.step for r in jump.history] == list(range(1, 20)) and all(r.accepted for r in jump.history)
    assert all(r.m == r.n + r.horizon for r in jump.history)


def test_horizon_decay_needs_total_at_attach():
    with pytest.raises(ValueError, match=r"horizon_decay='linear' needs the planned run length: attach\(\.\.\., total="):
        GFMJump(LastValueForecaster(), horizon_decay="linear", unit="epoch").attach(Quadratic())
