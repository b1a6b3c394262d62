"""GFMJump in plain torch loops: schedules, exact forecasts, guard, rollback, bad inputs, optimizer state, BN."""

import copy
import logging

import pytest
import torch
from torch import nn

from gfm_accel.forecast.simple import LastValueForecaster, LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump, refresh_batchnorm
from gfm_accel.params import ParamSpec, flatten_params

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


def test_far_jump_lands_on_the_linear_forecast():
    x, y, xv, yv = digits()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=3, alpha=0.5).attach(model, opt, total=10)
    snaps = [_snap(model)]
    for epoch in range(6):
        train_epoch(model, opt, x, y, epoch)
        snaps.append(_snap(model))
        rec = jump.on_epoch_end(epoch)
        if epoch == 2:  # the snapshot after epoch 2 is w_3 = w_n
            assert rec is not None and rec.accepted and rec.reason == "accepted (no guard)"
            expected = snaps[3] + 0.5 * (10 - 3) * (snaps[3] - snaps[2])
            torch.testing.assert_close(_snap(model), expected, rtol=0, atol=1e-6)
            assert rec.jump_norm == pytest.approx(float((expected - snaps[3]).norm()), rel=1e-5)
        else:
            assert rec is None
    assert [(r.step, r.n, r.m, r.alpha) for r in jump.history] == [(3, 3, 10, 0.5)]
    # After the far jump nothing more is recorded.
    assert jump.recorder.steps == [0, 1, 2, 3]


def test_periodic_schedule_windows_restart_after_each_jump():
    x, y, _, _ = digits()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), mode="periodic", n=2, horizon=3).attach(model, opt)
    windows = []
    for epoch in range(7):
        train_epoch(model, opt, x, y, epoch)
        before = jump.recorder.weights().clone()
        w = _snap(model)
        rec = jump.on_epoch_end(epoch)
        if rec is not None:
            windows.append(jump.recorder.steps)
            prefix = torch.cat([before[-2:], w[None]])
            expected = prefix[-1] + 3 * (prefix[-1] - prefix[-2])
            torch.testing.assert_close(_snap(model), expected, rtol=0, atol=1e-6)
    assert [(r.step, r.m) for r in jump.history] == [(2, 5), (4, 5), (6, 5)]
    assert windows == [[2], [4], [6]]  # the jumped weights start the next window
    assert jump.jumps == 3


def test_no_periodic_jump_at_the_planned_end():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), n=2).attach(model, opt, total=6)
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
    jump = GFMJump(LastValueForecaster(), n=2, horizon=3, jump_past_end=past_end).attach(model, opt, total=8)
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
    jump = GFMJump(LastValueForecaster(), unit="step", every_n_steps=2, n=2, horizon=3).attach(model, opt, total=12)
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
    jump = GFMJump(LastValueForecaster(), n=2, every=3, max_jumps=2).attach(model, opt)
    for epoch in range(12):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    assert [r.step for r in jump.history] == [3, 6]


def test_step_unit_far_target_from_total_steps():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="step", every_n_steps=3)
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
    jump = GFMJump(LastValueForecaster(), n=2).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    jump.on_epoch_end(0)
    assert jump.recorder.steps == [0, 1]


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

    jump = GFMJump(forecaster, mode="far", n=1, horizon=5).attach(model, opt, eval_fn=eval_fn)
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
    jump = GFMJump(FarAwayForecaster(), mode="far", n=2, refresh_bn_batches=2)
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
    assert rec.reason == "rejected: loss rose"
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
    jump = GFMJump(forecaster, n=1).attach(model, opt, eval_fn=eval_loss_fn(xv, yv))
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


def test_forecaster_with_wrong_dim_is_refused_at_attach():
    model = mlp()
    D = ParamSpec.from_model(model).numel
    with pytest.raises(ValueError, match=rf"D=100 parameters but the model has D={D}"):
        GFMJump(FixedForecaster(torch.zeros(100), expected_dim=100)).attach(model)


def test_attach_errors_are_clear():
    model = mlp()
    with pytest.raises(ValueError, match="far mode needs the planned run length"):
        GFMJump(LastValueForecaster(), mode="far").attach(model)
    with pytest.raises(ValueError, match="target m=3 .* larger than n=4"):
        GFMJump(LastValueForecaster(), mode="far").attach(model, total=3)
    with pytest.raises(ValueError, match="guard=True needs eval_fn"):
        GFMJump(LastValueForecaster(), guard=True).attach(model)
    with pytest.raises(ValueError, match="needs bn_loader"):
        GFMJump(LastValueForecaster(), refresh_bn_batches=2).attach(model)
    with pytest.raises(TypeError, match="forecast"):
        GFMJump(object()).attach(model)
    with pytest.raises(RuntimeError, match="not attached"):
        GFMJump(LastValueForecaster()).on_epoch_end()


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
    jump = GFMJump(LinearExtrapolationForecaster(), n=1, horizon=1, optimizer_state=policy).attach(model, opt)
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


def test_batchnorm_refresh_matches_update_bn():
    x, y, xv, yv = digits(256, 128)
    model = bn_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
    jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=1, refresh_bn_batches=3, guard=False)
    jump.attach(model, opt, total=4, bn_loader=loader)
    train_epoch(model, opt, x, y, 0)
    old_mean = model[1].running_mean.clone()
    rec = jump.on_epoch_end(0)
    assert rec.accepted
    reference = copy.deepcopy(model)
    torch.optim.swa_utils.update_bn([b[0] for b in loader[:3]], reference)
    torch.testing.assert_close(model[1].running_mean, reference[1].running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model[1].running_var, reference[1].running_var, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(model[1].running_mean, old_mean)
    assert model[1].momentum == 0.1 and model.training


def test_refresh_batchnorm_handles_dict_batches_and_empty_loaders():
    class DictNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.bn = nn.Linear(2, 3), nn.BatchNorm1d(3)

        def forward(self, inputs):
            return self.bn(self.lin(inputs))

    net = DictNet().eval()
    before = net.bn.running_mean.clone()
    assert refresh_batchnorm(net, [], 4) == 0
    assert torch.equal(net.bn.running_mean, before)
    assert refresh_batchnorm(net, [{"inputs": torch.randn(16, 2) + 3}] * 5, 4) == 4
    assert not net.training and float(net.bn.running_mean.abs().sum()) > 0
    assert refresh_batchnorm(nn.Linear(2, 2), [torch.randn(2, 2)], 3) == 0


def test_eval_fn_failure_mid_jump_restores_the_model():
    x, y, xv, yv = digits(128, 64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    calls = []

    def flaky_eval(m):
        calls.append(1)
        if len(calls) == 2:  # fails after the first candidate was written
            raise RuntimeError("eval crashed")
        return eval_loss_fn(xv, yv)(m)

    jump = GFMJump(FarAwayForecaster(), n=1).attach(model, opt, eval_fn=flaky_eval)
    train_epoch(model, opt, x, y, 0)
    model.train()
    before = _snap(model)
    with pytest.raises(RuntimeError, match="eval crashed"):
        jump.on_epoch_end(0)
    assert torch.equal(_snap(model), before) and model.training


def test_force_jump_and_step_events_in_epoch_mode():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), n=1, every=3).attach(model, opt)
    assert jump.on_step_end() is None and jump.recorder.steps == [0]  # epoch unit: steps only count
    assert jump.maybe_jump(force=True) is None  # only w_0 held
    train_epoch(model, opt, x, y, 0)
    assert jump.on_epoch_end(0) is None and not jump.due()
    rec = jump.maybe_jump(force=True)
    assert rec is not None and rec.accepted and rec.step == 1 and rec.m == 2
    assert jump.recorder.steps == [1]


def test_state_of_an_unattached_jump_round_trips_through_a_file(tmp_path):
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), n=2).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    path = jump.save_state(tmp_path / "s.safetensors")
    fresh = GFMJump(LastValueForecaster(), n=2)
    fresh.load_state(path)  # pending until attach
    assert fresh.state_dict()["epochs"] == 1
    fresh.attach(mlp(seed=3), opt)
    assert fresh.recorder.steps == [0, 1]
    torch.testing.assert_close(fresh.recorder.weights(), jump.recorder.weights(), rtol=0, atol=0)


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_attach_mid_run_with_start(unit):
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    if unit == "epoch":
        jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2).attach(model, opt, total=10, start=3)
        for epoch in range(3, 6):
            train_epoch(model, opt, x, y, epoch)
            jump.on_epoch_end(epoch)
        assert jump.recorder.steps == [3, 4, 5]
        assert [(r.step, r.m) for r in jump.history] == [(5, 7)]  # m counted from w_0 at epoch 3
    else:
        jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="step", every_n_steps=4)
        jump.attach(model, opt, total=50, start=10)
        for step in range(11, 19):
            jump.on_step_end(step)
        assert jump.recorder.steps == [10, 14, 18]
        assert [(r.step, r.m) for r in jump.history] == [(18, 10)]  # (50 - 10) // 4
    with pytest.raises(ValueError, match="start=12 is not before the planned end total=10"):
        GFMJump(LinearExtrapolationForecaster(), mode="far", n=2).attach(mlp(), total=10, start=12)


def test_bfloat16_snapshots_jump_from_the_live_weights():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), mode="far", n=1, snapshot_dtype="bfloat16").attach(model, opt, total=5)
    train_epoch(model, opt, x, y, 0)
    live = _snap(model)
    rec = jump.on_epoch_end(0)
    # The forecast is the bf16-rounded w_1; the jump moves the live weights exactly onto it.
    assert rec.accepted and jump.recorder.state_dict()["weights"].dtype == torch.bfloat16
    expected = live.to(torch.bfloat16).float()
    torch.testing.assert_close(_snap(model), expected, rtol=0, atol=1e-7)
    assert 0 < rec.jump_norm < 1e-2 * float(live.norm())
