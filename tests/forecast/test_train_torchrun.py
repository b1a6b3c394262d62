"""`gfm-accel train` under a real torchrun (2 CPU processes, gloo)."""

import pytest
import torch
from _torchrun import torchrun

from gfm_accel import GFMForecaster
from gfm_accel.params import ParamSpec
from gfm_accel.trajectories import save_trajectories

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def test_train_cli_under_torchrun(tmp_path):
    g = torch.Generator().manual_seed(0)
    steps = torch.rand(6, 1, 40, generator=g) * 0.05
    w = torch.cumsum(steps.expand(6, 20, 40) * torch.linspace(1, 0.2, 20).view(1, 20, 1), dim=1)
    data = save_trajectories(tmp_path / "toy.safetensors", w, spec=ParamSpec.flat(40))
    out = tmp_path / "f.safetensors"
    res = torchrun([
        "-m", "gfm_accel", "train", "--variant", "coordinate", "--data", str(data), "--out", str(out),
        "--epochs", "3", "--batch-size", "4", "--no-progress", "--option", "steps_per_epoch=4", "--option", "hidden=8",
    ], timeout=240)
    assert res.stdout.count("wrote ") == 1  # only rank 0 writes
    f = GFMForecaster.load(out)
    assert f.provenance["world_size"] == 2 and f.variant == "coordinate"
    pred = f.forecast(w[0, :5], m=15)
    assert pred.shape == (40,) and torch.isfinite(pred).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.safetensors", "toy.safetensors"]
