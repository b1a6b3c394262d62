"""Learning-rate schedules by name: the lr at given steps."""

import math

import pytest
import torch

from gfm_accel.lab.schedules import SCHEDULES, build_scheduler, lr_factor, warmup_steps


def _lrs(name, total, warmup, base=2.0):
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=base)
    sched = build_scheduler(opt, name, total, warmup)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out, opt, sched


def test_constant():
    lrs, _, _ = _lrs("constant", 5, 0.4)
    assert lrs == [2.0] * 5


def test_warmup_cosine_values():
    # T = 20, W = round(0.25 * 20) = 5: lr = 2 * (s + 1) / 5 for s < 5, then 2 * (1 + cos(pi (s - 5) / 15)) / 2
    lrs, opt, _ = _lrs("warmup_cosine", 20, 0.25)
    assert lrs[:5] == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0])
    assert lrs[5] == pytest.approx(2.0)
    assert lrs[10] == pytest.approx(1.0 + math.cos(math.pi * 5 / 15))  # = 1.5
    assert lrs[10] == pytest.approx(1.5)
    assert lrs[19] == pytest.approx(1.0 + math.cos(math.pi * 14 / 15))
    assert lrs[19] > 0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # after the last step: 0
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))


def test_cosine_without_warmup_and_factor_past_the_end():
    assert lr_factor("warmup_cosine", 0, 10, 0.0) == 1.0
    assert lr_factor("warmup_cosine", 5, 10, 0.0) == pytest.approx(0.5)
    assert lr_factor("warmup_cosine", 12, 10, 0.0) == pytest.approx(0.0)
    assert warmup_steps(10, 0.0) == 0 and warmup_steps(10, 0.26) == 3 and warmup_steps(3, 0.9) == 2


def test_state_dict_round_trip():
    _, opt, sched = _lrs("warmup_cosine", 10, 0.2)
    opt2 = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=2.0)
    sched2 = build_scheduler(opt2, "warmup_cosine", 10, 0.2)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.last_epoch == 10 and sched2.get_last_lr() == sched.get_last_lr()


def test_bad_input():
    assert SCHEDULES == ("constant", "warmup_cosine")
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        lr_factor("linear", 0, 10)
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        lr_factor("constant", 0, 0)
    with pytest.raises(ValueError, match=r"warmup must be a fraction of total_steps in \[0, 1\)"):
        build_scheduler(torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0), "warmup_cosine", 10, 1.0)
