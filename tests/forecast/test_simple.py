"""Training-free forecasters: the least-squares line through the window."""

import pytest
import torch

from gfm_accel.forecast.simple import LineFitForecaster, LinearExtrapolationForecaster


def test_linefit_extends_an_exact_line_exactly():
    t = torch.arange(5.0).view(5, 1)
    prefix = 2.0 + t * torch.tensor([0.5, -1.0, 3.0])  # (n+1=5, D=3)
    pred = LineFitForecaster().forecast(prefix, m=12)
    assert torch.allclose(pred, 2.0 + 12 * torch.tensor([0.5, -1.0, 3.0]))


def test_linefit_is_the_least_squares_line():
    prefix = torch.tensor([[0.0], [1.2], [1.8], [3.0]])
    # slope = sum((t - 1.5)(w - 1.5)) / sum((t - 1.5)^2) = 4.8 / 5 = 0.96; value at 6: 1.5 + 0.96 * 4.5
    assert LineFitForecaster().forecast(prefix, m=6).item() == pytest.approx(5.82)


def test_linefit_averages_out_noise_that_last_step_extrapolation_amplifies():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(5.0).view(5, 1)
    clean = t * torch.ones(1, 2000)
    noisy = clean + 0.3 * torch.randn(5, 2000, generator=g)
    truth = torch.full((2000,), 14.0)
    err_fit = (LineFitForecaster().forecast(noisy, m=14) - truth).pow(2).mean()
    err_last = (LinearExtrapolationForecaster().forecast(noisy, m=14) - truth).pow(2).mean()
    assert err_fit < 0.25 * err_last


def test_linefit_batched_and_single_snapshot():
    batch = torch.randn(3, 4, 6)
    out = LineFitForecaster().forecast(batch, m=7)
    assert out.shape == (3, 6)
    assert torch.allclose(out[1], LineFitForecaster().forecast(batch[1], m=7))
    one = torch.randn(1, 6)
    assert torch.equal(LineFitForecaster().forecast(one, m=3), one[0])
    with pytest.raises(ValueError):
        LineFitForecaster().forecast(batch[0], m=2)  # m must exceed n = 3
