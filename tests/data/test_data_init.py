"""Every name in gfm_accel.data.__all__ (and each module's __all__) imports."""

import importlib

import pytest

MODULES = ["gfm_accel.data", "gfm_accel.data.optim", "gfm_accel.data.linreg", "gfm_accel.data.mlp",
           "gfm_accel.data.nets", "gfm_accel.data.vision", "gfm_accel.data.classifier",
           "gfm_accel.data.generate", "gfm_accel.data.cli", "gfm_accel.data._util"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_import(name):
    mod = importlib.import_module(name)
    assert isinstance(mod.__all__, list) and mod.__all__
    for attr in mod.__all__:
        assert getattr(mod, attr) is not None, attr


def test_package_exports_cover_submodules():
    import gfm_accel.data as data

    assert {"generate_linreg", "train_classifier", "CellCNN", "load_image_dataset"} <= set(data.__all__)
    assert len(set(data.__all__)) == len(data.__all__)


@pytest.mark.parametrize("name", [m for m in MODULES if m not in ("gfm_accel.data.cli", "gfm_accel.data._util")])
def test_docstring_examples_run(name):
    import doctest

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
