"""outer_momentum: the last accepted jump's displacement carried into the next jump (OuterMomentum)."""

import copy

import pytest
import torch

from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import GFMJump
from gfm_accel.jump.momentum import OuterMomentum

from _jump_helpers import Quadratic, ScriptedForecaster

# n=1, K=2, P=1, one SGD step per "epoch": a jump after every step, from the window (w_{n-1}, w_n).
BASE = dict(mode="periodic", n=1, horizon=2, every=1, unit="epoch", outer_momentum=0.5)


def _loss(model):
    return float(model())


def _history(jump):
    return [{k: v for k, v in r.to_dict().items() if not k.endswith("seconds")} for r in jump.history]


@pytest.mark.parametrize(
    "alpha, first, second",
    [
        # alpha=1: jump 1 from w1=(0.9, 1.9), w0=(1, 2): w1 + 2 (w1 - w0) = (0.7, 1.7), v1 = (-0.2, -0.2).
        # SGD: w2 = (0.63, 1.615); forecast part 2 (w2 - (0.7, 1.7)) = (-0.14, -0.17);
        # applied = (-0.14, -0.17) + 0.5 v1 = (-0.24, -0.27): w = (0.39, 1.345).
        (1.0, (0.7, 1.7), (0.39, 1.345)),
        # alpha=0.5: jump 1 to w1 + 0.5 (-0.2, -0.2) = (0.8, 1.8), v1 = (-0.1, -0.1); w2 = (0.72, 1.71);
        # applied = 0.5 * 2 (w2 - (0.8, 1.8)) + 0.5 v1 (momentum not scaled by alpha) = (-0.13, -0.14).
        (0.5, (0.8, 1.8), (0.59, 1.57)),
    ],
)
def test_second_jump_adds_beta_times_the_first_displacement(alpha, first, second):
    model = Quadratic()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    jump = GFMJump(LinearExtrapolationForecaster(), guard=False, alpha=alpha, **BASE).attach(model, opt)
    model.sgd_step(opt)
    r1 = jump.on_epoch_end(0)
    torch.testing.assert_close(model.w.detach(), torch.tensor(first), rtol=0, atol=1e-6)
    v1 = torch.tensor(first) - torch.tensor((0.9, 1.9))
    torch.testing.assert_close(jump.momentum.velocity, v1, rtol=0, atol=1e-6)
    assert r1.accepted and r1.momentum_norm == 0.0 and r1.jump_norm == pytest.approx(float(v1.norm()), rel=1e-5)
    w_before = model.w.detach().clone()
    model.sgd_step(opt)
    r2 = jump.on_epoch_end(1)
    w2 = w_before * torch.tensor((0.9, 0.95))  # one SGD step from the jumped weights
    applied = torch.tensor(second) - w2
    torch.testing.assert_close(model.w.detach(), torch.tensor(second), rtol=0, atol=1e-6)
    torch.testing.assert_close(jump.momentum.velocity, applied, rtol=0, atol=1e-6)
    assert r2.accepted and r2.alpha == alpha and (r2.m, r2.horizon) == (3, 2)
    assert r2.momentum_norm == pytest.approx(0.5 * float(v1.norm()), rel=1e-5)
    assert r2.jump_norm == pytest.approx(float(applied.norm()), rel=1e-5)
    # without momentum the same second jump lands elsewhere (the test can fail)
    no_momentum = w2 + alpha * 2 * (w2 - w_before)
    assert (model.w.detach() - no_momentum).abs().min() > 0.04


def test_a_rejected_jump_restores_everything_and_resets_v():
    model = Quadratic()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    forecaster = ScriptedForecaster(LinearExtrapolationForecaster(), bad={2})
    jump = GFMJump(forecaster, tolerance=0.0, **BASE).attach(model, opt, eval_fn=_loss)
    model.sgd_step(opt)
    assert jump.on_epoch_end(0).accepted  # (0.9, 1.9) -> (0.7, 1.7): v = (-0.2, -0.2)
    model.sgd_step(opt)
    w_before, opt_before = model.w.detach().clone(), copy.deepcopy(opt.state_dict())
    r2 = jump.on_epoch_end(1)  # far away, with momentum in every candidate: all rejected
    assert not r2.accepted and r2.reason == "rejected by the guard" and len(r2.alphas_tried) == 3
    assert torch.equal(model.w.detach(), w_before)
    after = opt.state_dict()
    assert after["param_groups"] == opt_before["param_groups"]
    assert torch.equal(after["state"][0]["momentum_buffer"], opt_before["state"][0]["momentum_buffer"])
    assert jump.momentum.velocity is None
    # jump 3 from the sliding window (w2, w3): the forecast part alone, no momentum
    w2 = w_before
    model.sgd_step(opt)
    w3 = model.w.detach().clone()
    r3 = jump.on_epoch_end(2)
    assert r3.accepted and r3.momentum_norm == 0.0
    forecast_part = 2 * (w3 - w2)
    torch.testing.assert_close(model.w.detach() - w3, forecast_part, rtol=0, atol=1e-6)
    torch.testing.assert_close(jump.momentum.velocity, forecast_part, rtol=0, atol=1e-6)
    # hand-computed: SGD(momentum=0.9) gives w2 = (0.54, 1.525), w3 = (0.342, 1.29125)
    torch.testing.assert_close(w3, torch.tensor((0.342, 1.29125)), rtol=0, atol=1e-6)


def test_a_skipped_jump_resets_v():
    model = Quadratic()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class NaNSecond(LinearExtrapolationForecaster):
        calls = 0

        def forecast(self, prefix, m, *, spec=None):
            self.calls += 1
            out = super().forecast(prefix, m, spec=spec)
            return out * float("nan") if self.calls == 2 else out

    jump = GFMJump(NaNSecond(), guard=False, **BASE).attach(model, opt)
    model.sgd_step(opt)
    jump.on_epoch_end(0)
    assert jump.momentum.velocity is not None
    model.sgd_step(opt)
    assert jump.on_epoch_end(1).reason == "skipped: forecast NaN/Inf"
    assert jump.momentum.velocity is None


EPOCHS = 6


def _run(stop_after=None, tmp_path=None, load_before_attach=False, drop_velocity=False):
    cfg = dict(BASE, tolerance=0.3)
    model = Quadratic()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    jump = GFMJump(LinearExtrapolationForecaster(), **cfg).attach(model, opt, eval_fn=_loss, total=EPOCHS)
    for epoch in range(EPOCHS if stop_after is None else stop_after):
        model.sgd_step(opt)
        jump.on_epoch_end(epoch)
    if stop_after is None:
        return model.w.detach().clone(), _history(jump)
    assert jump.momentum.velocity is not None  # v matters for the jumps after the resume
    jump.save_state(tmp_path / "jump.safetensors")
    saved_v = jump.momentum.velocity.clone()
    weights, opt_state = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    model = Quadratic()
    model.load_state_dict(weights)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.load_state_dict(opt_state)
    jump = GFMJump(LinearExtrapolationForecaster(), **cfg)
    if load_before_attach:
        jump.load_state(tmp_path / "jump.safetensors")
        jump.attach(model, opt, eval_fn=_loss, total=EPOCHS)
    else:
        jump.attach(model, opt, eval_fn=_loss, total=EPOCHS)
        jump.load_state(tmp_path / "jump.safetensors")
    assert torch.equal(jump.momentum.velocity, saved_v)
    if drop_velocity:
        jump.momentum.rejected()
    for epoch in range(stop_after, EPOCHS):
        model.sgd_step(opt)
        jump.on_epoch_end(epoch)
    return model.w.detach().clone(), _history(jump)


@pytest.mark.parametrize("load_before_attach", [False, True])
def test_resume_mid_run_makes_the_same_jumps(tmp_path, load_before_attach):
    w_ref, hist_ref = _run()
    # jumps at counters 1..4 (counter + K <= 6), all accepted; momentum in jumps 2..4
    assert [(h["step"], h["accepted"]) for h in hist_ref] == [(1, True), (2, True), (3, True), (4, True)]
    assert all(h["momentum_norm"] > 0 for h in hist_ref[1:])
    w, hist = _run(stop_after=2, tmp_path=tmp_path, load_before_attach=load_before_attach)
    assert hist == hist_ref
    assert torch.equal(w, w_ref)
    w_lost, _ = _run(stop_after=2, tmp_path=tmp_path, drop_velocity=True)
    assert not torch.allclose(w_lost, w_ref)  # without v the resumed run would differ


def test_state_validation_and_off_by_default():
    mom = OuterMomentum(0.5)
    with pytest.raises(ValueError, match=r"velocity has shape \(3,\), expected \(2,\)"):
        mom.load_state_dict({"velocity": torch.zeros(3)}, numel=2)
    off = OuterMomentum(0.0)
    off.accepted(torch.ones(2))
    assert off.velocity is None and off.term(1.0) is None  # beta=0 keeps no (D,) buffer
    model = Quadratic()
    jump = GFMJump(LinearExtrapolationForecaster(), n=1, horizon=2, every=1, unit="epoch", guard=False).attach(model)
    assert jump.state_dict()["momentum"] == {"velocity": None}
