"""CI smoke tests of examples/ and of ``gfm-accel demo``: each runs in its smallest setting, offline.

Each example runs in a subprocess (OMP_NUM_THREADS=1, HF_HUB_OFFLINE=1) with the recommended
configuration (``GFMJump()`` defaults: a snapshot every 5 optimizer steps, a jump every 25
steps whose target, 50 steps later, must lie inside the run) and must finish and print its
result lines: one line per jump attempt, ``jumps: A accepted / T tried`` with T the number
of attempts the schedule makes in a run of that many optimizer steps, and ``final: ...``
with sane metrics. They use ``--forecaster linear`` (no trained model needed, and the short
runs are deterministic); ``test_plain_loop_shipped`` uses the shipped forecaster when it is
in the package.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gfm_accel.cli import main
from gfm_accel.jump.config import JumpConfig

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


def attempt_steps(total: int) -> list[int]:
    """Optimizer steps at which the default schedule attempts a jump in a run of ``total`` steps.

    A snapshot every ``k`` steps, a jump every ``P`` snapshots, none whose target ``K``
    snapshots later lies past the planned end (docs/jump.md, "Minimum run length").
    """
    cfg = JumpConfig()
    k, every, ahead = cfg.every_n_steps, cfg.periodic_every * cfg.every_n_steps, cfg.periodic_horizon * cfg.every_n_steps
    assert (k, every, ahead) == (5, 25, 50)  # the recommended configuration the examples rely on
    return [s for s in range(every, total, every) if s + ahead <= total]


def test_attempt_steps_follows_the_minimum_run_length():
    assert attempt_steps(74) == [] and attempt_steps(75) == [25] and attempt_steps(99) == [25]
    assert attempt_steps(100) == [25, 50] and len(attempt_steps(380)) == 13


def _check_attempts(out: str, steps: int) -> tuple[int, int]:
    """The printed attempt lines, the jumps line and the final step count agree with the schedule."""
    expected = attempt_steps(steps)
    lines = [int(s) for s in re.findall(r"step (\d+): jump to m=14: (?:accepted|rejected|skipped)", out)]
    assert lines == expected, out
    accepted, tried = _jumps(out)
    assert tried == len(expected) and 0 <= accepted <= tried
    assert accepted == len(re.findall(r": jump to m=14: accepted", out))
    assert _final(out)["steps"] == steps
    return accepted, tried


# 300 training images in batches of 32: 10 steps an epoch, 10 epochs = 100 steps, so exactly
# two attempts (steps 25 and 50; the one at 75 would target step 125, past the end).
SMALL = ("--epochs", "10", "--limit", "300", "--forecaster", "linear")


@pytest.mark.parametrize("script", ["plain_loop.py", "lightning_fit.py"])
def test_digits_examples(script):
    out = _run(script, *SMALL)
    assert _check_attempts(out, steps=100)[1] == 2
    final = _final(out)
    assert 0 < final["val_loss"] < 1.0 and final["val_acc"] > 80.0  # chance: ln 10 = 2.30, 10%


# 300 images in batches of 16: 19 steps an epoch, 5 epochs = 95 steps: one attempt (step 25;
# the next, at 50, would target step 100 > 95).
@pytest.mark.parametrize("script", ["cifar10_cnn.py", "cifar10_transformer.py"])
def test_cifar_examples_offline(script):
    out = _run(script, "--dataset", "digits", "--epochs", "5", "--limit", "300", "--batch-size", "16",
               "--forecaster", "linear")
    assert "digits: 300 train / 200 guard / 400 val images" in out
    assert _check_attempts(out, steps=95)[1] == 1
    final = _final(out)
    assert math.isfinite(final["val_loss"]) and 0 < final["val_loss"] < math.log(10)  # below chance
    assert 10.0 < final["val_acc"] <= 100.0


def test_cifar_example_missing_data_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "cifar10_cnn.py"), "--data-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1
    assert "CIFAR-10 not found" in proc.stderr and "--dataset digits" in proc.stderr


def test_hf_trainer():
    """400 blocks in batches of 16: 25 steps an epoch, 3 epochs = 75 steps, the shortest run with a jump."""
    out = _run("hf_trainer.py", "--epochs", "3", "--limit", "400", "--forecaster", "linear")
    assert "400 train / 64 guard / 128 val blocks of 64" in out
    assert _check_attempts(out, steps=75)[1] == 1
    assert "'gfm/step': '25'" in out  # the attempt went through Trainer.log (the printer callback)
    assert 0 < _final(out)["eval_loss"] < 3.5  # the uniform byte model: ln 256 = 5.55


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped forecaster file is not built yet")
def test_plain_loop_shipped():
    out = _run("plain_loop.py", "--epochs", "10", "--limit", "300")
    assert _check_attempts(out, steps=100)[1] == 2
    assert _final(out)["val_acc"] > 80.0


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
