"""Every name in gfm_accel.lab.generate.__all__ (and each module's __all__) imports."""

import importlib

import pytest

MODULES = ["gfm_accel.lab.generate", "gfm_accel.lab.optim", "gfm_accel.lab.generate.linreg", "gfm_accel.lab.generate.mlp",
           "gfm_accel.lab.generate.nets", "gfm_accel.lab.datasets", "gfm_accel.lab.training",
           "gfm_accel.lab.generate.generate", "gfm_accel.lab.generate.cli", "gfm_accel.lab.generate._util"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_import(name):
    mod = importlib.import_module(name)
    assert isinstance(mod.__all__, list) and mod.__all__
    for attr in mod.__all__:
        assert getattr(mod, attr) is not None, attr


def test_package_exports_cover_submodules():
    import gfm_accel.lab.generate as data

    assert {"generate_linreg", "train_classifier", "CellCNN", "load_image_dataset"} <= set(data.__all__)
    assert len(set(data.__all__)) == len(data.__all__)


@pytest.mark.parametrize("name", [m for m in MODULES if m not in ("gfm_accel.lab.generate.cli", "gfm_accel.lab.generate._util")])
def test_docstring_examples_run(name):
    import doctest

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
