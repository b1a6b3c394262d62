"""Inside the lab, nothing imports upwards: the zoo (a build tool), the demo, the shared
modules (data, optimizers, training loop, forecasters, schedules) and the tasks never import
the benchmark runners (gfm_accel.lab.bench)."""

from pathlib import Path

import pytest

from _imports import imports_of

LAB = Path(__file__).resolve().parents[2] / "gfm_accel" / "lab"
BELOW_THE_RUNNERS = ["zoo.py", "zoo_tuned.py", "demo.py", "datasets.py", "optim.py", "training.py", "forecasters.py", "jumps.py",
                     *sorted(str(p.relative_to(LAB)) for p in (LAB / "tasks").glob("*.py")),
                     *sorted(str(p.relative_to(LAB)) for p in (LAB / "generate").glob("*.py"))]


def _imports(path: Path, package: str | None = None) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved against ``package``)."""
    return imports_of(path, package or ".".join(("gfm_accel", "lab", *path.relative_to(LAB).parent.parts)))


@pytest.mark.parametrize("name", BELOW_THE_RUNNERS)
def test_no_upward_import_of_the_runners(name):
    bad = sorted(m for m in _imports(LAB / name) if m == "gfm_accel.lab.bench" or m.startswith("gfm_accel.lab.bench."))
    assert not bad, f"gfm_accel/lab/{name} imports the benchmark runners: {bad}"


def test_the_check_sees_relative_and_lazy_imports(tmp_path):
    """``from ..bench.common import x`` inside a function of lab/tasks/ resolves to gfm_accel.lab.bench.common."""
    f = tmp_path / "t.py"
    f.write_text("def f():\n    from ..bench.common import BenchResult\n    from . import accel\n")
    found = _imports(f, "gfm_accel.lab.tasks")
    assert {"gfm_accel.lab.bench.common", "gfm_accel.lab.bench.common.BenchResult", "gfm_accel.lab.tasks.accel"} <= found
    assert "gfm_accel.lab.training.run_classifier" in _imports(LAB / "tasks" / "accel.py")
