"""Batched linear-regression trajectories (paper Sec. 5.1 / App. B)."""

import math

import pytest
import torch

from gfm_accel.lab.generate.linreg import (
    RegressionConfig,
    linreg_init,
    linreg_loss,
    sample_regression_tasks,
    train_linreg_batched,
    train_linreg_sequential,
)
from gfm_accel.lab.optim import PAPER_OPTIMIZERS as OPTIMIZERS


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [None, 16])
def test_batched_equals_sequential(optimizer, batch_size):
    cfg = RegressionConfig(n_trajectories=4, steps=25, batch_size=batch_size)
    tasks = sample_regression_tasks(cfg, seed=1)
    a = train_linreg_batched(tasks, optimizer)
    b = train_linreg_sequential(tasks, optimizer)
    assert a.weights.shape == (4, 26, 2)
    torch.testing.assert_close(a.weights, b.weights, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-6, atol=1e-6)
    # The weights moved, so the comparison is not trivial.
    assert float((a.weights[:, -1] - a.weights[:, 0]).abs().min()) > 1e-3


def test_shapes_tasks_and_determinism():
    cfg = RegressionConfig(n_trajectories=200, steps=3)
    t1, t2 = sample_regression_tasks(cfg, 7), sample_regression_tasks(cfg, 7)
    assert torch.equal(t1.x, t2.x) and torch.equal(t1.w0, t2.w0)
    assert not torch.equal(t1.x, sample_regression_tasks(cfg, 8).x)
    assert t1.x.shape == (200, 100) and t1.w0.shape == (200, 2)
    assert float(t1.x.min()) >= -1 and float(t1.x.max()) <= 1
    assert abs(float(t1.a.mean()) - 2.0) < 0.03 and abs(float(t1.a.std()) - 0.1) < 0.02
    assert abs(float(t1.b.mean()) - 1.0) < 0.03 and abs(float(t1.b.std()) - 0.1) < 0.02
    resid = t1.y - t1.a[:, None] * t1.x - t1.b[:, None]
    assert abs(float(resid.std()) - math.sqrt(0.1)) < 0.01
    assert t1.batch_index is None


def test_inits():
    g = torch.Generator().manual_seed(0)
    n = 20000
    assert abs(float(linreg_init(n, "normal", 1.0, g).std()) - 1.0) < 0.02
    assert abs(float(linreg_init(n, "normal", 0.5, g).std()) - 0.5) < 0.01
    assert abs(float(linreg_init(n, "xavier_normal", 1.0, g).std()) - math.sqrt(2 / 3)) < 0.02
    xu = linreg_init(n, "xavier_uniform", 1.0, g)
    assert float(xu.abs().max()) <= math.sqrt(2) and float(xu.abs().max()) > 1.38


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_trajectories_approach_the_task_optimum(optimizer):
    cfg = RegressionConfig(n_trajectories=20)
    tasks = sample_regression_tasks(cfg, 0)
    run = train_linreg_batched(tasks, optimizer)
    target = torch.stack([tasks.a, tasks.b], 1)
    d0 = (run.weights[:, 0] - target).norm(dim=1)
    d1 = (run.weights[:, -1] - target).norm(dim=1)
    assert bool((d1 < d0).all())
    assert float(run.loss[:, -1].mean()) < 0.5 * float(run.loss[:, 0].mean())
    torch.testing.assert_close(run.loss, linreg_loss(run.weights, tasks.x, tasks.y))


def test_sgd_converges_near_noise_floor():
    run = train_linreg_batched(sample_regression_tasks(RegressionConfig(n_trajectories=10, steps=2000), 0), "sgd", lr=0.1)
    assert 0.05 < float(run.loss[:, -1].mean()) < 0.13  # noise variance 0.1


def test_config_validation_and_json():
    cfg = RegressionConfig(n_trajectories=3, init="xavier_uniform", batch_size=10)
    assert RegressionConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown init 'he'"):
        RegressionConfig(init="he")
    with pytest.raises(ValueError, match="n_trajectories must be a positive integer"):
        RegressionConfig(n_trajectories=0)
    with pytest.raises(ValueError, match="batch_size must be in"):
        RegressionConfig(batch_size=101)
    with pytest.raises(ValueError, match="unknown RegressionConfig option"):
        RegressionConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        sample_regression_tasks(cfg, -1)
