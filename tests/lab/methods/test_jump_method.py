"""The jump machinery behind the Method interface (GFMJump's public API only)."""

import pytest
import torch
from _method_helpers import adamw, data, mlp, run

from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import JumpConfig
from gfm_accel.lab.methods import Jump


def test_jumps_after_steps_with_the_guard_on_the_guard_split():
    x, y = data()
    xg, yg = data(seed=1)
    seen = []

    def guard(m):
        seen.append(True)
        with torch.no_grad():
            return (m(xg) - yg).pow(2).mean().item()

    model = mlp()
    cfg = JumpConfig(unit="step", every_n_steps=2, n=2, horizon=2, every=2, jump_past_end=True)
    method = Jump(LinearExtrapolationForecaster(), cfg).attach(
        model, adamw(), total_steps=24, schedule="warmup_cosine", warmup=0.1, guard_fn=guard)
    run(method, model, 24, (x, y))
    history = method.jump.history
    assert len(history) >= 3 and seen  # a jump every 2 * 2 steps, guarded
    assert [r.step for r in history][:2] == [4, 8]
    assert method.hparams["config"]["every_n_steps"] == 2
    assert method.state_dict()["extra"]["jump"]["steps"] == 24
    named = Jump(LinearExtrapolationForecaster(), cfg, name="linefit")
    assert named.NAME == "linefit" and Jump.NAME == "jump"


def test_needs_a_step_config():
    with pytest.raises(ValueError, match='unit="step"'):
        Jump(LinearExtrapolationForecaster(), JumpConfig(unit="epoch"))
    with pytest.raises(TypeError, match="JumpConfig"):
        Jump(LinearExtrapolationForecaster(), {"unit": "step"})
