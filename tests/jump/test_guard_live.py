"""The guard through a live GFMJump: back-off, bit-exact rollback, bad forecasts, failures mid-jump, optimizer state."""

import copy
import logging

import pytest
import torch
from torch import nn

from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump
from gfm_accel.params import flatten_params

from _jump_helpers import (
    FarAwayForecaster,
    FixedForecaster,
    NaNForecaster,
    RaisingForecaster,
    WrongSizeForecaster,
    bn_mlp,
    digits,
    eval_loss_fn,
    mlp,
    train_epoch,
)


def _snap(model):
    return flatten_params(model).clone()


def test_guard_backs_off_to_a_smaller_alpha_on_least_squares():
    # Quadratic loss with a known optimum w*: the forecast w_n + 3 (w* - w_n) overshoots;
    # alpha = 1 lands at distance 2|d| (worse), alpha = 0.5 at 0.5|d| (better).
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = x @ torch.randn(5, 1) + 0.3
    model = nn.Linear(5, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    xa = torch.cat([x, torch.ones(64, 1)], 1)
    sol = torch.linalg.lstsq(xa, y).solution.reshape(-1)  # weight (5) then bias (1): the flat layout
    w_n = flatten_params(model)
    forecaster = FixedForecaster(w_n + 3 * (sol - w_n), expected_dim=6)

    @torch.no_grad()
    def eval_fn(m):
        return float(nn.functional.mse_loss(m(x), y))

    jump = GFMJump(forecaster, mode="far", n=1, horizon=5, unit="epoch", tolerance=0.01, optimizer_state="reset").attach(model, opt, eval_fn=eval_fn)
    loss_0 = eval_fn(model)
    # No training: w_1 == w_0, so the forecast target above is relative to the current weights.
    rec = jump.on_epoch_end(0)
    assert rec.alphas_tried == [1.0, 0.5]
    assert rec.accepted and rec.alpha == 0.5 and rec.reason == "accepted"
    assert rec.losses_after[0] > rec.loss_before > rec.losses_after[1]
    torch.testing.assert_close(flatten_params(model), w_n + 1.5 * (sol - w_n), rtol=0, atol=1e-6)
    assert rec.loss_before == pytest.approx(loss_0, rel=1e-12)
    assert rec.losses_after[1] == pytest.approx(eval_fn(model), rel=1e-12)


@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adamw"])
def test_guard_rollback_is_bit_exact(opt_name, caplog):
    x, y, xv, yv = digits(256, 128)
    model = bn_mlp()
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3),
    }[opt_name]
    opt = make(model.parameters())
    loader = [x[i : i + 64] for i in range(0, 256, 64)]
    jump = GFMJump(FarAwayForecaster(), mode="far", n=2, refresh_bn_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    jump.attach(model, opt, eval_fn=eval_loss_fn(xv, yv), total=10, bn_loader=loader)
    for epoch in range(2):
        train_epoch(model, opt, x, y, epoch)
        if epoch == 1:
            model.train()
            params = [p.detach().clone() for p in model.parameters()]
            buffers = [b.detach().clone() for b in model.buffers()]
            opt_state = copy.deepcopy(opt.state_dict())
        with caplog.at_level(logging.WARNING, logger="gfm_accel.jump.core"):
            rec = jump.on_epoch_end(epoch)
    assert rec is not None and not rec.accepted and rec.alpha is None
    assert rec.alphas_tried == [1.0, 0.5, 0.25] and len(rec.losses_after) == 3
    assert all(v > rec.loss_before for v in rec.losses_after)
    assert rec.reason == "rejected by the guard"
    assert "rejected" in caplog.text
    assert model.training  # mode restored
    for a, b in zip(params, model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(buffers, model.buffers()):
        assert torch.equal(a, b)
    now = opt.state_dict()
    assert now["param_groups"] == opt_state["param_groups"]
    assert len(opt_state["state"]) == len(now["state"]) > 0
    for k, st in opt_state["state"].items():
        for name, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(now["state"][k][name])), (k, name)
    # Training goes on.
    train_epoch(model, opt, x, y, 2)


@pytest.mark.parametrize(
    "forecaster, reason",
    [
        (NaNForecaster(), "skipped: forecast NaN/Inf"),
        (WrongSizeForecaster(), "skipped: forecast has wrong size"),
        (RaisingForecaster(), "skipped: forecaster failed"),
    ],
)
def test_bad_forecasts_cause_no_jump(forecaster, reason, caplog):
    x, y, xv, yv = digits(128, 64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(forecaster, n=1, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=1, every=1).attach(model, opt, eval_fn=eval_loss_fn(xv, yv))
    train_epoch(model, opt, x, y, 0)
    before = _snap(model)
    with caplog.at_level(logging.WARNING, logger="gfm_accel.jump.core"):
        rec = jump.on_epoch_end(0)
    assert rec.reason == reason and not rec.accepted and rec.alphas_tried == []
    assert torch.equal(_snap(model), before)
    assert "no jump" in caplog.text
    train_epoch(model, opt, x, y, 1)  # training goes on, and so does the schedule
    assert jump.on_epoch_end(1).reason == reason
    assert len(jump.history) == 2


def test_eval_fn_failure_mid_jump_restores_the_model():
    x, y, xv, yv = digits(128, 64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    calls = []

    def flaky_eval(m):
        calls.append(1)
        if len(calls) == 3:  # 1: the check at attach, 2: loss before; fails after the first candidate was written
            raise RuntimeError("eval crashed")
        return eval_loss_fn(xv, yv)(m)

    jump = GFMJump(FarAwayForecaster(), n=1, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=1, every=1).attach(model, opt, eval_fn=flaky_eval)
    train_epoch(model, opt, x, y, 0)
    model.train()
    before = _snap(model)
    with pytest.raises(RuntimeError, match="eval crashed"):
        jump.on_epoch_end(0)
    assert torch.equal(_snap(model), before) and model.training


@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("policy", ["keep", "reset"])
def test_optimizer_state_keep_or_reset(opt_name, policy):
    x, y, _, _ = digits(128)
    model = mlp()
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
    }[opt_name]
    opt = make(model.parameters())
    jump = GFMJump(LinearExtrapolationForecaster(), n=1, horizon=1, optimizer_state=policy, unit="epoch", tolerance=0.01, every=1).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    state_before = copy.deepcopy(opt.state_dict()["state"])
    rec = jump.on_epoch_end(0)
    assert rec.accepted
    state_after = opt.state_dict()["state"]
    if policy == "reset":
        assert state_after == {}
    else:
        assert state_after.keys() == state_before.keys()
        for k in state_before:
            for name, v in state_before[k].items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(state_after[k][name]))
    train_epoch(model, opt, x, y, 1)  # the optimizer rebuilds its state and steps
    st = opt.state_dict()["state"][0]
    if opt_name == "sgd":
        assert st["momentum_buffer"].shape == model[0].weight.shape
    else:
        assert float(st["step"]) == (2 if policy == "reset" else 4)  # 2 batches of 64 per epoch
