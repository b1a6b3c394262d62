"""gfm_accel.lab.optim and argument parsing helpers."""

import pytest
import torch

from gfm_accel.lab.generate._util import parse_seeds
from gfm_accel.lab.optim import OPTIMIZERS, build_optimizer, optimizer_hparams, parse_optimizers


def test_paper_hyperparameters():
    w = torch.zeros(2, requires_grad=True)
    assert build_optimizer("sgd", [w]).defaults["lr"] == 0.01
    adam = build_optimizer("adam", [w])
    assert adam.defaults["lr"] == 0.01 and adam.defaults["betas"] == (0.9, 0.999)
    rms = build_optimizer("rmsprop", [w])
    assert (rms.defaults["alpha"], rms.defaults["weight_decay"], rms.defaults["lr"]) == (0.99, 0.01, 0.01)
    assert build_optimizer("adagrad", [w]).defaults["lr"] == 0.1
    assert build_optimizer("AdamW", [w], lr=0.5).defaults["lr"] == 0.5
    assert optimizer_hparams("adamw") == {"lr": 0.01, "betas": [0.9, 0.999], "weight_decay": 0.01}
    assert optimizer_hparams("sgd", momentum=0.9) == {"lr": 0.01, "momentum": 0.9}


def test_unknown_optimizer_and_bad_lr():
    with pytest.raises(ValueError, match="unknown optimizer 'lion'.*sgd, adam"):
        optimizer_hparams("lion")
    with pytest.raises(ValueError, match="learning rate must be > 0"):
        optimizer_hparams("sgd", lr=0.0)
    with pytest.raises(ValueError, match="unknown optimizer 'foo'"):
        parse_optimizers("sgd,foo")
    with pytest.raises(ValueError, match="no optimizer given"):
        parse_optimizers(" , ")


def test_parse_lists():
    assert parse_optimizers("SGD, adam,sgd") == ["sgd", "adam"]
    assert parse_optimizers(",".join(OPTIMIZERS)) == list(OPTIMIZERS)
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3, 7") == [3, 7]
    assert parse_seeds([2]) == [2]
    with pytest.raises(ValueError, match="empty seed list"):
        parse_seeds("")
    with pytest.raises(ValueError, match="bad seed 'x'"):
        parse_seeds("1,x")
    with pytest.raises(ValueError, match="non-negative"):
        parse_seeds([-1])


def test_one_registry_for_the_whole_lab():
    """sgdm is SGD with momentum 0.9; explicit keywords replace the paper's defaults."""
    from gfm_accel.lab.optim import PAPER_OPTIMIZERS

    w = torch.zeros(2, requires_grad=True)
    sgdm = build_optimizer("sgdm", [w], lr=0.02, weight_decay=0.0)
    assert type(sgdm) is torch.optim.SGD and (sgdm.defaults["momentum"], sgdm.defaults["lr"]) == (0.9, 0.02)
    assert build_optimizer("rmsprop", [w], 1e-3, weight_decay=0.0).defaults["weight_decay"] == 0.0
    assert PAPER_OPTIMIZERS == ("sgd", "adam", "adamw", "rmsprop", "adagrad") and set(PAPER_OPTIMIZERS) < set(OPTIMIZERS)
