"""Tests of gfm_accel.forecast.coordinate.train."""

from __future__ import annotations

import math

import pytest
import torch
from coord_helpers import decay_trajectories, other_spec, small_spec

from gfm_accel.forecast.coordinate import CoordinateBackend, CoordinateConfig, CoordinateField
from gfm_accel.params import ParamSpec
from gfm_accel.trajectories import Trajectories


@pytest.mark.parametrize("path", ["paper", "from_last"])
def test_both_paths_train(path):
    spec = small_spec()
    w = decay_trajectories(spec, 8, 30, seed=2)
    b = CoordinateBackend(hidden=16, path=path, coords_per_window=32, steps_per_epoch=10, n_choices=(4,))
    hist = b.fit([Trajectories(weights=w, metadata={"spec": spec.to_dict()})], epochs=12, batch_size=8, lr=3e-3,
                 progress=False)
    assert len(hist) == 12 and all(math.isfinite(v) for v in hist)
    held = decay_trajectories(spec, 4, 30, seed=3)
    pred = b.forecast(held[:, :5], 25, spec).final
    mse = ((pred - held[:, 25]) ** 2).mean().item()
    mse_last = ((held[:, 4] - held[:, 25]) ** 2).mean().item()
    assert mse < 0.7 * mse_last, (path, mse, mse_last)


def test_fixed_window_mode_and_m_none():
    w = decay_trajectories(ParamSpec.flat(6), 4, 12, seed=0)
    b = CoordinateBackend(hidden=8, windows=False, n=2, m=None, steps_per_epoch=2)
    b.fit([Trajectories(weights=w)], epochs=2, progress=False)
    assert b.config_dict()["m"] == 11
    with pytest.raises(ValueError, match="T=12 snapshots.*m=20"):
        CoordinateBackend(hidden=8, windows=False, n=2, m=20).fit([Trajectories(weights=w)], epochs=1,
                                                                  progress=False)


def test_mixed_layouts_in_one_fit_and_seeded():
    a = Trajectories(weights=decay_trajectories(small_spec(), 3, 15, 0), metadata={"spec": small_spec().to_dict()})
    c = Trajectories(weights=decay_trajectories(other_spec(), 3, 15, 1), metadata={"spec": other_spec().to_dict()})
    runs = []
    for _ in range(2):
        b = CoordinateBackend(hidden=8, steps_per_epoch=3)
        runs.append(b.fit([a, c], epochs=2, seed=4, progress=False))
    assert runs[0] == runs[1]


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        spec = small_spec()
        w = decay_trajectories(spec, 8, 20, seed=0)
        b = CoordinateBackend(hidden=8, coords_per_window=32)
        hist = b.fit([Trajectories(weights=w)], epochs=3, batch_size=2, seed=0, progress=False, rank=rank,
                     world_size=world_size)
        from safetensors.torch import save_file

        save_file({**b.state_tensors(), "history": torch.tensor(hist)}, f"{out_dir}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def test_data_parallel_fit_keeps_ranks_identical(tmp_path):
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert r0["history"].shape == (3,)
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0)
    # 8 trajectories / (2 windows x 2 ranks) = 2 steps per epoch: the weights moved
    torch.manual_seed(0)  # fit's initialization with seed=0
    init = CoordinateField(CoordinateConfig(hidden=8, coords_per_window=32)).state_dict()
    moved = max(float((r0[f"net.{k}"] - v).abs().max()) for k, v in init.items())
    assert moved > 1e-4


def test_world_size_without_process_group_raises():
    b = CoordinateBackend(hidden=8)
    with pytest.raises(ValueError, match="process group"):
        b.fit([Trajectories(weights=torch.zeros(2, 5, 3))], epochs=1, world_size=2, rank=1, progress=False)
    with pytest.raises(ValueError, match="rank"):
        b.fit([Trajectories(weights=torch.zeros(2, 5, 3))], epochs=1, world_size=2, rank=2, progress=False)


def _loss_as_written_before(net, cfg, batch, gen):
    """The coordinate loss as forecast/coordinate.py computed it by hand before it called gfm_loss."""
    from gfm_accel.flow.path import midpoint_forecast, sample_path
    from gfm_accel.forecast.coordinate.features import window_inputs

    b, n1, _ = batch.prefix.shape
    n = n1 - 1
    m_f = batch.m.float()
    t_n = n / m_f
    tctx = net.tensor_context(batch.tensor_stats, batch.kinds, window_inputs(n, m_f, history=cfg.history))
    base = net.context(batch.coord, tctx, batch.tid)

    def field_fn(x, t):
        return net.velocity(base, x, t, t_n)

    t = torch.rand(b, generator=gen)
    prefix, target = batch.prefix, batch.target
    if batch.line is not None:
        fit, at_m = batch.line
        detrended = prefix - fit
        prefix = detrended - detrended[:, n : n + 1]
        target = target - at_m
    sample = sample_path(prefix, target, batch.m, t, path=cfg.path, beta=cfg.beta, gamma=cfg.gamma)
    cfm = sample.weight * (field_fn(sample.w_t, sample.t) - sample.target).pow(2).mean(dim=-1)
    w_hat = midpoint_forecast(field_fn, prefix[:, n], t_n)
    pred = (w_hat - target).pow(2).mean(dim=-1)
    if cfg.loss_weighting == "relative":
        wt = 1.0 / batch.target.pow(2).mean(dim=-1).clamp(min=1e-2)
    else:
        wt = torch.ones_like(pred)
    cfm_w, pred_w = (wt * cfm).mean(), (wt * pred).mean()
    return cfm_w + cfg.zeta * pred_w, cfm_w, pred_w


@pytest.mark.parametrize("options", [{}, {"loss_weighting": "absolute", "path": "paper"}, {"prior": "line"},
                                     {"condition": "none", "zeta": 3.0, "beta": 0.5}])
def test_window_loss_calls_gfm_loss_with_the_same_numbers(options):
    """window_loss = gfm_loss with per-window weights: bit-identical to the old hand-written loss."""
    from gfm_accel.forecast.coordinate.field import new_field
    from gfm_accel.forecast.coordinate.train import window_loss
    from gfm_accel.forecast.coordinate.windows import prepare_sources, sample_batch

    cfg = CoordinateConfig(hidden=8, coords_per_window=32, **options)
    spec = small_spec()
    sources = prepare_sources([Trajectories(weights=decay_trajectories(spec, 4, 30, seed=2),
                                            metadata={"spec": spec.to_dict()})], cfg)
    net = new_field(cfg, 1)
    for seed in range(3):
        batch = sample_batch(cfg, sources, torch.Generator().manual_seed(seed), 5)
        new = window_loss(net, cfg, batch, torch.Generator().manual_seed(10 + seed))
        total, cfm, pred = _loss_as_written_before(net, cfg, batch, torch.Generator().manual_seed(10 + seed))
        assert torch.equal(new.total, total) and torch.equal(new.cfm, cfm) and torch.equal(new.pred, pred)
        g_new = torch.autograd.grad(new.total, list(net.parameters()), allow_unused=True)
        g_old = torch.autograd.grad(total, list(net.parameters()), allow_unused=True)
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(g_new, g_old))


def test_fit_works_without_tqdm(monkeypatch, caplog):
    """The `progress` extra is optional: without tqdm a fit logs its progress instead."""
    import logging
    import sys

    from gfm_accel._progress import have_tqdm
    from gfm_accel.forecast.forecaster import GFMForecaster

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert not have_tqdm()
    spec = small_spec()
    w = decay_trajectories(spec, 4, 20, seed=6)
    with caplog.at_level(logging.INFO, logger="gfm_accel._progress"):
        f = GFMForecaster("coordinate", hidden=8, steps_per_epoch=2).fit(
            Trajectories(weights=w, metadata={"spec": spec.to_dict()}), epochs=3, progress=True)
    assert len(f.history) == 3
    assert any("coordinate GFM 6/6" in r.getMessage() for r in caplog.records)
    d = GFMForecaster("dense", n=1, m=10, hidden=8).fit(w[:, :11, :3], epochs=2, progress=True)
    assert len(d.history) == 2
