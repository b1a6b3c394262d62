"""``max_rejections``: GFMJump turns itself off after that many attempts in a row are not accepted."""

import logging

import pytest
import torch

from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump, JumpConfig
from gfm_accel.params import flatten_params

from _jump_helpers import FarAwayForecaster, ScriptedForecaster, digits, eval_loss_fn, mlp, train_epoch

EPOCHS = 12


def _run(forecaster, **options):
    """A digits MLP, one snapshot per epoch, periodic K = P = 2 (an attempt every 2 epochs from epoch 2)."""
    x, y, xv, yv = digits()
    model = mlp(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    jump = GFMJump(forecaster, n=2, horizon=2, every=2, unit="epoch", **options)
    jump.attach(model, opt, eval_fn=eval_loss_fn(xv, yv), total=EPOCHS)
    for epoch in range(EPOCHS):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    return model, jump


def _plain():
    x, y, _, _ = digits()
    model = mlp(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(EPOCHS):
        train_epoch(model, opt, x, y, epoch)
    return model


def test_after_max_rejections_no_more_attempts_or_snapshots(caplog):
    with caplog.at_level(logging.INFO, logger="gfm_accel.jump.core"):
        model, jump = _run(FarAwayForecaster(), max_rejections=2)
    plain_model, jump_without = _run(FarAwayForecaster(), max_rejections=None)
    assert [r.accepted for r in jump.history] == [False, False]  # stopped after two
    assert len(jump_without.history) > 2 and not any(r.accepted for r in jump_without.history)
    assert jump.schedule.finished() and jump.schedule.rejections == 2
    # recording stopped too: the newest snapshot is the one the last attempt was made at
    assert jump.recorder.steps[-1] == jump.history[-1].step < EPOCHS - 1
    assert jump_without.recorder.steps[-1] == EPOCHS
    assert "max_rejections" in caplog.text
    off_at = jump.history[-1].epoch
    assert jump.summary() == f"GFMJump: 0/2 jumps accepted; off from epoch {off_at} (2 attempts in a row not kept)"
    assert jump_without.summary() == f"GFMJump: 0/{len(jump_without.history)} jumps accepted"
    # every jump was rolled back bit for bit, so both runs equal plain training exactly
    torch.testing.assert_close(flatten_params(model), flatten_params(_plain()), rtol=0, atol=0)
    torch.testing.assert_close(flatten_params(plain_model), flatten_params(model), rtol=0, atol=0)


def test_an_accepted_jump_resets_the_count():
    # calls 1 and 3 are far away (rejected), 2 is the line (accepted on this run): no two in a row
    forecaster = ScriptedForecaster(LinearExtrapolationForecaster(), bad={1, 3})
    _, jump = _run(forecaster, max_rejections=2, tolerance=0.5)
    outcomes = [r.accepted for r in jump.history]
    assert outcomes[:3] == [False, True, False]
    assert len(outcomes) > 3  # the single rejection after an accepted jump did not stop it


def test_the_count_survives_a_resume():
    _, jump = _run(FarAwayForecaster(), max_rejections=3)
    state = jump.state_dict()
    assert state["rejections"] == 3
    again = GFMJump(FarAwayForecaster(), n=2, horizon=2, every=2, unit="epoch", max_rejections=3)
    x, y, xv, yv = digits()
    model = mlp(0)
    again.attach(model, torch.optim.SGD(model.parameters(), lr=0.05), eval_fn=eval_loss_fn(xv, yv), total=EPOCHS)
    again.load_state_dict(state)
    assert again.schedule.rejections == 3 and again.schedule.finished()


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_values_are_refused(value):
    with pytest.raises(ValueError, match="max_rejections"):
        JumpConfig(max_rejections=value)


def test_defaults_are_the_issue_15_choice_and_far_mode_ignores_the_count():
    cfg = JumpConfig()
    assert cfg.max_rejections == 3 and cfg.tolerance == -0.01
    assert JumpConfig(mode="far").max_rejections == 3  # valid; far mode makes a single attempt anyway
