"""Resume: an interrupted-and-resumed run makes exactly the jumps of an uninterrupted one."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file

from gfm_accel._io import FileFormatError
from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump
from gfm_accel.params import flatten_params

from _jump_helpers import digits, eval_loss_fn, mlp, train_epoch

EPOCHS = 8
CONFIGS = {
    # periodic: windows of 3 snapshots, a jump attempt every 2 snapshots (steps 2, 4, ...)
    "periodic": dict(mode="periodic", n=2, horizon=2, every=2, unit="epoch", tolerance=0.01, optimizer_state="reset"),
    # far: prefix w_0..w_3, jump once after epoch index 2 to m = 8
    "far": dict(mode="far", n=3, alpha=0.5, unit="epoch", tolerance=0.01, optimizer_state="reset"),
}


def _setup(config):
    x, y, xv, yv = digits(256, 128)
    model = mlp(seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    jump = GFMJump(LinearExtrapolationForecaster(), **config)
    return model, opt, jump, (x, y, xv, yv)


def _history(jump):
    return [{k: v for k, v in r.to_dict().items() if not k.endswith("seconds")} for r in jump.history]


def _run_uninterrupted(config):
    model, opt, jump, (x, y, xv, yv) = _setup(config)
    jump.attach(model, opt, eval_fn=eval_loss_fn(xv, yv), total=EPOCHS)
    for epoch in range(EPOCHS):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    return flatten_params(model), _history(jump)


def _run_interrupted(config, stop_after, tmp_path, load_before_attach):
    # Part 1: train, then checkpoint (model + optimizer + jump state) after `stop_after` epochs.
    model, opt, jump, (x, y, xv, yv) = _setup(config)
    jump.attach(model, opt, eval_fn=eval_loss_fn(xv, yv), total=EPOCHS)
    for epoch in range(stop_after):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    opt_state = copy.deepcopy(opt.state_dict())  # the test's stand-in for the framework's optimizer checkpoint
    jump.save_state(tmp_path / "gfm_jump.safetensors")
    seen = len(jump.recorder)
    del model, opt, jump

    # Part 2: fresh objects, as in a new process.
    model, opt, jump, (x, y, xv, yv) = _setup(config)
    model.load_state_dict(load_file(tmp_path / "model.safetensors"))
    opt.load_state_dict(opt_state)
    if load_before_attach:
        jump.load_state(tmp_path / "gfm_jump.safetensors")
        jump.attach(model, opt, eval_fn=eval_loss_fn(xv, yv), total=EPOCHS)
    else:
        jump.attach(model, opt, eval_fn=eval_loss_fn(xv, yv), total=EPOCHS)
        jump.load_state(tmp_path / "gfm_jump.safetensors")
    assert len(jump.recorder) == seen  # no lost snapshot, no extra w_0
    for epoch in range(stop_after, EPOCHS):
        train_epoch(model, opt, x, y, epoch)
        jump.on_epoch_end(epoch)
    return flatten_params(model), _history(jump)


@pytest.mark.parametrize("mode", ["periodic", "far"])
@pytest.mark.parametrize("stop_after, load_before_attach", [(1, False), (2, True), (5, False)])
def test_resumed_run_matches_uninterrupted(mode, stop_after, load_before_attach, tmp_path):
    config = CONFIGS[mode]
    w_ref, hist_ref = _run_uninterrupted(config)
    steps = [h["step"] for h in hist_ref]
    if mode == "periodic":  # a jump every 2 epochs; a rejected one leaves the window sliding
        assert steps[:2] == [2, 4] and all(s % 2 == 0 for s in steps) and len(steps) >= 3
    else:
        assert steps == [3]
    assert any(h["accepted"] for h in hist_ref)
    w, hist = _run_interrupted(config, stop_after, tmp_path, load_before_attach)
    assert hist == hist_ref  # same jumps, none lost, none doubled
    assert torch.equal(w, w_ref)


def test_state_dict_round_trip_and_schedule_mismatch(tmp_path):
    model, opt, jump, (x, y, _, _) = _setup(CONFIGS["periodic"])
    jump.attach(model, opt)
    train_epoch(model, opt, x, y, 0)
    jump.on_epoch_end(0)
    state = jump.state_dict()
    assert state["epochs"] == 1 and state["seg"] == 1 and state["recorder"]["steps"] == [0, 1]
    other = GFMJump(LinearExtrapolationForecaster(), mode="periodic", n=3, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=3, every=3)
    other.attach(mlp(seed=1))
    with pytest.raises(ValueError, match="different schedule: n=2 .now 3."):
        other.load_state_dict(state)
    with pytest.raises(FileFormatError, match="no such file"):
        other.load_state(tmp_path / "missing.safetensors")
    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors", metadata={"format": "something"})
    with pytest.raises(FileFormatError, match="not a GFMJump state file"):
        other.load_state(tmp_path / "other.safetensors")
