"""Import boundaries: gfm_accel never imports the frameworks; adapters name the extra when missing."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_gfm_accel_never_imports_transformers_or_lightning():
    code = (
        "import sys, gfm_accel, gfm_accel.integrations, gfm_accel.jump.core\n"
        "from gfm_accel.forecast.simple import LinearExtrapolationForecaster\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('transformers', 'lightning', 'pytorch_lightning', 'accelerate'))\n"
        "print('LOADED', bad)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "module, framework, extra",
    [("gfm_accel.integrations.hf", "transformers", "gfm_accel[hf]"), ("gfm_accel.integrations.lightning", "lightning", "gfm_accel[lightning]")],
)
def test_missing_framework_gives_an_error_naming_the_extra(module, framework, extra):
    # sys.modules[name] = None makes the package look absent to find_spec and import.
    code = (
        f"import sys; sys.modules[{framework!r}] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print('ERR', exc)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "ERR" in proc.stdout and extra in proc.stdout and framework in proc.stdout, proc.stdout


@pytest.mark.parametrize("module", ["gfm_accel.integrations.hf", "gfm_accel.integrations.lightning"])
def test_adapters_export_gfmjump(module):
    import importlib

    mod = importlib.import_module(module)
    assert "GFMJump" in mod.__all__
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_star_import_works_without_either_framework():
    # Before: __all__ = ["hf", "lightning"], so a star import imported both adapters and
    # failed unless both extras were installed.
    code = (
        "import sys; sys.modules['transformers'] = None; sys.modules['lightning'] = None\n"
        "from gfm_accel.integrations import *\n"
        "import gfm_accel.integrations as i\n"
        "print('OK', i.__all__, 'gfm_accel.integrations.hf' in sys.modules)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "OK [] False" in proc.stdout, proc.stdout
