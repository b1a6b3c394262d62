"""GFMJump in plain torch loops: exact forecasts, windows, attach errors, BatchNorm, forced jumps, state files."""

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
    jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=3, alpha=0.5, unit="epoch", tolerance=0.01, optimizer_state="reset").attach(model, opt, total=10)
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
    jump = GFMJump(LinearExtrapolationForecaster(), mode="periodic", n=2, horizon=3, unit="epoch", tolerance=0.01, optimizer_state="reset", every=2).attach(model, opt)
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


def test_forecaster_with_wrong_dim_is_refused_at_attach():
    model = mlp()
    D = ParamSpec.from_model(model).numel
    with pytest.raises(ValueError, match=rf"D=100 parameters but the model has D={D}"):
        GFMJump(FixedForecaster(torch.zeros(100), expected_dim=100), unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4).attach(model)


def test_attach_errors_are_clear():
    model = mlp()
    with pytest.raises(ValueError, match="far mode needs the planned run length"):
        GFMJump(LastValueForecaster(), mode="far", unit="epoch", tolerance=0.01, optimizer_state="reset").attach(model)
    with pytest.raises(ValueError, match="target m=3 .* larger than n=4"):
        GFMJump(LastValueForecaster(), mode="far", unit="epoch", tolerance=0.01, optimizer_state="reset").attach(model, total=3)
    with pytest.raises(ValueError, match="guard=True needs eval_fn"):
        GFMJump(LastValueForecaster(), guard=True, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4).attach(model)
    with pytest.raises(ValueError, match="needs bn_loader"):
        GFMJump(LastValueForecaster(), refresh_bn_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4).attach(model)
    with pytest.raises(TypeError, match="forecast"):
        GFMJump(object(), unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4).attach(model)
    with pytest.raises(RuntimeError, match="not attached"):
        GFMJump(LastValueForecaster(), unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4).on_epoch_end()


def test_batchnorm_refresh_matches_update_bn():
    x, y, xv, yv = digits(256, 128)
    model = bn_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
    jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=1, refresh_bn_batches=3, guard=False, unit="epoch", tolerance=0.01, optimizer_state="reset")
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


def test_force_jump_and_step_events_in_epoch_mode():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), n=1, every=3, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=1).attach(model, opt)
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
    jump = GFMJump(LastValueForecaster(), n=2, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=2, every=2).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    path = jump.save_state(tmp_path / "s.safetensors")
    fresh = GFMJump(LastValueForecaster(), n=2, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=2, every=2)
    fresh.load_state(path)  # pending until attach
    assert fresh.state_dict()["epochs"] == 1
    other = mlp(seed=3)  # (its own optimizer: one over another model's parameters is refused at attach)
    fresh.attach(other, torch.optim.SGD(other.parameters(), lr=0.05))
    assert fresh.recorder.steps == [0, 1]
    torch.testing.assert_close(fresh.recorder.weights(), jump.recorder.weights(), rtol=0, atol=0)


def test_bfloat16_snapshots_jump_from_the_live_weights():
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LastValueForecaster(), mode="far", n=1, snapshot_dtype="bfloat16", unit="epoch", tolerance=0.01, optimizer_state="reset").attach(model, opt, total=5)
    train_epoch(model, opt, x, y, 0)
    live = _snap(model)
    rec = jump.on_epoch_end(0)
    # The forecast is the bf16-rounded w_1; the jump moves the live weights exactly onto it.
    assert rec.accepted and jump.recorder.state_dict()["weights"].dtype == torch.bfloat16
    expected = live.to(torch.bfloat16).float()
    torch.testing.assert_close(_snap(model), expected, rtol=0, atol=1e-7)
    assert 0 < rec.jump_norm < 1e-2 * float(live.norm())
