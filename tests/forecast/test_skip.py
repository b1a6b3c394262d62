"""The linear skip path of the dense field (gfm_accel.forecast.skip) and the dense default it sets."""

from __future__ import annotations

import pytest
import torch

from gfm_accel.forecast.dense import DenseBackend, DenseConfig
from gfm_accel.forecast.forecaster import GFMForecaster
from gfm_accel.forecast.skip import FULL_MAX_FEATURES, LinearSkip, fit_linear_skip, skip_features


def gd_trajectories(n_traj: int, steps: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
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
    return torch.stack(out).to(dtype)


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


def test_dense_default_is_prefix_with_auto_skip_and_the_ablation_is_algorithm1():
    assert (DenseConfig().condition, DenseConfig().skip) == ("prefix", "auto")
    f = GFMForecaster("dense", n=2, m=9)
    assert f.config.condition == "prefix" and f.config.variant_options["skip"] == "auto"
    assert f.config.variant_options["skip_chosen"] is None  # chosen by fit
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


# ------------------------------------------------------------------ the linear-dynamics skip and "auto"
def test_step_maps_are_symmetric_when_overdetermined_and_diagonal_otherwise():
    from gfm_accel.forecast.skip import fit_step_maps

    g = torch.Generator().manual_seed(0)
    m = torch.randn(3, 3, generator=g, dtype=torch.float64)
    a = 0.5 * torch.eye(3, dtype=torch.float64) + 0.1 * (m + m.T)
    w, d = [torch.randn(3, generator=g, dtype=torch.float64)], torch.randn(3, generator=g, dtype=torch.float64)
    for _ in range(6):  # n = 6: 5 transitions x 3 equations >= 6 unknowns
        w.append(w[-1] + d)
        d = a @ d
    w = torch.stack(w).unsqueeze(0)
    torch.testing.assert_close(fit_step_maps(w)[0], a)
    # n = 2 with D = 3: one transition, 3 equations < 6 unknowns -> one factor per coordinate
    diag = fit_step_maps(w[:, :3])[0]
    steps = w[0, 1:3] - w[0, :2]
    torch.testing.assert_close(diag, torch.diag(steps[1] / steps[0]))
    with pytest.raises(ValueError, match="at least 3 snapshots"):
        fit_step_maps(w[:, :2])


def test_dynamics_displacement_is_the_iterated_map_and_linear_for_a_constant_step():
    from gfm_accel.forecast.skip import dynamics_displacement

    w = gd_trajectories(4, 60, seed=5, dtype=torch.float64)  # a linear system: d_{j+1} = (I - lr H) d_j, H symmetric
    disp = dynamics_displacement(w[:, :5], 56)
    err = (w[:, 4] + disp - w[:, 60]).abs().max()
    assert float(err) < 1e-8 * float((w[:, 60] - w[:, 4]).abs().max()), float(err)
    line = torch.arange(6.0, dtype=torch.float64).view(1, 6, 1) * torch.tensor([0.5, -2.0], dtype=torch.float64)
    torch.testing.assert_close(dynamics_displacement(line, 10), torch.tensor([[5.0, -20.0]], dtype=torch.float64))
    grow = 1.1 ** torch.arange(6.0, dtype=torch.float64).view(1, 6, 1)  # eigenvalue 1.1 clipped to 1
    torch.testing.assert_close(dynamics_displacement(grow, 3), 3 * (grow[:, 5] - grow[:, 4]))


def test_a_diagonal_map_is_applied_per_coordinate_as_the_dense_eigendecomposition_would():
    from gfm_accel.forecast.skip import DYNAMICS_MAX_EIG, dynamics_displacement, fit_step_maps

    g = torch.Generator().manual_seed(3)
    w = torch.cumsum(torch.randn(2, 5, 7, generator=g, dtype=torch.float64), dim=1)  # n = 4, D = 7 >= 2n - 3
    lam, vec = torch.linalg.eigh(fit_step_maps(w))  # the dense route, for reference
    lam = lam.clamp(-DYNAMICS_MAX_EIG, DYNAMICS_MAX_EIG)
    geo = sum(lam ** j for j in range(1, 9))
    last = w[:, -1] - w[:, -2]
    dense = torch.einsum("bij,bj->bi", vec, torch.einsum("bij,bi->bj", vec, last) * geo)
    torch.testing.assert_close(dynamics_displacement(w, 8), dense, rtol=1e-12, atol=1e-12)
    # a CNN-sized D: O(B D) memory (a dense (D, D) map of 200k would need 320 GB)
    big = torch.cumsum(torch.randn(1, 5, 200_000, generator=g), dim=1)
    out = dynamics_displacement(big, 36)
    assert out.shape == (1, 200_000) and bool(torch.isfinite(out).all())


def kinked_trajectories(n_traj: int, steps: int, seed: int) -> torch.Tensor:
    """Constant steps that stop at step 10: w_40 - w_4 = 6 v is linear in the prefix, but the
    prefix's own dynamics (a constant step) extrapolates 36 v."""
    g = torch.Generator().manual_seed(seed)
    w0, v = torch.randn(n_traj, 1, 2, generator=g), 0.1 * torch.randn(n_traj, 1, 2, generator=g)
    return w0 + v * torch.arange(steps + 1.0).clamp(max=10).view(1, -1, 1)


@pytest.mark.parametrize("kind, expect", [("gd", "dynamics"), ("kinked", "none")])
def test_auto_takes_the_dynamics_skip_only_where_held_out_pairs_say_so(kind, expect, caplog, tmp_path):
    import logging
    import re

    make = gd_trajectories if kind == "gd" else kinked_trajectories
    w, held = make(30, 40, seed=0), make(10, 40, seed=1)
    options = dict(n=4, m=40, hidden=16)
    with caplog.at_level(logging.INFO, logger="gfm_accel.forecast.dense"):
        f = GFMForecaster("dense", skip="auto", **options).fit(w, epochs=20, seed=0, progress=False)
    msg = next(r.getMessage() for r in caplog.records if "skip='auto'" in r.getMessage())
    errors = {k: float(v) for k, v in re.findall(r"(none|dynamics) ([0-9.e+-]+|inf)", msg)}
    assert set(errors) == {"none", "dynamics"}
    chosen = f.backend.config.skip_chosen
    assert chosen == expect == ("dynamics" if errors["dynamics"] < 0.5 * errors["none"] else "none"), msg
    b = f.backend
    if chosen == "dynamics":
        assert b.field_scale == 0.0 and not bool(b.field.net[-1].weight.detach().any())
        skip_alone = held[:, 4] + b._skip_shift(held[:, :5], 40)
        torch.testing.assert_close(f.forecast(held[:, :5]), skip_alone, rtol=1e-5, atol=1e-6)
        mse = float(((f.forecast(held[:, :5]) - held[:, 40]) ** 2).mean())
        assert mse < 1e-4 * float(((held[:, 4] - held[:, 40]) ** 2).mean())
    else:  # the field alone, exactly the skip="none" fit (same seed, same data)
        plain = GFMForecaster("dense", skip="none", **options).fit(w, epochs=20, seed=0, progress=False)
        assert b.skip is None and torch.equal(f.forecast(held[:, :5]), plain.forecast(held[:, :5]))
    g = GFMForecaster.load(f.save(tmp_path / "auto.safetensors"))  # the choice and the skip survive a file
    assert g.backend.config.skip_chosen == chosen
    assert torch.equal(g.forecast(held[:, :5]), f.forecast(held[:, :5]))


def test_auto_with_fewer_than_five_pairs_is_the_field_alone():
    w = gd_trajectories(4, 20, seed=0)
    auto = GFMForecaster("dense", n=4, m=20, hidden=8, skip="auto").fit(w, epochs=5, seed=0, progress=False)
    plain = GFMForecaster("dense", n=4, m=20, hidden=8, skip="none").fit(w, epochs=5, seed=0, progress=False)
    assert auto.backend.config.skip_chosen == "none" and auto.backend.skip is None
    assert torch.equal(auto.forecast(w[:, :5]), plain.forecast(w[:, :5]))


def test_skip_options_are_checked_at_construction():
    with pytest.raises(ValueError, match="needs n >= 2"):
        DenseConfig(n=1, m=9, skip="dynamics")
    with pytest.raises(ValueError, match="skip_chosen='lstsq' is set by fitting skip='auto'"):
        DenseConfig(skip="none", skip_chosen="lstsq")
    with pytest.raises(ValueError, match="skip_gate needs skip"):
        DenseConfig(skip="none", skip_gate=True)


def test_dynamics_skip_under_a_residual_field_starts_at_the_skip():
    w = gd_trajectories(30, 40, seed=2)
    f = GFMForecaster("dense", n=4, m=40, hidden=16, skip="dynamics").fit(w, epochs=1, lr=1e-12, seed=0,
                                                                                progress=False)
    held = gd_trajectories(5, 40, seed=3)[:, :5]
    skip_alone = held[:, 4] + f.backend._skip_shift(held, 40)
    torch.testing.assert_close(f.forecast(held), skip_alone, rtol=1e-4, atol=1e-4)
    assert float(((skip_alone - gd_trajectories(5, 40, seed=3)[:, 40]) ** 2).mean()) < 1e-6
