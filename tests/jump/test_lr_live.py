"""``lr_profile=True`` through a live GFMJump: the summed learning rates of the window and the
horizon, resume, the checks at attach, and a schedule-aware coordinate forecaster end to end."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from gfm_accel.forecast import GFMForecaster
from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump, JumpConfig
from gfm_accel.params import ParamSpec
from gfm_accel.trajectories import Trajectories

BASE_LR = 0.1


class Recording:
    """A schedule-aware forecaster that records each call's ``lr_profile`` (and asks ``inner``, if any)."""

    expected_dim = None
    schedule_aware = True

    def __init__(self, inner=None):
        self.inner = inner
        self.profiles: list[torch.Tensor | None] = []
        self.prefixes: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    def forecast(self, prefix, m, *, spec=None, lr_profile=None):
        self.profiles.append(lr_profile)
        self.prefixes.append(prefix.clone())
        if self.inner is None:
            out = prefix[-1].clone()  # the last value: the jump moves nothing
        else:
            out = self.inner.forecast(prefix, m, spec=spec, lr_profile=lr_profile)
        self.outputs.append(out.clone())  # GFMJump turns the returned tensor into the step, in place
        return out


# Closed forms of the learning rate of optimizer step k (1-based), with the scheduler stepped after each step.
SCHEDULES = {
    "lambda": (lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / 100),
               lambda k: BASE_LR * (1 - (k - 1) / 100)),
    "step": (lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5),
             lambda k: BASE_LR * 0.5 ** ((k - 1) // 4)),
}


def _run(jump, model, opt, sched, steps, first=1):
    """A plain loop: opt.step(); sched.step(); jump.on_step_end(step)."""
    g = torch.Generator().manual_seed(first)
    for step in range(first, first + steps):
        x = torch.randn(8, 4, generator=g)
        loss = (model(x) - x[:, :2]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        jump.on_step_end(step)


def _setup(schedule="lambda", forecaster=None, **options):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=BASE_LR)
    sched = SCHEDULES[schedule][0](opt)
    options = {"n": 2, "horizon": 3, "every": 2, "every_n_steps": 3, "guard": False, "lr_profile": True, **options}
    jump = GFMJump(forecaster if forecaster is not None else Recording(), **options)
    return jump, model, opt, sched


def _sums(lr_of, first, intervals, k=3):
    """Summed rate of ``intervals`` intervals of ``k`` steps from step ``first``."""
    return [sum(lr_of(s) for s in range(first + i * k, first + (i + 1) * k)) for i in range(intervals)]


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_the_profile_sums_the_window_and_the_horizon_and_restarts_with_the_window(schedule):
    lr_of = SCHEDULES[schedule][1]
    jump, model, opt, sched = _setup(schedule)
    jump.attach(model, opt, lr_scheduler=sched)
    _run(jump, model, opt, sched, 12)
    # n=2, K=3, a snapshot every 3 steps, a jump every 2 snapshots: jumps after steps 6 and 12.
    assert [r.step for r in jump.history] == [6, 12] and all(r.accepted for r in jump.history)
    first, second = jump.forecaster.profiles
    assert first.shape == (6,) and first.dtype == torch.float64  # (m+1,), m = n + K = 5
    # entry 0 unused; steps 1-3, 4-6 (the window); 7-9, 10-12, 13-15 (the horizon).
    torch.testing.assert_close(first, torch.tensor([0.0, *_sums(lr_of, 1, 5)], dtype=torch.float64),
                               rtol=1e-12, atol=0)
    # After the accepted jump the window (and its sums) restarted at step 6.
    torch.testing.assert_close(second, torch.tensor([0.0, *_sums(lr_of, 7, 5)], dtype=torch.float64),
                               rtol=1e-12, atol=0)
    # The simulation stepped neither the live scheduler nor the optimizer.
    assert sched.last_epoch == 12 and opt.param_groups[0]["lr"] == pytest.approx(lr_of(13), rel=1e-12)


def test_off_by_default_the_forecaster_is_called_as_before():
    jump, model, opt, sched = _setup(lr_profile=False)
    jump.attach(model, opt, lr_scheduler=sched)
    _run(jump, model, opt, sched, 6)
    assert jump.forecaster.profiles == [None] and jump.lr_window is None
    assert "lr_window" not in jump.state_dict() and JumpConfig().lr_profile is False


def test_epoch_snapshots_without_step_events_take_the_rate_at_each_epoch_start():
    jump, model, opt, _ = _setup(unit="epoch")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** e)  # stepped once per epoch
    jump.attach(model, opt, lr_scheduler=sched)
    for epoch in range(2):
        opt.step()
        sched.step()
        jump.on_epoch_end(epoch)
    (profile,) = jump.forecaster.profiles  # the jump after the second epoch
    # lr_steps_per_snapshot = 1: one scheduler step (epoch) per interval; epochs 1, 2 | 3, 4, 5.
    want = BASE_LR * torch.tensor([0.0, 1.0, 0.5, 0.25, 0.125, 0.0625], dtype=torch.float64)
    torch.testing.assert_close(profile, want, rtol=1e-12, atol=0)


def test_the_sums_survive_a_resume_in_the_middle_of_an_interval(tmp_path, caplog):
    # The uninterrupted run.
    jump, model, opt, sched = _setup()
    jump.attach(model, opt, lr_scheduler=sched)
    _run(jump, model, opt, sched, 12)
    # The same run saved after step 4 (one step into the second interval) and resumed there.
    jump_a, model_b, opt_b, sched_b = _setup()
    jump_a.attach(model_b, opt_b, lr_scheduler=sched_b)
    _run(jump_a, model_b, opt_b, sched_b, 4)
    state = jump_a.state_dict()
    assert state["lr_window"]["count"] == 1 and len(state["lr_window"]["sums"]) == 2
    jump_a.save_state(tmp_path / "jump.safetensors")
    resumed = GFMJump(Recording(), config=jump_a.config)
    resumed.load_state(tmp_path / "jump.safetensors")
    resumed.attach(model_b, opt_b, lr_scheduler=sched_b)
    _run(resumed, model_b, opt_b, sched_b, 8, first=5)
    assert len(resumed.forecaster.profiles) == 2
    for got, want in zip(resumed.forecaster.profiles, jump.forecaster.profiles):
        assert torch.equal(got, want)
    # A state saved without the option: the held intervals are taken at the current rate, with a warning.
    plain, model_c, opt_c, sched_c = _setup(lr_profile=False)
    plain.attach(model_c, opt_c, lr_scheduler=sched_c)
    _run(plain, model_c, opt_c, sched_c, 4)
    late = GFMJump(Recording(), config=JumpConfig(**{**plain.config.to_dict(), "lr_profile": True}))
    late.load_state_dict(plain.state_dict())
    with caplog.at_level(logging.WARNING, logger="gfm_accel.jump.core"):
        late.attach(model_c, opt_c, lr_scheduler=sched_c)
    assert any("holds no learning-rate sums" in msg for msg in caplog.messages)
    now = opt_c.param_groups[0]["lr"]
    assert late.lr_window.past(1).tolist() == pytest.approx([0.0, 3 * now])


def test_bad_set_ups_fail_at_attach_or_in_the_config():
    with pytest.raises(ValueError, match="lr_profile=True and lr_horizon=True .* pick one"):
        JumpConfig(lr_profile=True, lr_horizon=True)
    with pytest.raises(ValueError, match="lr_profile must be True or False"):
        JumpConfig(lr_profile=1)
    jump, model, opt, sched = _setup()
    with pytest.raises(ValueError, match=r"lr_profile=True needs attach\(lr_scheduler=\.\.\.\)"):
        jump.attach(model, opt)
    with pytest.raises(ValueError, match="ReduceLROnPlateau cannot"):
        jump.attach(model, opt, lr_scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(opt))
    for forecaster in (LinearExtrapolationForecaster(), GFMForecaster("coordinate", hidden=8)):
        with pytest.raises(ValueError, match=r"not one\. Fit GFMForecaster\('coordinate', schedule_aware=True\)"):
            GFMJump(forecaster, lr_profile=True).attach(model, opt, lr_scheduler=sched)
    assert jump.recorder is None  # nothing was bound by the failed attaches
    assert jump.attach(model, opt, lr_scheduler=sched).lr_window is not None  # a valid set-up attaches


def _schedule_aware_forecaster(spec: ParamSpec) -> GFMForecaster:
    """A tiny coordinate field fitted on trajectories that move in proportion to their summed lr."""
    g = torch.Generator().manual_seed(0)
    n_traj, t_len = 6, 16
    lr_sum = torch.stack([torch.linspace(1.0, 0.1 + 0.3 * i, t_len) for i in range(n_traj)])
    lr_sum[:, 0] = 0.0
    direction = torch.randn(n_traj, 1, spec.numel, generator=g)
    w = torch.randn(n_traj, 1, spec.numel, generator=g) + direction * torch.cumsum(lr_sum, 1).unsqueeze(-1)
    f = GFMForecaster("coordinate", n=2, m=5, hidden=8, schedule_aware=True, coords_per_window=16,
                      steps_per_epoch=2, n_choices=(2,), strides=(1,))
    data = Trajectories(weights=w, metadata={"spec": spec.to_dict()}, extra={"lr_sum": lr_sum})
    return f.fit([data], epochs=20, batch_size=4, lr=1e-2, progress=False)


def test_a_schedule_aware_coordinate_forecaster_receives_the_profile_end_to_end():
    jump, model, opt, sched = _setup()
    spec = ParamSpec.from_model(model)
    inner = _schedule_aware_forecaster(spec)
    assert inner.schedule_aware
    recording = Recording(inner)
    jump = GFMJump(recording, config=jump.config).attach(model, opt, lr_scheduler=sched)
    _run(jump, model, opt, sched, 6)
    (record,) = jump.history
    (profile,), (prefix,), (out,) = recording.profiles, recording.prefixes, recording.outputs
    assert record.accepted and profile.shape == (record.m + 1,) == (6,)
    torch.testing.assert_close(profile, torch.tensor([0.0, *_sums(SCHEDULES["lambda"][1], 1, 5)],
                                                     dtype=torch.float64), rtol=1e-12, atol=0)
    # The jump (alpha = 1, no guard) landed on the forecast, and the window restarted there.
    torch.testing.assert_close(jump.recorder.last(1)[0], out, rtol=0, atol=1e-5)
    # The profile reached the field: the forecast is the profile's own, and a constant
    # schedule (None, or all-equal sums) gives another one.
    assert torch.equal(inner.forecast(prefix, record.m, spec=spec, lr_profile=profile), out)
    const = inner.forecast(prefix, record.m, spec=spec)
    assert torch.equal(inner.forecast(prefix, record.m, spec=spec, lr_profile=torch.ones(6)), const)
    assert (out - const).abs().max() > 1e-5  # 3e-4 here, on weights of size ~1
