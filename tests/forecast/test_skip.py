"""The linear skip path of the dense field (gfm_accel.forecast.skip) and the dense default it sets."""

from __future__ import annotations

import pytest
import torch

from gfm_accel.forecast.dense import DenseBackend, DenseConfig
from gfm_accel.forecast.forecaster import GFMForecaster
from gfm_accel.forecast.skip import FULL_MAX_FEATURES, LinearSkip, fit_linear_skip, skip_features


def gd_trajectories(n_traj: int, steps: int, seed: int) -> torch.Tensor:
    """Full-batch gradient descent on random 1-D linear regressions: a linear system per task."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_traj):
        x = torch.rand(50, generator=g) * 2 - 1
        y = (2 + 0.1 * torch.randn((), generator=g)) * x + 1 + 0.1 * torch.randn((), generator=g)
        w = torch.randn(2, generator=g, dtype=torch.float64)
        snaps = [w.clone()]
        for _ in range(steps):
            r = w[0] * x.double() + w[1] - y.double()
            w = w - 0.05 * torch.stack([2 * (r * x).mean(), 2 * r.mean()])
            snaps.append(w.clone())
        out.append(torch.stack(snaps))
    return torch.stack(out).float()


def test_features_by_hand():
    p = torch.tensor([[[1.0, 10.0], [2.0, 30.0], [4.0, 60.0]]])  # (B=1, n+1=3, D=2)
    assert skip_features(p)[0].tolist() == [[4.0, 2.0, 1.0, 1.0], [60.0, 30.0, 20.0, 1.0]]
    assert skip_features(p, full=True)[0, 0].tolist() == [4.0, 2.0, 1.0, 60.0, 30.0, 20.0, 1.0]
    assert skip_features(p[:, :1])[0].tolist() == [[1.0, 1.0], [10.0, 1.0]]  # n = 0: w_0 and 1


def test_exact_on_a_linear_map_and_both_forms():
    g = torch.Generator().manual_seed(0)
    prefix = torch.randn(40, 3, 4, generator=g)
    a = torch.randn(4, 3 * 4, generator=g) * 0.3  # displacement = full linear map + 0.5
    disp = torch.einsum("bk,dk->bd", skip_features(prefix, full=True)[:, 0, :-1], a) + 0.5
    skip = fit_linear_skip(prefix, disp)
    assert skip.coef.shape == (4, 13) == LinearSkip.shape_for(2, 4)
    torch.testing.assert_close(skip.displacement(prefix), disp, rtol=1e-4, atol=1e-4)
    big = torch.randn(20, 2, FULL_MAX_FEATURES, generator=g)  # (n+1) D > the cap: per coordinate
    assert fit_linear_skip(big, big[:, 1] - big[:, 0]).coef.shape == (FULL_MAX_FEATURES, 3)
    with pytest.raises(ValueError, match="do not fit a prefix"):
        skip.displacement(prefix[:, :2])


def test_the_penalty_is_chosen_without_the_test_data_and_shrinks_noise():
    """Pure-noise targets: leave-one-out picks a large penalty, so the map predicts ~ the mean."""
    g = torch.Generator().manual_seed(1)
    prefix, noise = torch.randn(30, 5, 2, generator=g), torch.randn(30, 2, generator=g)
    skip = fit_linear_skip(prefix, noise)
    held = torch.randn(200, 5, 2, generator=g)
    pred = skip.displacement(held)
    assert float(pred.var(dim=0).max()) < 0.2  # OLS on 11 regressors would vary far more


def test_dense_default_is_prefix_without_skip_and_the_ablation_is_algorithm1():
    assert (DenseConfig().condition, DenseConfig().skip) == ("prefix", "none")
    f = GFMForecaster("dense", n=2, m=9)
    assert f.config.condition == "prefix" and f.config.variant_options["skip"] == "none"
    assert GFMForecaster("dense", condition="none").config.condition == "none"
    assert GFMForecaster("dense", skip="lstsq").config.variant_options["skip"] == "lstsq"
    with pytest.raises(ValueError, match="unknown skip 'cubic'"):
        DenseConfig(skip="cubic")


def test_skip_reaches_least_squares_on_gradient_descent(tmp_path):
    """GD on linear regression is a linear system: the skip forecaster is ~exact, far better
    than Algorithm 1's field, and a saved file forecasts the same after loading."""
    w = gd_trajectories(30, 40, seed=0)
    held = gd_trajectories(10, 40, seed=1)
    default = GFMForecaster("dense", n=4, m=40, hidden=16, skip="lstsq").fit(w, epochs=30, seed=0, progress=False)
    ablation = GFMForecaster("dense", n=4, m=40, hidden=16, condition="none").fit(w, epochs=30, seed=0,
                                                                                  progress=False)
    mse = lambda f: float(((f.forecast(held[:, :5]) - held[:, 40]) ** 2).mean())  # noqa: E731
    last = float(((held[:, 4] - held[:, 40]) ** 2).mean())
    assert mse(default) < 1e-3 * last, (mse(default), last)
    assert mse(default) < 0.01 * mse(ablation)
    g = GFMForecaster.load(default.save(tmp_path / "d.safetensors"))
    assert torch.equal(g.forecast(held[:, :5]), default.forecast(held[:, :5]))


def decay_trajectories(n_traj: int, steps: int, seed: int) -> torch.Tensor:
    """Geometric decays with a rate per trajectory: w_40 is far from linear in the prefix."""
    g = torch.Generator().manual_seed(seed)
    target, w0 = torch.randn(n_traj, 1, 2, generator=g), torch.randn(n_traj, 1, 2, generator=g)
    rate = 0.75 + 0.2 * torch.rand(n_traj, 1, 1, generator=g)
    return target + (w0 - target) * rate ** torch.arange(steps + 1.0).view(1, -1, 1)


@pytest.mark.parametrize("case", [("gd", 0, 15, 1e-4), ("gd", 3, 15, 1e-4), ("decay", 2, 30, 3e-3)])
def test_gate_scales_the_field_by_its_held_out_share(case, caplog):
    """The gate ends in the skip alone (scale 0, zero last layer) or in the ungated fit with the
    field's addition scaled by the factor it logged (in [0, 1])."""
    import logging

    kind, seed, epochs, lr = case
    if kind == "gd":
        w = gd_trajectories(30, 40, seed=seed)
        w = w + 0.01 * torch.randn(w.shape, generator=torch.Generator().manual_seed(seed))  # noisy snapshots
        held = gd_trajectories(10, 40, seed=seed + 100)[:, :5]
    else:
        w, held = decay_trajectories(40, 40, seed), decay_trajectories(10, 40, seed + 100)[:, :5]
    options = dict(epochs=epochs, lr=lr, seed=0, progress=False)
    with caplog.at_level(logging.INFO, logger="gfm_accel.forecast.dense"):
        gated = GFMForecaster("dense", n=4, m=40, hidden=16, skip="lstsq", skip_gate=True).fit(w, **options)
    line = next(r.getMessage() for r in caplog.records if "gate" in r.getMessage())
    scale = gated.backend.field_scale
    assert 0.0 <= scale <= 1.0 and line.endswith(f"field scale {scale:.3g}")
    b = gated.backend
    skip_only = held[:, 4] + b.skip.displacement(held)
    if kind == "decay":  # measured: the field helps, but not all of it (scale 0.837)
        assert 0.0 < scale < 1.0
    if scale == 0.0:
        last = b.field.net[-1]
        assert not bool(last.weight.detach().any()) and not bool(last.bias.detach().any())
        torch.testing.assert_close(gated.forecast(held), skip_only, rtol=1e-5, atol=1e-6)
    else:
        ungated = GFMForecaster("dense", n=4, m=40, hidden=16, skip="lstsq").fit(w, **options)
        expect = skip_only + scale * (ungated.forecast(held) - skip_only)
        torch.testing.assert_close(gated.forecast(held), expect, rtol=1e-5, atol=1e-6)


def test_files_from_before_the_skip_load_without_it():
    """A fitted dense config without a 'skip' key was written before the option: no skip."""
    b = DenseBackend.from_config({"n": 1, "m": 7, "hidden": 4, "dim": 3, "condition": "prefix"})
    assert b.config.skip == "none" and b.skip is None


def test_the_displacement_is_clamped_to_the_widened_training_range():
    g = torch.Generator().manual_seed(2)
    prefix = torch.randn(30, 3, 2, generator=g)
    disp = prefix[:, -1] - prefix[:, 0]  # in [lo, hi] per coordinate
    skip = fit_linear_skip(prefix, disp)
    lo, hi = disp.min(dim=0).values, disp.max(dim=0).values
    torch.testing.assert_close(skip.low, lo - 0.5 * (hi - lo))
    torch.testing.assert_close(skip.high, hi + 0.5 * (hi - lo))
    far = prefix[:4] * 1e6  # unlike any training prefix: the least-squares map alone would give ~1e6
    out = skip.displacement(far)
    assert bool((out <= skip.high).all() and (out >= skip.low).all())
