"""gfm_accel.lab.jumps: schedule text -> JumpConfig with every schedule value explicit."""

from dataclasses import fields

import pytest

from gfm_accel.jump import JumpConfig, target_m
from gfm_accel.lab.jumps import LAB_SCHEDULE, jump_config, parse_schedule


def test_every_lab_value_is_written_out():
    assert set(LAB_SCHEDULE) <= {f.name for f in fields(JumpConfig)}
    cfg = jump_config("periodic:n=4,K=10,P=5,steps=5,tol=0.3,opt=keep")
    for key, value in LAB_SCHEDULE.items():
        expected = {"horizon": 10, "every": 5, "unit": "step", "every_n_steps": 5, "tolerance": 0.3,
                    "optimizer_state": "keep"}.get(key, value)
        assert getattr(cfg, key) == expected, key
    assert jump_config(mode="far", n=2, tolerance=1.0).tolerance == 1.0
    assert jump_config(parse_schedule("far:n=9")).n == 9


def test_target_m():
    assert target_m(jump_config("periodic:n=4,K=10,P=5"), 40) == 14
    assert target_m(jump_config("periodic:n=3"), 40) == 6  # K defaults to n
    assert target_m(jump_config("far:n=4"), 40) == 40
    assert target_m(jump_config("far:n=4,m=30"), 40) == 30


def test_bad_schedule_text():
    with pytest.raises(ValueError, match="mode must be 'far' or 'periodic'"):
        jump_config("sideways:n=4")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_schedule("far:q=1")
