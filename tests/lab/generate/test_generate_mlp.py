"""15-parameter MLP trajectories (paper Sec. 5.2 / App. C)."""

import math

import pytest
import torch

from gfm_accel.lab.generate.linreg import RegressionConfig
from gfm_accel.lab.generate.mlp import (
    MLP_ARCHS,
    make_mlp,
    mlp_forward,
    mlp_init,
    sample_mlp_tasks,
    train_mlp_batched,
    train_mlp_sequential,
)
from gfm_accel.lab.optim import PAPER_OPTIMIZERS as OPTIMIZERS
from gfm_accel.params import ParamSpec, assign_params


def test_both_archs_have_15_parameters():
    for aid in MLP_ARCHS:
        for act in ("tanh", "relu"):
            assert ParamSpec.from_model(make_mlp(aid, act)).numel == 15
    assert ParamSpec.from_model(make_mlp(0)).names == [
        "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
    assert [e.shape for e in ParamSpec.from_model(make_mlp(1))] == [(4, 1), (4,), (1, 4), (1,), (1, 1), (1,)]


@pytest.mark.parametrize("aid", list(MLP_ARCHS))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_batched_forward_matches_module(aid, activation):
    flat = torch.randn(3, 15)
    x = torch.randn(3, 7)
    got = mlp_forward(flat, MLP_ARCHS[aid][1], x, activation)
    for i in range(3):
        net = make_mlp(aid, activation)
        assign_params(net, flat[i])
        torch.testing.assert_close(got[i], net(x[i].unsqueeze(-1)).squeeze(-1))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_batched_equals_sequential(optimizer):
    cfg = RegressionConfig(n_trajectories=4, steps=6, batch_size=64)
    mt = sample_mlp_tasks(cfg, seed=2, n_first=2)
    a = train_mlp_batched(mt, optimizer)
    b = train_mlp_sequential(mt, optimizer)
    assert a.weights.shape == (4, 7, 15)
    torch.testing.assert_close(a.weights, b.weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-5, atol=1e-6)
    assert float((a.weights[:, -1] - a.weights[:, 0]).abs().max()) > 1e-2


def test_arch_split_and_inits():
    cfg = RegressionConfig(n_trajectories=50, steps=2, batch_size=64)
    mt = sample_mlp_tasks(cfg, 0)
    assert mt.arch_id[:30].eq(0).all() and mt.arch_id[30:].eq(1).all()
    assert int(sample_mlp_tasks(cfg, 0, n_first=10).arch_id.eq(0).sum()) == 10
    g = torch.Generator().manual_seed(0)
    ids = torch.zeros(4000, dtype=torch.long)
    w = mlp_init(ids, "xavier_normal", 1.0, g)
    # arch 0, first layer weight (1 -> 2): std sqrt(2/3); its bias is zero.
    assert abs(float(w[:, :2].std()) - math.sqrt(2 / 3)) < 0.03
    assert float(w[:, 2:4].abs().max()) == 0.0
    with pytest.raises(ValueError, match="mini-batch"):
        sample_mlp_tasks(RegressionConfig(n_trajectories=2), 0)
    with pytest.raises(ValueError, match="n_first must be in"):
        sample_mlp_tasks(cfg, 0, n_first=51)
    with pytest.raises(ValueError, match="unknown activation"):
        sample_mlp_tasks(cfg, 0, activation="gelu")


def test_loss_falls():
    cfg = RegressionConfig(n_trajectories=10, steps=60, batch_size=64)
    run = train_mlp_batched(sample_mlp_tasks(cfg, 0), "rmsprop")
    assert float(run.loss[:, -1].median()) < 0.3 * float(run.loss[:, 0].median())
