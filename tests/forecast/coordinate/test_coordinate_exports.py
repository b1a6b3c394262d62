"""Every module of the coordinate subpackage has an __all__ of importable names; the old imports work."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["", ".config", ".features", ".field", ".pooled", ".windows", ".train", ".infer", ".backend"]


@pytest.mark.parametrize("suffix", MODULES)
def test_all_names_import(suffix):
    mod = importlib.import_module(f"gfm_accel.forecast.coordinate{suffix}")
    assert mod.__all__ and all(isinstance(n, str) for n in mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_public_imports_keep_working():
    import gfm_accel.forecast as forecast
    from gfm_accel.forecast.coordinate import CoordinateBackend, CoordinateConfig

    for name in forecast.__all__:
        assert getattr(forecast, name) is not None
    assert forecast.CoordinateBackend is CoordinateBackend and forecast.CoordinateConfig is CoordinateConfig
