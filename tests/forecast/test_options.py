"""The options shared by every GFM field: declared once, validated once, JSON round-trip."""

from __future__ import annotations

import json

import pytest

from gfm_accel.forecast.coordinate import CoordinateConfig
from gfm_accel.forecast.dense import DenseConfig
from gfm_accel.forecast.forecaster import GFMConfig
from gfm_accel.forecast.options import CONDITIONS, FieldOptions, field_option_names


def test_every_config_shares_the_field_options():
    names = field_option_names()
    assert names == ("n", "m", "condition", "path", "beta", "gamma", "zeta", "hidden", "solver", "step", "tau")
    for cls in (DenseConfig, CoordinateConfig, GFMConfig):
        assert issubclass(cls, FieldOptions)
    # the coordinate variant changes defaults, not the options themselves
    c = CoordinateConfig()
    assert (c.condition, c.path, c.hidden, c.solver) == ("prefix", "from_last", 32, "midpoint")
    assert CONDITIONS == ("none", "prefix")


@pytest.mark.parametrize("cls", [FieldOptions, DenseConfig, CoordinateConfig, GFMConfig])
@pytest.mark.parametrize("bad, message", [
    ({"n": -1}, "n must be an integer >= 0"), ({"n": 4, "m": 4}, "m must be an integer larger than n=4"),
    ({"condition": "full"}, "unknown condition 'full'"), ({"path": "curved"}, "unknown path 'curved'"),
    ({"zeta": -1.0}, "zeta must be a number >= 0"), ({"tau": "x"}, "tau must be a number"),
    ({"hidden": 0}, "hidden must be a positive integer"), ({"solver": "dopri"}, "unknown solver 'dopri'"),
    ({"step": 2.0}, r"step must be in \(0, 1\]"),
])
def test_one_set_of_messages(cls, bad, message):
    with pytest.raises(ValueError, match=message):
        cls(**bad)


@pytest.mark.parametrize("cls", [DenseConfig, CoordinateConfig, GFMConfig])
def test_json_round_trip_and_unknown_keys(cls):
    cfg = cls(n=2, m=9, beta=2)
    assert cfg.beta == 2.0 and isinstance(cfg.beta, float)
    assert cls.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ValueError, match=f"unknown {cls.__name__} option"):
        cls.from_dict({"hiden": 8})
