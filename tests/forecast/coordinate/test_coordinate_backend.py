"""Tests of gfm_accel.forecast.coordinate.backend."""

from __future__ import annotations

import pytest
import torch
from coord_helpers import decay_trajectories, other_spec, small_spec
from torch import nn

from gfm_accel.forecast.coordinate import CoordinateBackend, CoordinateConfig
from gfm_accel.trajectories import Trajectories


def test_state_round_trip_and_mismatch(trained):
    clone = CoordinateBackend.from_config(trained.config_dict())
    clone.load_state_tensors(trained.state_tensors())
    p = torch.randn(2, 5, 17)
    torch.testing.assert_close(clone.forecast(p, 40).final, trained.forecast(p, 40).final)
    total_bytes = sum(t.numel() * t.element_size() for t in trained.state_tensors().values())
    assert total_bytes < 100_000
    with pytest.raises(ValueError, match="missing"):
        clone.load_state_tensors({})
    wrong = CoordinateBackend(hidden=16).state_tensors()
    with pytest.raises(ValueError, match="shape"):
        clone.load_state_tensors(wrong)


def test_gfm_forecaster_facade_save_load(tmp_path, trained):
    from gfm_accel.forecast.forecaster import GFMForecaster

    f = GFMForecaster.from_backend(trained)
    path = f.save(tmp_path / "coord.safetensors")
    g = GFMForecaster.load(path)
    assert g.variant == "coordinate" and g.expected_dim is None
    spec = other_spec()
    p = decay_trajectories(spec, 1, 5, 9)[0]
    torch.testing.assert_close(g.forecast(p, 30, spec=spec), f.forecast(p, 30, spec=spec))
    assert path.stat().st_size < 1_000_000


def test_gfm_forecaster_builds_and_fits_coordinate_variant():
    from gfm_accel.forecast.forecaster import GFMForecaster

    spec = small_spec()
    w = decay_trajectories(spec, 4, 20, seed=6)
    f = GFMForecaster("coordinate", n=4, m=None, condition="prefix", path="from_last", solver="midpoint",
                      hidden=8, steps_per_epoch=2)
    f.fit(Trajectories(weights=w, metadata={"spec": spec.to_dict()}), epochs=2, lr=1e-3, progress=False)
    assert f.m == 19 and f.expected_dim is None
    assert f.forecast(w[0, :5], spec=spec).shape == (spec.numel,)
    assert f.forecast(w[:2, :3], 7, spec=spec).shape == (2, spec.numel)  # another (n, m)


def test_line_through_matches_the_line_fit_forecaster():
    from gfm_accel.forecast.simple import LineFitForecaster, line_through

    g = torch.Generator().manual_seed(0)
    prefix = torch.randn(3, 5, 7, generator=g)
    fit, at_m = line_through(prefix, torch.tensor([9.0, 12.0, 30.0]), fitted=True)
    for i, m in enumerate((9, 12, 30)):
        torch.testing.assert_close(at_m[i], LineFitForecaster().forecast(prefix[i], m), rtol=1e-5, atol=1e-5)
    # the fitted values are the line at 0..n: their residuals are orthogonal to (1, j)
    resid = prefix - fit
    assert resid.sum(dim=1).abs().max() < 1e-5
    assert (resid * torch.arange(5.0).view(1, 5, 1)).sum(dim=1).abs().max() < 1e-4
    one, one_m = line_through(prefix[:, :1], torch.tensor([4.0, 4.0, 4.0]), fitted=True)
    torch.testing.assert_close(one_m, prefix[:, 0])
    torch.testing.assert_close(one, prefix[:, :1])


def test_line_prior_with_a_zero_field_is_exactly_the_line():
    """prior="line": the field corrects the least-squares line, so a zero field forecasts the line."""
    from gfm_accel.forecast.simple import LineFitForecaster

    spec = other_spec()
    b = CoordinateBackend(hidden=8, prior="line")
    nn.init.zeros_(b.net.out.weight)
    nn.init.zeros_(b.net.out.bias)
    w = decay_trajectories(spec, 2, 20, seed=5)
    pred = b.forecast(w[:, :5], 15, spec).final
    torch.testing.assert_close(pred, LineFitForecaster().forecast(w[:, :5], 15), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown prior 'cubic'"):
        CoordinateConfig(prior="cubic")


def test_line_prior_learns_a_correction_the_line_misses():
    """On geometric decays the line overshoots; the trained residual field beats it on a held-out layout."""
    from gfm_accel.forecast.simple import LineFitForecaster

    spec = small_spec()
    w = decay_trajectories(spec, 16, 40, seed=1)
    b = CoordinateBackend(hidden=32, coords_per_window=64, n_choices=(2, 3, 4), strides=(1, 2), prior="line")
    b.fit([Trajectories(weights=w, metadata={"spec": spec.to_dict()})], epochs=150, batch_size=16, lr=3e-3,
          seed=0, progress=False)
    held = decay_trajectories(other_spec(), 8, 40, seed=11)
    prefix, target = held[:, :5], held[:, 30]
    mse = ((b.forecast(prefix, 30, other_spec()).final - target) ** 2).mean().item()
    mse_line = ((LineFitForecaster().forecast(prefix, 30) - target) ** 2).mean().item()
    assert mse < 0.5 * mse_line, (mse, mse_line)  # 0.37 measured; the prior="last" field gets 0.01 here
    assert CoordinateBackend.from_config(b.config_dict()).config.prior == "line"
