"""Tests of gfm_accel.forecast.coordinate.windows: the training-window sampler."""

from __future__ import annotations

import pytest
import torch
from coord_helpers import decay_trajectories, other_spec, small_spec

from gfm_accel.forecast.coordinate.config import CoordinateConfig
from gfm_accel.forecast.coordinate.windows import prepare_sources, sample_batch, window_plan
from gfm_accel.trajectories import Trajectories


def _sources(cfg, t_len=30):
    spec = small_spec()
    w = decay_trajectories(spec, 4, t_len, seed=0)
    return prepare_sources([Trajectories(weights=w, metadata={"spec": spec.to_dict()})], cfg), w


def test_window_plan_always_fits():
    cfg = CoordinateConfig(n_choices=(1, 4), strides=(1, 2, 4))
    gen = torch.Generator().manual_seed(0)
    for t_len in (3, 8, 30):
        for _ in range(50):
            n, r, h = window_plan(cfg, t_len, gen)
            assert n in (1, 4) or t_len < 6
            assert h >= 1 and (n + h) * r <= t_len - 1


def test_sample_batch_is_seeded_and_normalized():
    cfg = CoordinateConfig(coords_per_window=16, n_choices=(3,))
    sources, w = _sources(cfg)
    a = sample_batch(cfg, sources, torch.Generator().manual_seed(5), 6)
    b = sample_batch(cfg, sources, torch.Generator().manual_seed(5), 6)
    assert torch.equal(a.prefix, b.prefix) and torch.equal(a.target, b.target) and torch.equal(a.m, b.m)
    assert a.prefix.shape == (6, 4, 16) and a.target.shape == (6, 16) and a.coord.shape == (6, 16, 5)
    assert torch.equal(a.prefix[:, 3], torch.zeros(6, 16))  # the frame is centred on w_n
    assert bool((a.m > 3).all()) and a.tid.shape == (6, 16) and int(a.tid.max()) < len(small_spec())
    assert a.line is None


def test_fixed_window_and_line_prior():
    cfg = CoordinateConfig(windows=False, n=2, m=11, coords_per_window=8, prior="line")
    sources, _ = _sources(cfg, t_len=12)
    batch = sample_batch(cfg, sources, torch.Generator().manual_seed(0), 3)
    assert batch.m.tolist() == [11, 11, 11] and batch.prefix.shape == (3, 3, 8)
    fit, at_m = batch.line
    assert fit.shape == (3, 3, 8) and at_m.shape == (3, 8)


def test_prepare_sources_checks_the_data():
    cfg = CoordinateConfig(windows=False, n=2, m=20)
    with pytest.raises(ValueError, match="T=12 snapshots.*m=20"):
        prepare_sources([Trajectories(weights=torch.zeros(2, 12, 3))], cfg)
    with pytest.raises(ValueError, match="at least one"):
        prepare_sources([], cfg)
    spec = other_spec()
    with pytest.raises(ValueError, match=f"spec describes D={spec.numel} but weights have D=3"):
        prepare_sources([Trajectories(weights=torch.zeros(2, 12, 3), metadata={"spec": spec.to_dict()})],
                        CoordinateConfig())
