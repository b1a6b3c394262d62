"""Tests of gfm_accel.forecast.coordinate.config."""

from __future__ import annotations

import pytest

from gfm_accel.forecast.coordinate import NORMALIZATION, CoordinateBackend, CoordinateConfig


def test_config_round_trip_and_validation():
    cfg = CoordinateConfig(hidden=16, horizons=(1, 5), n_choices=[0, 2])
    assert CoordinateConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.n_choices == (0, 2)
    for bad in ({"path": "nope"}, {"condition": "x"}, {"solver": "heun"}, {"n": 5, "m": 5}, {"hidden": 0},
                {"strides": ()}, {"tensor_balanced": 2.0}, {"zeta": -1.0}):
        with pytest.raises(ValueError):
            CoordinateConfig(**bad)
    with pytest.raises(ValueError, match="unknown CoordinateConfig option"):
        CoordinateConfig.from_dict({"bogus": 1})
    assert CoordinateConfig(step=0.1).num_steps is None


def test_from_config_checks_normalization():
    b = CoordinateBackend(hidden=8)
    cfg = b.config_dict()
    assert cfg["normalization"] == NORMALIZATION
    assert CoordinateBackend.from_config(cfg).config == b.config
    with pytest.raises(ValueError, match="normalization"):
        CoordinateBackend.from_config({**cfg, "normalization": "other"})
