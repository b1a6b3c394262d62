"""CI smoke tests of examples/ and of ``gfm-accel demo``: each runs in its smallest setting, offline.

Each example runs in a subprocess (OMP_NUM_THREADS=1, HF_HUB_OFFLINE=1) and must finish and
print its result lines: ``jumps: A accepted / T tried`` with at least one jump tried, and
``final: ...`` with sane metrics. They use ``--forecaster linear`` (no trained model needed,
and the short runs are deterministic); ``test_plain_loop_shipped`` uses the shipped
forecaster when it is in the package.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gfm_accel.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SHIPPED = ROOT / "gfm_accel" / "pretrained" / "gfm_coordinate.safetensors"


def _run(script: str, *args: str, timeout: int = 240) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def _jumps(out: str) -> tuple[int, int]:
    m = re.search(r"^jumps: (\d+) accepted / (\d+) tried$", out, re.M)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def _final(out: str) -> dict[str, float]:
    m = re.search(r"^final: (.*)$", out, re.M)
    assert m, out
    return {k: float(v.rstrip("%s")) for k, v in (kv.split("=") for kv in m.group(1).split())}


SMALL = ("--epochs", "6", "--limit", "300", "--forecaster", "linear")


@pytest.mark.parametrize("script", ["plain_loop.py", "lightning_fit.py"])
def test_digits_examples(script):
    out = _run(script, *SMALL)
    accepted, tried = _jumps(out)
    assert tried == 1 and 0 <= accepted <= 1  # one jump due after epoch 5 (P = 5)
    final = _final(out)
    assert 0 < final["val_loss"] < 2.0 and final["val_acc"] > 50.0


@pytest.mark.parametrize("script", ["cifar10_cnn.py", "cifar10_transformer.py"])
def test_cifar_examples_offline(script):
    out = _run(script, "--dataset", "digits", *SMALL)
    assert "digits: 300 train / 200 guard / 400 val images" in out
    assert _jumps(out)[1] == 1
    final = _final(out)
    assert math_ok(final["val_loss"]) and final["val_loss"] < 2.31 and 0 <= final["val_acc"] <= 100


def math_ok(x: float) -> bool:
    return x == x and x < float("inf")


def test_cifar_example_missing_data_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "cifar10_cnn.py"), "--data-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1
    assert "CIFAR-10 not found" in proc.stderr and "--dataset digits" in proc.stderr


def test_hf_trainer():
    out = _run("hf_trainer.py", "--epochs", "6", "--limit", "64", "--forecaster", "linear")
    assert _jumps(out)[1] == 1
    assert 0 < _final(out)["eval_loss"] < 5.55  # below the uniform byte model's ln 256


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped forecaster file is not built yet")
def test_plain_loop_shipped():
    out = _run("plain_loop.py", "--epochs", "6", "--limit", "300")
    assert _jumps(out)[1] == 1 and _final(out)["val_acc"] > 50.0


def test_demo_tiny(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--epochs", "6", "--limit", "300", "--forecaster", "linear", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| plain |" in printed and "| GFMJump |" in printed and "speedup" in printed
    record = json.loads((out / "results.json").read_text())
    plain, jumped = record["rows"]
    assert plain["epochs_to_target"] is not None and jumped["jumps_tried"] == 1
    assert len(record["curves"]["plain"]["val_loss"]) == 7
    assert record["target_val_loss"] == pytest.approx(min(record["curves"]["plain"]["val_loss"][1:]))
    assert (out / "loss_curves.png").stat().st_size > 5000


def test_demo_with_the_line(tmp_path):
    """`--forecaster linefit` runs the demo with the least-squares line (no file, so no hash)."""
    out = tmp_path / "demo_line"
    assert main(["demo", "--epochs", "6", "--limit", "300", "--forecaster", "linefit", "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["forecaster_sha256"] is None and record["rows"][1]["jumps_tried"] == 1
    assert "LineFitForecaster" in json.dumps(record)


def test_demo_cifar_needs_data(tmp_path):
    assert main(["demo", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2


def test_demo_config_validates():
    from gfm_accel.lab.demo import DemoConfig

    assert DemoConfig.from_json(DemoConfig(epochs=7, seed=3).to_json()) == DemoConfig(epochs=7, seed=3)
    with pytest.raises(ValueError, match="needs --data-dir"):
        DemoConfig(dataset="cifar10")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        DemoConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        DemoConfig(schedule="sideways:n=4")


def test_readme_lists_every_example_once_for_examples_output():
    """`benchmarks/examples_output.sh` runs the README's Examples table: every example script, once."""
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "examples_output.sh"), "--list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    scripts = [line.split()[0] for line in proc.stdout.splitlines()]
    expected = sorted(f"examples/{p.name}" for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert sorted(scripts) == expected and len(scripts) == 5


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--epochs", "-3"), ("--batch-size", "0")])
def test_demo_rejects_non_positive_epochs_and_batch_size(tmp_path, capsys, flag, value):
    """Issue 16 item 9: `gfm-accel demo --epochs 0` ran the default 30 epochs; now it is a clear error."""
    out = tmp_path / "o"
    assert main(["demo", flag, value, "--forecaster", "linear", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{flag[2:].replace('-', '_')} must be a positive integer, got {int(value)}" in err
    assert not out.exists()  # rejected before any training or writing
