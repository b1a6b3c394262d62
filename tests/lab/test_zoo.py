"""The forecaster's training zoo: one run per family, snapshots per epoch or every k steps."""

import math

import pytest
import torch

from gfm_accel.lab.zoo import ZooRun, train_run, zoo_runs


def test_zoo_lists_every_family_and_optimizer():
    runs = zoo_runs()
    assert len(runs) == 120 and {r.family for r in runs} == {"mlp", "cnn", "gpt"}
    assert {r.optimizer for r in runs} >= {"sgd", "adam", "adamw", "rmsprop"}
    # every (architecture, optimizer, lr) is run with each seed
    assert {r.seed for r in runs} == {0, 1}
    assert len({(r.arch, r.optimizer, r.lr) for r in runs}) == 60
    assert len(zoo_runs(seeds=(3,))) == 60 and {r.seed for r in zoo_runs("tiny")} == {0}
    with pytest.raises(ValueError, match="seeds"):
        zoo_runs(seeds=())


def test_epoch_snapshots_learn_and_carry_losses():
    res = train_run(ZooRun("mlp", "d1-w32-relu", "adam", 3e-3, 0, epochs=3))
    assert res["weights"].shape[0] == 4 and res["finite"]  # w_0 + one per epoch
    assert res["loss"][-1] < res["loss"][0] and not torch.isnan(res["val_loss"]).any()


def test_step_snapshots_every_k_steps():
    # digits: 1400 training images in batches of 64 -> 22 steps per epoch; 2 epochs = 44 steps
    res = train_run(ZooRun("mlp", "d1-w32-relu", "adam", 3e-3, 0, epochs=2), every_steps=5)
    assert res["weights"].shape[0] == 1 + 44 // 5 and res["finite"]
    loss = res["loss"].tolist()
    assert math.isfinite(loss[0]) and math.isnan(loss[1])  # losses only at epoch ends
    assert math.isfinite(loss[4]) and math.isfinite(loss[-1])  # last snapshots of epochs 1 and 2
    # the char model's "epoch" is 20 steps
    gpt = train_run(ZooRun("gpt", "l1-d32", "adam", 3e-3, 0, epochs=1), every_steps=4)
    assert gpt["weights"].shape[0] == 1 + 5 and gpt["finite"]
    with pytest.raises(ValueError, match="every_steps"):
        train_run(ZooRun("mlp", "d1-w32-relu", "adam", 3e-3, 0, epochs=1), every_steps=0)
