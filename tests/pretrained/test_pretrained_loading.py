"""Loading the shipped forecaster: no global RNG drawn, clear errors for bad paths and bad bytes."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import torch

from gfm_accel._io import FileFormatError
from gfm_accel.params import ParamSpec
from gfm_accel.pretrained import PRETRAINED_PATH, SHIPPED_TENSORS_SHA256, _load, pretrained_forecaster


def _rng_states():
    return torch.random.get_rng_state().clone(), np.random.get_state(), random.getstate()


def _assert_same_rng(before, after):
    assert torch.equal(before[0], after[0]), "torch's global RNG advanced"
    assert before[1][0] == after[1][0] and np.array_equal(before[1][1], after[1][1]) and before[1][2:] == after[1][2:], \
        "numpy's global RNG advanced"
    assert before[2] == after[2], "Python's random advanced"


def test_load_and_forecast_draw_no_global_rng():
    _load.cache_clear()  # a real load from disk, not the cached object
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(5)
    before = _rng_states()
    f = pretrained_forecaster()
    spec = ParamSpec.flat(40)
    prefix = torch.linspace(0, 1, 5 * 40).view(5, 40)
    out = f.forecast(prefix, 14, spec=spec)
    assert torch.isfinite(out).all()
    _assert_same_rng(before, _rng_states())


def test_a_missing_path_says_it_does_not_exist(tmp_path):
    missing = tmp_path / "no" / "such.safetensors"
    with pytest.raises(FileNotFoundError, match=f"forecaster file {missing} does not exist") as err:
        pretrained_forecaster(missing)
    assert "build_pretrained" not in str(err.value)  # not the shipped file's rebuild hint
    with pytest.raises(FileNotFoundError, match="/no/such does not exist"):
        pretrained_forecaster("/no/such")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        pretrained_forecaster(tmp_path)


def test_the_shipped_weights_match_their_pinned_checksum(tmp_path):
    from gfm_accel._io import load_tensors
    from gfm_accel.forecast.forecaster import tensors_digest

    assert tensors_digest(load_tensors(PRETRAINED_PATH)) == SHIPPED_TENSORS_SHA256


def test_corrupted_shipped_bytes_fail_at_load(tmp_path, monkeypatch):
    """A copy of the shipped file with one weight changed (finite, header intact) is rejected."""
    import json

    import gfm_accel.pretrained as pretrained

    copy = tmp_path / "gfm_coordinate.safetensors"
    shutil.copy(PRETRAINED_PATH, copy)
    raw = bytearray(copy.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    start, _ = json.loads(raw[8 : 8 + n])["net.out.bias"]["data_offsets"]
    raw[8 + n + start : 8 + n + start + 4] = np.float32(0.5).tobytes()
    copy.write_bytes(bytes(raw))
    monkeypatch.setattr(pretrained, "PRETRAINED_PATH", copy)
    _load.cache_clear()
    try:
        with pytest.raises(FileFormatError, match=f"{copy}: the tensor data does not match"):
            pretrained_forecaster()
        raw[8 + n + start : 8 + n + start + 4] = np.float32("nan").tobytes()
        copy.write_bytes(bytes(raw))
        _load.cache_clear()
        with pytest.raises(FileFormatError, match=f"{copy}: the tensor data does not match"):
            pretrained_forecaster()
    finally:
        _load.cache_clear()
