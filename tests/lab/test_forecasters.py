"""gfm_accel.lab.forecasters: the one forecaster-by-name registry and the forecaster file hash."""

import hashlib

import pytest
import torch

from gfm_accel.forecast.simple import LinearExtrapolationForecaster, LineFitForecaster
from gfm_accel.lab.forecasters import FORECASTERS, forecaster_sha256, make_forecaster


def test_training_free_names():
    assert isinstance(make_forecaster("linear"), LinearExtrapolationForecaster)
    assert isinstance(make_forecaster("linefit"), LineFitForecaster)
    assert FORECASTERS == ("gfm", "linear", "linefit", "ridge_coord", "wnn")


def test_fitted_names_need_a_source_and_unknown_names_fail():
    with pytest.raises(ValueError, match="ridge_coord needs source trajectories"):
        make_forecaster("ridge_coord", n=2, m=6)
    with pytest.raises(ValueError, match="source trajectories hold T=5 snapshots, need m\\+1=7"):
        make_forecaster("wnn", n=2, m=6, source=(torch.zeros(2, 5, 3), None))
    with pytest.raises(ValueError, match="unknown forecaster 'nope'"):
        make_forecaster("nope")


def test_sha256(tmp_path):
    f = tmp_path / "f.safetensors"
    f.write_bytes(b"abc")
    assert forecaster_sha256(str(f)) == hashlib.sha256(b"abc").hexdigest()
    assert forecaster_sha256("linear") is None and forecaster_sha256("ridge_coord") is None
    assert forecaster_sha256(str(tmp_path / "missing.safetensors")) is None
    assert forecaster_sha256("gfm") == forecaster_sha256("shipped") == forecaster_sha256(None)
