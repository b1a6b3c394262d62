"""Tests of gfm_accel.forecast.coordinate.infer."""

from __future__ import annotations

import pytest
import torch
from coord_helpers import decay_trajectories, other_spec, small_spec

from gfm_accel.forecast.coordinate import CoordinateBackend


def test_scale_invariance_exact(trained):
    spec = other_spec()
    w = decay_trajectories(spec, 2, 12, seed=7)
    prefix = w[:, :5]
    base = trained.forecast(prefix, 11, spec).final
    for c in (1e-3, 3.7, 250.0):
        scaled = trained.forecast(prefix * c, 11, spec).final
        torch.testing.assert_close(scaled, base * c, rtol=1e-5, atol=1e-6 * c * float(base.abs().max()))


def test_chunking_does_not_change_the_forecast(trained):
    spec = other_spec()
    prefix = decay_trajectories(spec, 3, 6, seed=3)
    big = trained.forecast(prefix, 30, spec).final
    trained.config.chunk_size = 7
    try:
        small = trained.forecast(prefix, 30, spec).final
        states = trained.forecast(prefix, 30, spec, return_states=True)
    finally:
        trained.config.chunk_size = 8192
    torch.testing.assert_close(small, big, rtol=1e-6, atol=1e-6)
    assert states.states.shape[1:] == (3, spec.numel)
    torch.testing.assert_close(states.states[-1], big, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(states.states[0], prefix[:, -1])


def test_learns_and_beats_last_value_on_held_out_model(trained):
    """Portability: trained on a 2-layer MLP layout, forecasts a conv/norm/embedding model
    (different D and layout) far better than the last value and linear extrapolation."""
    spec = other_spec()
    assert spec.numel != small_spec().numel
    w = decay_trajectories(spec, 8, 40, seed=11)
    prefix, target = w[:, :5], w[:, 30]
    pred = trained.forecast(prefix, 30, spec).final
    mse = ((pred - target) ** 2).mean().item()
    mse_last = ((prefix[:, -1] - target) ** 2).mean().item()
    lin = prefix[:, -1] + 26 * (prefix[:, -1] - prefix[:, -2])
    mse_lin = ((lin - target) ** 2).mean().item()
    assert mse < 0.25 * mse_last, (mse, mse_last)
    assert mse < 0.25 * mse_lin, (mse, mse_lin)


def test_unbatched_prefix_and_n0(trained):
    spec = small_spec()
    w = decay_trajectories(spec, 1, 20, seed=5)[0]
    out = trained.forecast(w[:1], 10, spec)  # n = 0: only w_0 observed
    assert out.final.shape == (1, spec.numel)
    assert torch.isfinite(out.final).all()
    with pytest.raises(ValueError, match="m=2 must be larger than n=2"):
        trained.forecast(w[:3], 2, spec)
    with pytest.raises(ValueError, match="D=26 but the prefix has D=3"):
        trained.forecast(w[:3, :3], 10, spec)


def test_euler_with_step_and_tau_stop():
    b = CoordinateBackend(hidden=8, solver="euler", step=0.05, tau=1e9)
    r = b.forecast(torch.randn(2, 3, 20), 10)
    assert r.stopped_early and r.steps == 1  # every chunk's first update is below tau
    b2 = CoordinateBackend(hidden=8, solver="euler", step=0.1, tau=0.0)
    r2 = b2.forecast(torch.randn(2, 3, 20), 10, return_states=True)
    assert r2.steps == 8  # (1 - 2/10) / 0.1
    assert r2.times[0].item() == pytest.approx(0.2) and r2.times[-1].item() == pytest.approx(1.0)
