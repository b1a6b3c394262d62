"""The two layers: the runtime a training script imports never imports the offline lab.

Checked twice: statically (every import statement in every runtime module, relative imports
resolved) and dynamically (importing every runtime module in a fresh interpreter loads no
``gfm_accel.lab`` module).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from _imports import imports_of

ROOT = Path(__file__).resolve().parents[1]
LAB = "gfm_accel.lab"


def _runtime_modules() -> dict[str, Path]:
    """module name -> file, for every runtime module (gfm_accel minus lab, plus integrations)."""
    mods: dict[str, Path] = {}
    for base, pkg in ((ROOT / "gfm_accel", "gfm_accel"), (ROOT / "integrations", "gfm_accel.integrations")):
        for f in sorted(base.rglob("*.py")):
            parts = list(f.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([pkg, *parts])
            if name == LAB or name.startswith(LAB + "."):
                continue
            mods[name] = f
    return mods


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of the modules imported by one runtime file."""
    return imports_of(path, name if path.name == "__init__.py" else name.rsplit(".", 1)[0])


def test_runtime_modules_found():
    mods = _runtime_modules()
    for expected in ("gfm_accel.jump", "gfm_accel.forecast", "gfm_accel.recorder", "gfm_accel.integrations.hf"):
        assert expected in mods, sorted(mods)


@pytest.mark.parametrize("name", sorted(_runtime_modules()))
def test_runtime_module_never_imports_the_lab(name):
    bad = sorted(m for m in _imports(name, _runtime_modules()[name]) if m == LAB or m.startswith(LAB + "."))
    assert not bad, f"runtime module {name} imports the offline lab: {bad}"


def test_importing_the_runtime_loads_no_lab_module():
    names = [n for n in _runtime_modules() if not n.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n"
        "    importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.startswith('gfm_accel.lab'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stdout + out.stderr
