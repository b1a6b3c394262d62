"""Tests of gfm_accel.jump.lr: the simulated future of a scheduler and the window's summed learning rates."""

from __future__ import annotations

import json

import pytest
import torch

from gfm_accel.jump.lr import LRWindow, can_simulate, future_lr_profile, future_lr_ratio, future_lrs


def _opt(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=lr, momentum=0.9)


def _advance(opt, sched, steps: int) -> None:
    for _ in range(steps):
        opt.step()
        sched.step()


def test_future_lrs_read_a_copy_of_the_schedule_and_leave_everything_untouched():
    opt = _opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    _advance(opt, sched, 2)  # the next step is the third: lr 0.1, then 0.05 x 3, then 0.025
    rng = torch.get_rng_state()
    rates = future_lrs(sched, 5)
    assert rates == pytest.approx([0.1, 0.05, 0.05, 0.05, 0.025], rel=1e-12)
    assert sched.last_epoch == 2 and opt.param_groups[0]["lr"] == 0.1 and sched.get_last_lr() == [0.1]
    assert torch.equal(torch.get_rng_state(), rng)
    # future_lr_ratio is the same simulation: the mean over the current rate.
    assert future_lr_ratio(sched, 5) == pytest.approx(sum(rates) / (5 * 0.1), rel=1e-12)
    assert can_simulate(sched) and not can_simulate(torch.optim.lr_scheduler.ReduceLROnPlateau(opt))
    assert future_lrs(torch.optim.lr_scheduler.ReduceLROnPlateau(opt), 3) is None


def test_future_profile_sums_blocks_of_scheduler_steps():
    opt = _opt(1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / 100)
    _advance(opt, sched, 4)  # the next step's rate is 0.96
    # 3 snapshot intervals of 2 scheduler (= optimizer) steps each: plain sums of 2 rates.
    got = future_lr_profile(sched, 3, 2, scale=2)
    want = torch.tensor([0.96 + 0.95, 0.94 + 0.93, 0.92 + 0.91], dtype=torch.float64)
    assert got.dtype == torch.float64 and got.shape == (3,)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    assert sched.last_epoch == 4 and opt.param_groups[0]["lr"] == pytest.approx(0.96, rel=1e-12)
    # A scheduler stepped every second snapshot (s = 1/2) holds its rate over two intervals;
    # the entries are in optimizer steps per interval (scale = 5).
    half = future_lr_profile(sched, 4, 0.5, scale=5)
    torch.testing.assert_close(half, 5 * torch.tensor([0.96, 0.96, 0.95, 0.95], dtype=torch.float64),
                               rtol=1e-12, atol=0)
    assert future_lr_profile(torch.optim.lr_scheduler.ReduceLROnPlateau(opt), 3, 2, scale=2) is None


def test_window_sums_the_rates_of_each_interval_and_keeps_n_plus_one():
    w = LRWindow(keep=3, scale=2)
    w.restart(1.0)
    rates = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]  # the rate read after each step (the next step's)
    for i in range(1, 7):
        w.step(rates[i])
        if i % 2 == 0:
            w.snapshot(rates[i])
    # Intervals (steps 1-2), (3-4), (5-6) used rates (1.0, 0.9), (0.8, 0.7), (0.6, 0.5); 3 are kept.
    torch.testing.assert_close(w.past(2), torch.tensor([0.0, 1.5, 1.1], dtype=torch.float64), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="holds 2"):
        w.past(3)
    # An interval without step events takes the rate read at its start.
    w.snapshot(0.3)
    assert w.past(1)[1] == pytest.approx(2 * 0.4)
    # Mid-interval state survives a JSON round trip.
    w.step(0.2)
    copy = LRWindow(keep=3, scale=2)
    copy.load_state_dict(json.loads(json.dumps(w.state_dict())))
    for win in (w, copy):
        win.step(0.1)
        win.snapshot(0.1)
    assert torch.equal(copy.past(2), w.past(2)) and w.past(2)[2] == pytest.approx(0.3 + 0.2)
    w.restart(0.5)
    assert w.past(0).tolist() == [0.0]
