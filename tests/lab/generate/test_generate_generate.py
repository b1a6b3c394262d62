"""Trajectory files written by gfm_accel.lab.generate.generate and the ``generate`` command."""

import hashlib

import pytest
import torch

from gfm_accel.cli import main
from gfm_accel.lab.generate.generate import VisionConfig, generate_linreg, generate_mlp, generate_vision, trajectory_filename
from gfm_accel.lab.generate.linreg import RegressionConfig
from gfm_accel.lab.generate.mlp import make_mlp
from gfm_accel.lab.datasets import load_image_dataset
from gfm_accel.params import ParamSpec, assign_params
from gfm_accel.trajectories import load_trajectories


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_linreg_file(tmp_path):
    cfg = RegressionConfig(n_trajectories=6, steps=20, init="xavier_normal")
    p = generate_linreg(tmp_path, optimizer="rmsprop", seed=3, config=cfg)
    assert p.name == "linreg_rmsprop_seed3.safetensors"
    tr = load_trajectories(p)
    assert tr.weights.shape == (6, 21, 2) and tr.loss.shape == (6, 21)
    m = tr.metadata
    assert (m["task"], m["optimizer"], m["seed"], m["init"], m["lr"]) == ("linreg", "rmsprop", 3, "xavier_normal", 0.01)
    assert m["hparams"] == {"lr": 0.01, "alpha": 0.99, "weight_decay": 0.01}
    assert RegressionConfig.from_dict(m["task_params"]) == cfg
    assert tr.steps == list(range(21)) and m["step_unit"] == "update"
    assert tr.spec == ParamSpec.from_model(torch.nn.Linear(1, 1))
    assert tr.extra["task_a"].shape == (6,)
    # Same seed, same bytes; another seed, other bytes.
    q = generate_linreg(tmp_path / "again", optimizer="rmsprop", seed=3, config=cfg)
    assert _sha(p) == _sha(q)
    r = generate_linreg(tmp_path, optimizer="rmsprop", seed=4, config=cfg)
    assert _sha(p) != _sha(r)


def test_mlp_file(tmp_path):
    cfg = RegressionConfig(n_trajectories=5, steps=4, batch_size=64)
    p = generate_mlp(tmp_path, optimizer="adam", seed=0, config=cfg, n_first=3)
    tr = load_trajectories(p)
    assert p.name == "mlp_adam_seed0.safetensors"
    assert tr.weights.shape == (5, 5, 15) and tr.loss.shape == (5, 5)
    assert tr.extra["arch_id"].tolist() == [0, 0, 0, 1, 1]
    legend = tr.metadata["arch"]["legend"]
    assert legend["0"]["hidden"] == [2, 2, 1] and legend["1"]["hidden"] == [4, 1]
    assert tr.metadata["arch"]["counts"] == [3, 2] and tr.metadata["step_unit"] == "epoch"
    # The stored loss is the task MSE of the stored weights under the legend's layout.
    net = make_mlp(1, legend["1"]["activation"])
    assign_params(net, tr.weights[4, -1], ParamSpec.from_dict(legend["1"]["spec"]))
    x = torch.linspace(-1, 1, 5).unsqueeze(-1)
    assert net(x).shape == (5, 1)
    q = generate_mlp(tmp_path / "again", optimizer="adam", seed=0, config=cfg, n_first=3)
    assert _sha(p) == _sha(q)


@pytest.fixture(scope="module")
def tiny_digits():
    return load_image_dataset("digits").subset(192, 96)


@pytest.mark.parametrize("family", ["cnn", "transformer"])
def test_vision_files(tmp_path, tiny_digits, family):
    cfg = VisionConfig.preset("cpu", family, runs=3, epochs=2, hidden=32, depth=1, channels=4, runs_per_file=2)
    paths = generate_vision(tmp_path, cfg, seed=1, data=tiny_digits, show_progress=False)
    assert [p.name for p in paths] == [f"{family}_sgd_seed1_runs000-001.safetensors", f"{family}_sgd_seed1_runs002-002.safetensors"]
    tr = load_trajectories(paths[0])
    d = tr.metadata["arch"]["num_params"]
    assert tr.weights.shape == (2, 3, d) and tr.spec.numel == d
    for k in ("train_acc", "val_acc"):
        assert tr.extra[k].shape == (2, 3)
    assert tr.val_loss.shape == (2, 3) and tr.extra["run_seed"].tolist() == [1000, 1001]
    assert tr.metadata["hparams"]["momentum"] == 0.9 and tr.metadata["task"] == family
    assert load_trajectories(paths[1]).extra["run_seed"].tolist() == [1002]
    again = generate_vision(tmp_path / "b", cfg, seed=1, data=tiny_digits, show_progress=False)
    assert _sha(paths[0]) == _sha(again[0])


def test_paper_presets_parameter_counts():
    from gfm_accel.lab.generate.generate import _resolve_arch, build_vision_model_factory
    from gfm_accel.lab.generate.nets import count_params

    counts = {}
    for family in ("cnn", "transformer"):
        arch = _resolve_arch(VisionConfig.preset("paper", family))
        counts[family] = count_params(build_vision_model_factory(arch, (3, 32, 32), 10)())
    assert counts == {"cnn": 5338, "transformer": 924_554}  # paper: 5,418 and 924,554


def test_vision_config():
    cfg = VisionConfig.preset("paper", "transformer")
    assert (cfg.dataset, cfg.runs, cfg.epochs, cfg.depth, cfg.hidden) == ("cifar10", 100, 200, 4, 128)
    assert VisionConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown preset"):
        VisionConfig.preset("gpu", "cnn")
    with pytest.raises(ValueError, match="family must be"):
        VisionConfig(family="rnn")
    with pytest.raises(ValueError, match="unknown cell op"):
        VisionConfig(cell="|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_filenames():
    assert trajectory_filename("linreg", "adam", 3) == "linreg_adam_seed3.safetensors"
    assert trajectory_filename("cnn", "sgd", 0, (10, 19)) == "cnn_sgd_seed0_runs010-019.safetensors"


def test_cli_linreg_and_mlp(tmp_path):
    rc = main(["generate", "linreg", "--out", str(tmp_path), "--optimizers", "sgd,adagrad", "--seeds", "0,1",
               "--trajectories", "3", "--steps", "5", "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "linreg_adagrad_seed0.safetensors", "linreg_adagrad_seed1.safetensors",
        "linreg_sgd_seed0.safetensors", "linreg_sgd_seed1.safetensors"]
    assert load_trajectories(tmp_path / "linreg_adagrad_seed1.safetensors").metadata["lr"] == 0.1
    rc = main(["generate", "mlp", "--out", str(tmp_path / "m"), "--optimizers", "adamw", "--seeds", "2",
               "--trajectories", "4", "--steps", "3", "--lr", "0.001", "--no-progress"])
    tr = load_trajectories(tmp_path / "m" / "mlp_adamw_seed2.safetensors")
    assert rc == 0 and tr.weights.shape == (4, 4, 15) and tr.metadata["lr"] == 0.001
    assert tr.metadata["task_params"]["batch_size"] == 64


def test_cli_errors(tmp_path, capsys):
    assert main(["generate", "linreg", "--out", str(tmp_path), "--optimizers", "lion"]) == 2
    assert "unknown optimizer 'lion'" in capsys.readouterr().err
    assert main(["generate", "linreg", "--out", str(tmp_path), "--seeds", ""]) == 2
    assert "empty seed list" in capsys.readouterr().err
    assert main(["generate", "cnn", "--out", str(tmp_path), "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err and "--download" in err
    assert main(["generate", "linreg", "--out", str(tmp_path), "--trajectories", "0"]) == 2
    assert "n_trajectories must be a positive integer" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_vision_other_optimizer_drops_sgd_only_kwargs(tmp_path, tiny_digits):
    cfg = VisionConfig.preset("cpu", "transformer", runs=1, epochs=1, hidden=16, depth=1, lr=0.001)
    (path,) = generate_vision(tmp_path, cfg, seed=0, optimizer="adam", data=tiny_digits, show_progress=False)
    tr = load_trajectories(path)
    assert path.name == "transformer_adam_seed0.safetensors"
    assert tr.metadata["hparams"] == {"lr": 0.001, "betas": [0.9, 0.999]}
    assert float(tr.loss[0, 1]) < float(tr.loss[0, 0])
