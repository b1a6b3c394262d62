"""Packaging promises: public names import, light top-level import, every package installed."""

import configparser
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import gfm_accel

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", gfm_accel.__all__)
def test_every_public_name_imports(name):
    assert getattr(gfm_accel, name) is not None


def test_import_is_light():
    code = (
        "import sys, gfm_accel, gfm_accel.params, gfm_accel.recorder, gfm_accel.trajectories;"
        "bad=[m for m in ('transformers','lightning','pytorch_lightning','matplotlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stdout + out.stderr


def _packages_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}


def test_every_package_folder_is_listed_in_setup_cfg():
    listed = _packages_in_setup_cfg()
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gfm_accel").rglob("__init__.py") if "__pycache__" not in p.parts}
    found.add("gfm_accel.integrations")
    assert found <= listed, f"add to setup.cfg [options] packages: {sorted(found - listed)}"


def test_integrations_mapped_to_top_level_folder():
    mod = importlib.import_module("gfm_accel.integrations")
    assert Path(mod.__file__).resolve().parent == ROOT / "integrations"


@pytest.mark.parametrize("module", ["gfm_accel.params", "gfm_accel.trajectories", "gfm_accel.recorder", "gfm_accel.forecast"])
def test_modules_have_explicit_all(module):
    mod = importlib.import_module(module)
    assert all(isinstance(n, str) and hasattr(mod, n) for n in mod.__all__)


def test_cli_entry_points():
    out = subprocess.run([sys.executable, "-m", "gfm_accel", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "generate" in out.stdout and "bench" in out.stdout
    out = subprocess.run([sys.executable, "-m", "gfm_accel", "info"], capture_output=True, text=True)
    assert out.returncode == 0 and "torch" in out.stdout


SUBPACKAGES = [
    "gfm_accel.lab.bench", "gfm_accel.lab.baselines", "gfm_accel.lab.generate", "gfm_accel.flow", "gfm_accel.forecast",
    "gfm_accel.jump", "gfm_accel.pretrained",
]


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_all_names_import(package):
    mod = importlib.import_module(package)
    assert mod.__all__, f"{package} exports nothing"
    for name in mod.__all__:
        assert isinstance(name, str) and getattr(mod, name) is not None, f"{package}.{name}"
