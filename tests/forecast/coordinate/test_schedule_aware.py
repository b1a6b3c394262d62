"""Tests of the coordinate forecaster's ``schedule_aware`` option (learning-rate inputs)."""

from __future__ import annotations

import math

import pytest
import torch
from coord_helpers import decay_trajectories, small_spec

from gfm_accel.forecast.coordinate import CoordinateBackend, CoordinateConfig
from gfm_accel.forecast.coordinate.features import lr_inputs, lr_profile_inputs
from gfm_accel.forecast.coordinate.windows import prepare_sources, sample_batch
from gfm_accel.trajectories import Trajectories, load_trajectories, save_trajectories


def _cosine(m: int) -> torch.Tensor:
    """``(m+1,)`` summed lr per interval of a decaying (cosine) schedule, entry 0 unused."""
    t = torch.arange(m + 1, dtype=torch.float64)
    out = 0.5 * (1 + torch.cos(math.pi * t / (m + 1))) * 1e-3
    out[0] = 0.0
    return out


def test_inputs_are_scale_free():
    g = torch.Generator().manual_seed(0)
    profile = torch.rand(3, 13, generator=g, dtype=torch.float64) + 0.01
    base = lr_profile_inputs(profile, 4, 12, 3)
    assert base.shape == (3, 6) and base.abs().max() > 0.05
    for c in (4.0, 1 / 8):  # powers of two: exactly the same numbers
        assert torch.equal(lr_profile_inputs(profile * c, 4, 12, 3), base)
    torch.testing.assert_close(lr_profile_inputs(profile * 3.7e-4, 4, 12, 3), base, rtol=0, atol=1e-6)


def test_constant_schedule_gives_zero_and_decay_gives_negative():
    flat = torch.full((21,), 3e-4)
    assert lr_profile_inputs(flat, 4, 20, 1).abs().max() < 1e-6
    dec = lr_profile_inputs(_cosine(20), 4, 20, 1)[0]
    assert dec[0] < -0.1  # the horizon covers less per snapshot than the window did
    assert dec[1] < dec[0]  # its last interval less still
    assert dec[2] < 0 < dec[5]  # within the window the rate falls too: the latest below the mean, the first above
    warm = lr_profile_inputs(torch.cat([torch.zeros(1), torch.linspace(0.1, 1.0, 20)]), 4, 20, 1)[0]
    assert warm[0] > 0.1
    # No reference (n = 0, or a zero learning rate over the window): as a constant schedule.
    assert lr_profile_inputs(_cosine(20), 0, 20, 1).abs().max() == 0
    assert lr_inputs(torch.zeros(1, 3), torch.ones(1), torch.ones(1), torch.ones(1)).abs().max() == 0


def test_known_numbers_from_a_training_window():
    """lr_sum[t] = t; fixed window n=2, m=6: L = (1, 2 | 3, 4, 5, 6)."""
    spec = small_spec()
    w = decay_trajectories(spec, 2, 8, seed=0)
    lr_sum = torch.arange(8, dtype=torch.float32).expand(2, 8).clone()
    cfg = CoordinateConfig(n=2, m=6, windows=False, schedule_aware=True, coords_per_window=4)
    src = prepare_sources([Trajectories(weights=w, metadata={"spec": spec.to_dict()}, extra={"lr_sum": lr_sum})],
                          cfg)
    batch = sample_batch(cfg, src, torch.Generator().manual_seed(0), 3)
    want = torch.tensor([math.log(3.0), math.log(4.0), math.log(2 / 1.5), math.log(1 / 1.5), 0.0, 0.0]) / 4
    torch.testing.assert_close(batch.lr, want.expand(3, -1), rtol=0, atol=1e-6)
    # The same profile given at inference gives the same inputs.
    torch.testing.assert_close(lr_profile_inputs(torch.arange(7.0), 2, 6, 1), want.unsqueeze(0), rtol=0, atol=1e-6)


def test_strided_windows_sum_the_intervals():
    """With stride r a window interval sums r recorded intervals."""
    spec = small_spec()
    w = decay_trajectories(spec, 1, 30, seed=0)
    lr_sum = torch.rand(1, 30, generator=torch.Generator().manual_seed(1))
    cfg = CoordinateConfig(schedule_aware=True, coords_per_window=4, strides=(3,), n_choices=(2,), horizons=(4,))
    src = prepare_sources([Trajectories(weights=w, metadata={"spec": spec.to_dict()}, extra={"lr_sum": lr_sum})],
                          cfg)
    gen = torch.Generator().manual_seed(2)
    batch = sample_batch(cfg, src, gen, 2)
    assert batch.m.tolist() == [6, 6]
    # Some start s reproduces each window's inputs from the intervals (s + 3 (t-1), s + 3 t].
    for i in range(2):
        profile = torch.zeros(7)
        hits = []
        for s in range(30 - 18):
            for t in range(1, 7):
                profile[t] = lr_sum[0, s + 3 * (t - 1) + 1 : s + 3 * t + 1].sum()
            if torch.allclose(lr_profile_inputs(profile, 2, 6, 1)[0], batch.lr[i], atol=1e-5):
                hits.append(s)
        assert hits, "no start reproduces the window's learning-rate inputs"


def test_missing_lr_sum_is_a_clear_error(tmp_path):
    spec = small_spec()
    path = save_trajectories(tmp_path / "no_lr.safetensors", decay_trajectories(spec, 2, 10, seed=0), spec=spec)
    b = CoordinateBackend(hidden=8, schedule_aware=True)
    with pytest.raises(ValueError, match=r"no_lr\.safetensors.*no 'lr_sum'"):
        b.fit([load_trajectories(path)], epochs=1, progress=False)
    bad = Trajectories(weights=torch.randn(2, 10, 5), extra={"lr_sum": -torch.ones(2, 10)})
    with pytest.raises(ValueError, match="non-negative"):
        b.fit([bad], epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"lr_profile must have shape \(m\+1,\)"):
        b.forecast(torch.randn(5, 7), 10, lr_profile=torch.ones(10))


def test_fit_save_load_round_trip_and_the_profile_matters(tmp_path):
    from gfm_accel.forecast.forecaster import GFMForecaster

    spec = small_spec()
    w = decay_trajectories(spec, 3, 16, seed=3)
    lr_sum = torch.linspace(1e-3, 1e-4, 16).expand(3, 16).clone()
    f = GFMForecaster("coordinate", n=4, m=None, hidden=8, schedule_aware=True, steps_per_epoch=3,
                      coords_per_window=16)
    f.fit(Trajectories(weights=w, metadata={"spec": spec.to_dict()}, extra={"lr_sum": lr_sum}), epochs=2,
          progress=False)
    assert bool(f.backend.net.lr_in.weight.abs().sum() > 0)  # the lr map was trained
    g = GFMForecaster.load(f.save(tmp_path / "sched.safetensors"))
    assert g.config.variant_options["schedule_aware"] is True
    prefix = w[:2, :5]
    for profile in (None, _cosine(20)):
        assert torch.equal(g.backend.forecast(prefix, 20, spec, lr_profile=profile).final,
                           f.backend.forecast(prefix, 20, spec, lr_profile=profile).final)
    decayed = g.backend.forecast(prefix, 20, spec, lr_profile=_cosine(20)).final
    constant = g.backend.forecast(prefix, 20, spec, lr_profile=torch.ones(21)).final
    assert not torch.equal(decayed, constant)
    assert torch.equal(constant, g.backend.forecast(prefix, 20, spec).final)  # None = a constant schedule


def test_default_forecaster_ignores_the_profile():
    b = CoordinateBackend(hidden=8)
    assert not hasattr(b.net, "lr_in")
    p = torch.randn(2, 5, 9)
    assert torch.equal(b.forecast(p, 12, lr_profile=_cosine(12)).final, b.forecast(p, 12).final)
    with pytest.raises(ValueError, match="schedule_aware must be True or False"):
        CoordinateConfig(schedule_aware=1)
