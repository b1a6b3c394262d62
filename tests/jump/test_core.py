"""GFMJump in plain torch loops: exact forecasts, windows, attach errors, BatchNorm, forced jumps, state files."""

import copy
import logging

import pytest
import torch
from torch import nn

from gfm_accel.forecast.simple import LastValueForecaster, LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump, refresh_batchnorm
from gfm_accel.params import ParamSpec, flatten_params

from _jump_helpers import FixedForecaster, bn_mlp, digits, eval_loss_fn, mlp, train_epoch


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


# ---------------------------------------------------------------- a new user's first runs (issue 16)
def _rng_states():
    import random

    import numpy as np

    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _same_rng(a, b):
    return torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


class _RandomForecaster:
    """Linear extrapolation that also draws from every global RNG (as a careless forecaster might)."""

    expected_dim = None

    def forecast(self, prefix, m, *, spec=None):
        import random

        import numpy as np

        torch.rand(3), np.random.rand(3), random.random()
        return prefix[-1] + (m - prefix.shape[0] + 1) * (prefix[-1] - prefix[-2])


def test_no_global_rng_consumed_by_attach_recording_forecasting_and_guarding():
    import random

    import numpy as np

    x, y, xv, yv = digits(128, 64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def noisy_eval(m):  # an eval_fn that iterates a shuffled loader and draws from numpy/python
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=32, shuffle=True)
        np.random.rand(), random.random()
        return sum(float(nn.functional.cross_entropy(m(a), b)) for a, b in loader)

    before = _rng_states()
    jump = GFMJump(_RandomForecaster(), n=1, horizon=1, every=1, unit="epoch", tolerance=1e9)
    jump.attach(model, opt, eval_fn=noisy_eval, total=10)
    assert _same_rng(before, _rng_states())
    for epoch in range(3):
        train_epoch(model, opt, x, y, epoch)
        before = _rng_states()
        rec = jump.on_epoch_end(epoch)
        assert rec is not None and rec.loss_before is not None  # forecast and guard both ran
        assert _same_rng(before, _rng_states())
    assert jump.jumps == 3


@pytest.mark.parametrize(
    "eval_fn, words",
    [(lambda m: None, "must return a float loss.*NoneType"), (lambda m: float("nan"), "returned nan"),
     (lambda m: "0.3", "must return a float loss")],
)
def test_a_bad_eval_fn_fails_at_attach(eval_fn, words):
    model = mlp()
    with pytest.raises(ValueError, match=words):
        GFMJump(LastValueForecaster(), unit="epoch").attach(model, torch.optim.SGD(model.parameters(), lr=0.1), eval_fn=eval_fn)


def test_warnings_for_a_run_too_short_and_for_no_guard(caplog):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with caplog.at_level(logging.INFO, logger="gfm_accel.jump.core"):
        GFMJump(LastValueForecaster()).attach(model, opt, total=60)  # the defaults: schedule A
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("too short for any jump: the first can come at step 25 and needs a planned length of at least 75 steps"
               in w for w in warnings), warnings
    assert any("the guard is off" in w for w in warnings), warnings
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gfm_accel.jump.core"):
        GFMJump(LastValueForecaster(), guard=False).attach(mlp(), total=200)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("the first jump can come at step 25" in r.getMessage() for r in caplog.records)


def test_the_default_schedule_in_a_plain_step_loop_and_the_summary_line(caplog):
    x, y, xv, yv = digits(256, 64)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    jump = GFMJump(LinearExtrapolationForecaster(), tolerance=0.3).attach(model, opt, eval_fn=eval_loss_fn(xv, yv),
                                                                      total=100)
    step = 0
    for epoch in range(25):  # 4 steps per epoch
        g = torch.Generator().manual_seed(epoch)
        for idx in torch.randperm(256, generator=g).view(4, 64):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            jump.on_step_end(step)
    # Snapshots every 5 steps; a jump every P=5 snapshots (step 25, 50) to K=10 ahead; the one
    # at step 75 would land past the planned end (75 + 10 * 5 > 100).
    assert [(r.step, r.m) for r in jump.history] == [(25, 14), (50, 14)]
    # The guard (tolerance 0.3) backed the first jump off to alpha 0.25 and rejected the second.
    assert [(r.accepted, r.alpha) for r in jump.history] == [(True, 0.25), (False, None)]
    with caplog.at_level(logging.INFO, logger="gfm_accel.jump.core"):
        line = jump.on_train_end(steps_per_epoch=4)
    # 0.25 * K=10 snapshots * 5 steps = 12.5 steps = 3.12 epochs of 4 steps
    assert line == "GFMJump: 1/2 jumps accepted; forecast 12.5 steps (3.12 epochs) ahead in total (nominal)"
    assert line in caplog.messages


def test_parameters_outside_the_optimizer_are_not_moved():
    x, y, _, _ = digits(128)

    def run(**options):
        model = mlp()
        head = torch.optim.SGD(model[2].parameters(), lr=0.1)  # the body keeps requires_grad=True
        jump = GFMJump(FixedForecaster(None), unit="epoch", mode="far", n=1, horizon=3, **options)
        body0 = model[0].weight.detach().clone()
        jump.forecaster = _PlusOne()
        jump.attach(model, head)
        train_epoch(model, head, x, y, 0)  # the body gets gradients but no optimizer step
        assert torch.equal(model[0].weight, body0)
        rec = jump.on_epoch_end(0)
        return model, body0, rec, jump

    model, body0, rec, jump = run()
    assert rec.accepted and jump.recorder.spec.names == ["2.weight", "2.bias"]
    assert torch.equal(model[0].weight, body0)  # not moved
    model, body0, rec, jump = run(include_unoptimized=True)
    assert rec.accepted and "0.weight" in jump.recorder.spec.names
    assert torch.equal(model[0].weight, body0 + 1.0)  # moved with the rest


class _PlusOne:
    expected_dim = None

    def forecast(self, prefix, m, *, spec=None):
        return prefix[-1] + 1.0


def test_a_swap_seen_at_the_next_snapshot_restarts_the_window(caplog):
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), unit="epoch", n=2, horizon=2, every=2).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    model.append(nn.Linear(10, 10))  # a layer appended; its parameters are not in the optimizer
    opt.add_param_group({"params": model[3].parameters()})
    with caplog.at_level(logging.WARNING):
        assert jump.on_epoch_end(1) is None
    assert any("'3.weight' was added" in m for m in caplog.messages)
    assert jump.recorder.steps == [2] and "3.weight" in jump.recorder.spec.names


def test_changes_after_attach_restart_the_window(caplog):
    x, y, _, _ = digits(128)
    model = mlp()
    model[0].weight.requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    jump = GFMJump(LinearExtrapolationForecaster(), unit="epoch", n=2, horizon=2, every=2).attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    assert jump.recorder.steps == [0, 1]
    # A layer unfrozen (and the optimizer recreated over all parameters).
    model[0].weight.requires_grad_(True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    jump.use_optimizer(opt)
    assert jump.optimizer is opt and "0.weight" in jump.recorder.spec.names
    assert jump.recorder.steps == [1]  # the window restarted at the current weights
    with caplog.at_level(logging.WARNING):
        train_epoch(model, opt, x, y, 1)
        jump.on_epoch_end(1)
        # A module swapped for a fresh one of the same shape (detected here by use_optimizer,
        # else at the next snapshot).
        model[2] = nn.Linear(32, 10)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        jump.use_optimizer(opt)
    assert any("was unfrozen" in m for m in caplog.messages)
    assert any("'2.weight' was replaced (a module swapped)" in m for m in caplog.messages)
    assert jump.recorder.steps == [2]
    for epoch in range(2, 6):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    # Two fresh snapshots after the swap (n=2), then a jump every P=2 snapshots.
    assert [r.step for r in jump.history] == [4, 6] and all(r.accepted for r in jump.history)
    # Attaching twice is refused; reset() starts a new run.
    with pytest.raises(RuntimeError, match="attached already.*jump.reset"):
        jump.attach(model, opt)
    jump.reset().attach(model, opt)
    assert jump.history == [] and jump.recorder.steps == [0]


def test_a_file_path_as_forecaster_points_to_pretrained_forecaster(tmp_path):
    with pytest.raises(TypeError, match=r"not a file path.*pretrained_forecaster\('.*f.safetensors'\)"):
        GFMJump(str(tmp_path / "f.safetensors"))
    with pytest.raises(TypeError, match="pretrained_forecaster"):
        GFMJump(tmp_path / "f.safetensors")


# ---------------------------------------------------------------- learning-rate schedules (issue 14)
def _linear_decay(opt, total):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))


@pytest.mark.parametrize("lr_horizon", [False, True])
def test_lr_horizon_scales_the_jump_by_the_summed_future_learning_rate(lr_horizon):
    x, y, _, _ = digits(128)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = _linear_decay(opt, 100)
    jump = GFMJump(LinearExtrapolationForecaster(), n=1, horizon=2, every=2, every_n_steps=5, guard=False,
                   lr_horizon=lr_horizon)
    jump.attach(model, opt, total=100, lr_scheduler=sched)
    snaps, rec = {0: _snap(model)}, None
    for step in range(1, 11):
        idx = torch.arange(16) + 16 * (step % 8)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 5 == 0:
            snaps[step] = _snap(model)
        rec = jump.on_step_end(step) or rec
    # The jump after step 10 forecasts K=2 snapshots = 10 steps ahead; the learning rates of
    # those steps are 0.1 * (90, 89, ..., 81) / 100, the current one 0.1 * 90 / 100.
    r = sum(range(81, 91)) / (10 * 90) if lr_horizon else 1.0
    assert rec.step == 10 and rec.lr_ratio == pytest.approx(r, rel=1e-12) and rec.alpha == pytest.approx(r)
    w5, w10 = snaps[5], snaps[10]
    expected = w10 + r * 2 * (w10 - w5)
    torch.testing.assert_close(_snap(model), expected, rtol=0, atol=1e-6)
    # The live scheduler and optimizer were not stepped by the simulation.
    assert sched.last_epoch == 10 and opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.9)


def test_lr_horizon_needs_a_scheduler_and_skips_plateau_schedules(caplog):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lr_horizon=True needs attach.lr_scheduler"):
        GFMJump(LastValueForecaster(), lr_horizon=True).attach(model, opt)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    jump = GFMJump(LastValueForecaster(), n=1, horizon=1, every=1, unit="epoch", guard=False, lr_horizon=True)
    jump.attach(model, opt, lr_scheduler=plateau)
    with caplog.at_level(logging.INFO, logger="gfm_accel.jump.core"):
        rec = jump.on_epoch_end(0)
    assert rec.lr_ratio == 1.0 and any("cannot be simulated" in m for m in caplog.messages)


def test_future_lr_ratio_follows_sequential_and_step_schedules():
    from gfm_accel.jump.lr import future_lr_ratio

    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    seq = torch.optim.lr_scheduler.SequentialLR(opt, [warm, step], milestones=[2])
    lrs = []
    probe_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    p_warm = torch.optim.lr_scheduler.LinearLR(probe_opt, start_factor=0.5, total_iters=2)
    p_step = torch.optim.lr_scheduler.StepLR(probe_opt, step_size=2, gamma=0.1)
    p_seq = torch.optim.lr_scheduler.SequentialLR(probe_opt, [p_warm, p_step], milestones=[2])
    for _ in range(6):
        lrs.append(probe_opt.param_groups[0]["lr"])
        probe_opt.step()
        p_seq.step()
    assert future_lr_ratio(seq, 6) == pytest.approx(sum(lrs) / (6 * lrs[0]))
    assert opt.param_groups[0]["lr"] == lrs[0] and seq.last_epoch == 0  # the live schedule is untouched


def test_the_default_forecaster_is_loaded_at_attach_without_touching_the_global_rng():
    import subprocess
    import sys

    code = (
        "import random, numpy as np, torch\n"
        "from gfm_accel.jump import GFMJump\n"
        "m = torch.nn.Linear(4, 2); opt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "a, n, p = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()\n"
        "j = GFMJump().attach(m, opt, total=200)  # the first load of the shipped forecaster\n"
        "print('SAME', torch.equal(a, torch.get_rng_state()), bool((n == np.random.get_state()[1]).all()),"
        " p == random.getstate(), type(j.forecaster).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if "no forecaster given" in proc.stderr or "FileFormatError" in proc.stderr:
        pytest.skip("the shipped forecaster is not available here")
    assert proc.returncode == 0, proc.stderr
    assert "SAME True True True" in proc.stdout, proc.stdout


def test_the_forecasters_returned_tensor_is_not_changed_by_the_jump():
    """GFMJump turns the forecast into its step in place: it must work on a copy."""
    import torch

    from gfm_accel.jump import GFMJump, JumpConfig

    class Keeper:
        returned: list = []

        def forecast(self, prefix, m, *, spec=None):
            out = prefix.reshape(-1, prefix.shape[-1])[-1] + 1.0  # (D,): w_n + 1
            self.returned.append((out, out.clone()))
            return out

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    keeper = Keeper()
    jump = GFMJump(keeper, config=JumpConfig(unit="step", every_n_steps=1, n=1, horizon=1, every=2, guard=False,
                                             jump_past_end=True))
    jump.attach(model, opt, total=6)
    for step in range(1, 7):
        opt.zero_grad()
        model(torch.ones(4, 2)).pow(2).mean().backward()
        opt.step()
        jump.on_step_end(step)
    assert any(r.accepted for r in jump.history) and keeper.returned
    for out, at_return in keeper.returned:
        assert torch.equal(out, at_return)
