"""JumpConfig validation and JSON round trips; JumpRecord; exported names."""

import json

import pytest

import gfm_accel
import gfm_accel.jump as jump_pkg
from gfm_accel.jump import JumpConfig, JumpRecord


def test_every_exported_name_imports():
    for name in jump_pkg.__all__:
        assert getattr(jump_pkg, name) is not None
    assert gfm_accel.GFMJump is jump_pkg.GFMJump


def test_defaults_are_the_recommended_schedule_a():
    # Issue 16: the default of JumpConfig()/GFMJump() is the configuration recommended for
    # users' own runs (docs/acceleration.md, schedule A): periodic, n=4, K=10, P=5,
    # snapshots every 5 optimizer steps, optimizer state kept; issue 15: the guard needs a 1 %
    # drop (tolerance -0.01) and jumping stops after 3 attempts in a row not accepted.
    cfg = JumpConfig()
    assert (cfg.mode, cfg.n, cfg.unit, cfg.every_n_steps) == ("periodic", 4, "step", 5)
    assert (cfg.optimizer_state, cfg.tolerance, cfg.include_unoptimized) == ("keep", -0.01, False)
    assert cfg.max_rejections == 3
    assert cfg.periodic_horizon == 10 and cfg.periodic_every == 5
    assert JumpConfig(n=7).periodic_every == 7  # P >= n: a fresh window of n+1 snapshots
    assert JumpConfig(unit="epoch", horizon=4, every=4).periodic_horizon == 4
    assert cfg.candidate_alphas(guarded=True) == (1.0, 0.5, 0.25)
    assert cfg.candidate_alphas(guarded=False) == (1.0,)
    assert JumpConfig(alpha=0.5).candidate_alphas(True) == (0.5, 0.25, 0.125)


def test_policy_options_are_off_by_default_and_round_trip():
    cfg = JumpConfig()
    assert (cfg.horizon_decay, cfg.horizon_min, cfg.outer_momentum) == ("none", 1, 0.0)
    on = JumpConfig(horizon_decay="cosine", horizon_min=2, outer_momentum=0.9)
    assert JumpConfig.from_json(on.to_json()) == on
    old = JumpRecord.from_dict({"step": 4, "epoch": 4, "mode": "far", "n": 4, "m": 20})  # a record from before
    assert old.horizon is None and old.momentum_norm == 0.0


def test_json_round_trip():
    cfg = JumpConfig(mode="far", n=3, horizon=20, unit="step", every_n_steps=5, alphas=[1.0, 0.3], guard=True)
    assert cfg.alphas == (1.0, 0.3)
    back = JumpConfig.from_json(cfg.to_json())
    assert back == cfg
    assert json.loads(cfg.to_json())["every_n_steps"] == 5


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"mode": "sometimes"}, "mode"),
        ({"unit": "batch"}, "unit"),
        ({"n": 0}, "n must"),
        ({"mode": "far", "n": 4, "horizon": 4}, "larger than n=4"),
        ({"every": 2, "n": 4}, "every=2 must be >= n=4"),
        ({"unit": "step", "every_n_steps": None}, "every_n_steps"),
        ({"include_unoptimized": 1}, "include_unoptimized"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"alphas": ()}, "at least one"),
        ({"alphas": (1.0, 1.5)}, "(0, 1]"),
        ({"tolerance": -1.0}, "tolerance must be a finite number > -1"),
        ({"tolerance": float("inf")}, "tolerance"),
        ({"optimizer_state": "zero"}, "optimizer_state"),
        ({"refresh_bn_batches": -1}, "refresh_bn_batches"),
        ({"guard": "yes"}, "guard"),
        ({"snapshot_dtype": "int8"}, "snapshot_dtype"),
        ({"jump_past_end": "no"}, "jump_past_end"),
        ({"horizon_decay": "exp"}, "horizon_decay must be one of"),
        ({"horizon_decay": "linear", "mode": "far"}, 'horizon_decay=.linear. needs mode="periodic"'),
        ({"horizon_min": 0}, "horizon_min must be an integer >= 1"),
        ({"horizon_decay": "linear", "horizon": 3, "horizon_min": 4}, "horizon_min=4 must be <= the horizon K=3"),
        ({"outer_momentum": 1.0}, "outer_momentum must be a number in [0, 1)"),
        ({"outer_momentum": -0.1}, "outer_momentum must be a number in [0, 1)"),
        ({"outer_momentum": True}, "outer_momentum"),
        ({"outer_momentum": 0.5, "mode": "far"}, 'outer_momentum > 0 needs mode="periodic"'),
    ],
)
def test_invalid_options_name_the_problem(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        JumpConfig(**kwargs)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown JumpConfig option.*'horizn'.*valid options"):
        JumpConfig.from_dict({"horizn": 3})
    with pytest.raises(ValueError, match="horizn"):
        gfm_accel.GFMJump(horizn=3)


def test_record_round_trip_and_log_dict():
    r = JumpRecord(step=4, epoch=4, mode="far", n=4, m=20, alphas_tried=[1.0, 0.5], loss_before=1.0,
                   losses_after=[2.0, 0.9], accepted=True, alpha=0.5, seconds=0.25, reason="accepted")
    assert JumpRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    logd = r.log_dict()
    assert logd["gfm/accepted"] == 1.0 and logd["gfm/alpha"] == 0.5 and logd["gfm/loss_after"] == 0.9
    assert logd["gfm/tries"] == 2.0


def test_previous_defaults_rebuild_the_old_behaviour():
    from gfm_accel.jump.config import previous_defaults

    old = JumpConfig(**{**previous_defaults(3), "n": 3})
    assert (old.unit, old.tolerance, old.optimizer_state) == ("epoch", 0.01, "reset")
    assert old.periodic_horizon == 3 and old.periodic_every == 3
    far = JumpConfig(mode="far", **previous_defaults(4, "far"))
    assert far.horizon is None and far.unit == "epoch"
