"""`gfm-accel train` / `gfm-accel forecast` end to end, in process."""

import json

import pytest
import torch
from safetensors import safe_open

from gfm_accel.cli import main
from gfm_accel.forecast import GFMForecaster
from gfm_accel.forecast.train_cli import parse_options
from gfm_accel.trajectories import load_trajectories, save_trajectories


def trajectories(n_traj=8, steps=12, d=2, seed=0):
    """Geometric approach to a random optimum: w_i = w* + (w_0 - w*) 0.8^i, (N, steps+1, d)."""
    g = torch.Generator().manual_seed(seed)
    w_star = 1 + 0.1 * torch.randn(n_traj, 1, d, generator=g)
    w0 = torch.randn(n_traj, 1, d, generator=g)
    return w_star + (w0 - w_star) * 0.8 ** torch.arange(steps + 1.0).view(1, -1, 1)


@pytest.fixture
def files(tmp_path):
    train = save_trajectories(tmp_path / "train.safetensors", trajectories(seed=0), task="geo")
    test = save_trajectories(tmp_path / "test.safetensors", trajectories(n_traj=5, seed=1), task="geo")
    return tmp_path, train, test


def test_parse_options():
    assert parse_options(["a=1", "b=standardize", "c=[1,2]", "d=null"]) == {"a": 1, "b": "standardize", "c": [1, 2],
                                                                            "d": None}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["oops"])


def test_train_then_forecast(files, capsys):
    tmp, train, test = files
    out = tmp / "gfm.safetensors"
    rc = main(["train", "--data", str(train), str(train), "--out", str(out), "--n", "2", "--epochs", "20",
               "--hidden", "16", "--path", "from_last", "--condition", "prefix", "--zeta", "10",
               "--option", "normalization=standardize", "--option", "t_per_traj=2", "--no-progress", "--seed", "3"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "on 16 trajectories" in printed and "final loss" in printed
    f = GFMForecaster.load(out)
    assert f.m == 12 and f.n == 2 and f.expected_dim == 2  # m defaults to T - 1
    cfg = f.config
    assert (cfg.path, cfg.condition, cfg.zeta, cfg.hidden) == ("from_last", "prefix", 10.0, 16)
    assert cfg.variant_options["normalization"] == "standardize" and cfg.variant_options["t_per_traj"] == 2
    assert cfg.beta == 1.0 and cfg.solver == "euler"  # unset -> the paper's defaults
    assert f.provenance["epochs"] == 20 and f.provenance["seed"] == 3 and f.provenance["data"] == [str(train)] * 2

    pred_path = tmp / "pred.safetensors"
    assert main(["forecast", "--forecaster", str(out), "--data", str(test), "--n", "2", "--out", str(pred_path)]) == 0
    printed = capsys.readouterr().out
    with safe_open(str(pred_path), "pt") as fh:
        pred = fh.get_tensor("weights")
        meta = fh.metadata()
    assert pred.shape == (5, 2) and meta["format"] == "gfm_accel.forecast" and json.loads(meta["m"]) == 12
    w = load_trajectories(test).weights
    assert torch.allclose(pred, f.forecast(w[:, :3]))
    mse = ((pred - w[:, 12]) ** 2).mean().item()
    assert f"MSE vs snapshot m=12: {mse:.6g}" in printed


def test_forecast_without_target_snapshot_and_chunks(files, capsys):
    tmp, train, _ = files
    out = tmp / "gfm.safetensors"
    assert main(["train", "--data", str(train), "--out", str(out), "--n", "1", "--m", "12", "--epochs", "2",
                 "--hidden", "8", "--no-progress"]) == 0
    short = save_trajectories(tmp / "short.safetensors", trajectories(n_traj=3, steps=4))
    pred = tmp / "p.safetensors"
    assert main(["forecast", "--forecaster", str(out), "--data", str(short), "--out", str(pred), "--batch-size", "2"]) == 0
    assert "no snapshot m=12" in capsys.readouterr().out
    with safe_open(str(pred), "pt") as fh:
        assert fh.get_tensor("weights").shape == (3, 2)


def test_user_errors_give_one_line(files, capsys):
    tmp, train, _ = files
    out = tmp / "gfm.safetensors"
    assert main(["train", "--data", str(train), "--out", str(out), "--n", "2", "--epochs", "1", "--no-progress",
                 "--option", "nonsense"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "--data", str(train), "--out", str(out), "--n", "2", "--m", "40", "--epochs", "1",
                 "--no-progress"]) == 2
    assert "need more than m=40" in capsys.readouterr().err
    assert main(["train", "--data", str(train), "--out", str(out), "--n", "2", "--epochs", "1", "--no-progress",
                 "--hidden", "8"]) == 0
    wide = save_trajectories(tmp / "wide.safetensors", trajectories(n_traj=2, d=3))
    assert main(["forecast", "--forecaster", str(out), "--data", str(wide), "--out", str(tmp / "p.safetensors")]) == 2
    assert "D=2 parameters, but the prefix has D=3" in capsys.readouterr().err
    assert main(["forecast", "--forecaster", str(train), "--data", str(train), "--out", str(tmp / "p.safetensors")]) == 2
    assert "expected 'gfm_accel.forecaster'" in capsys.readouterr().err


def test_coordinate_variant_routes_to_its_backend(files):
    pytest.importorskip("gfm_accel.forecast.coordinate")
    tmp, train, test = files
    out = tmp / "coord.safetensors"
    assert main(["train", "--data", str(train), "--out", str(out), "--variant", "coordinate", "--n", "2",
                 "--epochs", "1", "--hidden", "8", "--option", "steps_per_epoch=2", "--no-progress"]) == 0
    f = GFMForecaster.load(out)
    assert f.variant == "coordinate" and f.expected_dim is None
    assert f.config.hidden == 8 and f.config.variant_options["steps_per_epoch"] == 2
    assert f.forecast(load_trajectories(test).weights[:, :3]).shape == (5, 2)
