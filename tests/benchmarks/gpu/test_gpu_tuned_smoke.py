"""CPU smoke runs of the GPU tuned-comparison scripts (``benchmarks/gpu/``), on real offline data."""

import importlib.util
import json
import sys
import sysconfig
from pathlib import Path

import pytest

GPU = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu"
TEXT = Path(sysconfig.get_paths()["stdlib"]) / "pydoc_data" / "topics.py"  # a real local text file (~0.75 MB)


def _load(name):
    sys.path.insert(0, str(GPU))
    spec = importlib.util.spec_from_file_location(name, GPU / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _check(out: Path, methods: list[str], task: str) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "tuned" and summary["tasks"] == [task]
    assert list(summary["methods"]) == methods
    for row in summary["methods"].values():
        assert set(row) == {"geomean_speedup", "tasks_worse", "per_task"}
        r = row["per_task"][task]
        assert set(r) == {"speedup", "lo", "hi", "worse"} and r["lo"] <= r["speedup"] <= r["hi"]
    results = json.loads((out / "results.json").read_text())
    for key in ("grid_runs", "method_runs", "seeds", "command", "commit", "machine", "baseline", "target"):
        assert key in results
    assert len(results["baseline"]["grid"]) >= 3 and set(results["method_runs"]) == set(methods)
    run = results["method_runs"][methods[0]][0]
    assert run["records"][0][0] == 0 and run["records"][-1][0] == results["steps"]
    table = (out / "table.md").read_text()
    assert table.startswith("# Tuned comparison") and all(f"| {m} |" in table for m in methods)
    return results


def test_cifar_resnet18_script_tiny_on_digits(tmp_path):
    mod = _load("tuned_cifar_resnet18")
    methods = ["ema", "schedulefree", "linefit"]  # schedulefree: the BatchNorm path; the rest are tested in tests/lab
    mod.main(["--tiny", "--dataset", "digits", "--seeds", "1", "--grid-points", "3", "--max-widen", "0", "--device", "cpu",
              "--methods", ",".join(methods), "--out", str(tmp_path)])
    results = _check(tmp_path, methods, "digits_resnet_tiny")
    assert results["workload"]["dataset"] == "digits"


def test_cifar_real_path_needs_the_real_files(tmp_path):
    mod = _load("tuned_cifar_resnet18")
    with pytest.raises(SystemExit):
        mod.main(["--out", str(tmp_path / "o")])  # no --data-dir
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found in"):  # lab.datasets, before torchvision
        mod.main(["--tiny", "--data-dir", str(tmp_path), "--seeds", "1", "--out", str(tmp_path / "o")])
    model = mod.CifarResNet18(dataset="digits").make_model()
    assert sum(p.numel() for p in model.parameters()) == 11_172_810  # ResNet-18 (CIFAR stem), 1 input channel, 10 classes


def test_gpt2_small_script_tiny_on_a_local_text_file(tmp_path):
    mod = _load("tuned_gpt2_small")
    mod.main(["--tiny", "--text", str(TEXT), "--seeds", "1", "--grid-points", "3", "--max-widen", "0", "--device", "cpu",
              "--methods", "ema,linefit", "--out", str(tmp_path)])
    _check(tmp_path, ["ema", "linefit"], "gpt2_tiny_bytes")
    full = mod.TextGPT2(text_file=str(TEXT), context=256, dim=768, depth=12, heads=12)
    assert sum(p.numel() for p in full.make_model().parameters()) == pytest.approx(85.9e6, rel=0.01)
    with pytest.raises(ValueError, match="is not a file"):
        mod.TextGPT2(text_file=str(tmp_path / "missing.txt"))
