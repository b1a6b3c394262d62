"""ODE inference: exact linear solutions, convergence orders, early stopping, states."""

import math

import pytest
import torch

from gfm_accel.flow import integrate

A = -1.5  # dw/dt = A w  ->  w(1) = w(t0) exp(A (1 - t0))


def linear(w, t):
    return A * w


def _err(method, step, t0=0.2):
    w0 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    r = integrate(linear, w0, t0, method=method, step=step, tau=0.0)
    exact = w0 * math.exp(A * (1 - t0))
    return (r.final - exact).abs().max().item(), r


@pytest.mark.parametrize("method, order, tol", [("euler", 1, 1e-2), ("midpoint", 2, 1e-4), ("rk4", 4, 1e-9)])
def test_linear_field_exact_solution_and_order(method, order, tol):
    e1, r = _err(method, 0.01)
    e2, _ = _err(method, 0.005)
    assert e1 < tol
    assert r.steps == 80 and not r.stopped_early
    # halving h divides the error by ~2^order
    assert math.log2(e1 / e2) == pytest.approx(order, abs=0.2)


def test_time_dependent_field_and_shortened_last_step():
    # dw/dt = t from 0 to 1 -> 0.5; midpoint is exact for fields linear in t; step 0.3 -> 4 steps (last 0.1)
    r = integrate(lambda w, t: t[:, None].expand_as(w), torch.zeros(1, 1), 0.0, method="midpoint", step=0.3, tau=0.0,
                  return_states=True)
    assert r.steps == 4
    assert r.final.item() == pytest.approx(0.5, abs=1e-6)
    assert torch.allclose(r.times, torch.tensor([0.0, 0.3, 0.6, 0.9, 1.0]))
    # Euler: sum h_k t_k = 0.3*0 + 0.3*0.3 + 0.3*0.6 + 0.1*0.9 = 0.36
    r = integrate(lambda w, t: t[:, None].expand_as(w), torch.zeros(1, 1), 0.0, step=0.3, tau=0.0)
    assert r.final.item() == pytest.approx(0.36, abs=1e-6)


def test_states_for_figure2():
    w0 = torch.randn(3, 2)
    r = integrate(linear, w0, 0.5, num_steps=10, tau=0.0, return_states=True)
    assert r.states.shape == (11, 3, 2) and r.times.shape == (11,)
    assert torch.equal(r.states[0], w0) and torch.equal(r.states[-1], r.final)
    assert r.times[0].item() == pytest.approx(0.5) and r.times[-1].item() == pytest.approx(1.0)


def test_early_stop_per_sample():
    # sample 0 has a vanishing field (stops after its first step); sample 1 moves at speed 1
    def field(w, t):
        v = torch.ones_like(w)
        v[0] = 1e-9
        return v

    r = integrate(field, torch.zeros(2, 1), 0.0, step=0.1, tau=1e-6)
    assert r.stopped_early
    assert r.steps == 10
    assert r.stop_times[0].item() == pytest.approx(0.1) and r.stop_times[1].item() == pytest.approx(1.0)
    assert r.final[1].item() == pytest.approx(1.0, abs=1e-6) and r.final[0].abs().item() < 1e-8
    # decaying field dw/dt = -50 w: increments shrink below tau well before t = 1
    r = integrate(lambda w, t: -50.0 * w, torch.ones(1, 4), 0.0, step=0.01, tau=1e-3)
    assert r.stopped_early and r.steps < 100
    assert (0.01 * 50.0 * r.final.norm()).item() < 2e-3


def test_rms_norm_scales_tau_with_dimension():
    field = lambda w, t: torch.full_like(w, 1e-5)  # noqa: E731  |h v|_2 = 1e-6 * sqrt(D) at h = 0.1
    w0 = torch.zeros(1, 100)
    assert not integrate(field, w0, 0.0, step=0.1, tau=2e-6).stopped_early  # l2: 1e-5 > 2e-6
    assert integrate(field, w0, 0.0, step=0.1, tau=2e-6, norm="rms").stopped_early  # rms: 1e-6 < 2e-6


def test_per_sample_start_times():
    r = integrate(lambda w, t: torch.ones_like(w), torch.zeros(2, 1), torch.tensor([0.0, 0.5]), step=0.1,
                  tau=0.0, return_states=True)
    assert torch.allclose(r.final, torch.tensor([[1.0], [0.5]]), atol=1e-6)
    assert r.steps == 10 and r.times.shape == (11, 2)
    r = integrate(lambda w, t: torch.ones_like(w), torch.zeros(2, 1), torch.tensor([0.0, 0.5]), num_steps=5, tau=0.0)
    assert torch.allclose(r.final, torch.tensor([[1.0], [0.5]]), atol=1e-6) and r.steps == 5


def test_start_at_end_is_a_no_op():
    w0 = torch.randn(2, 3)
    r = integrate(linear, w0, 1.0)
    assert r.steps == 0 and torch.equal(r.final, w0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="heun"), "unknown ODE method"),
        (dict(step=0.1, num_steps=3), "either step or num_steps"),
        (dict(step=-1.0), "step must be positive"),
        (dict(tau=-1.0), "tau"),
        (dict(t0=1.5), "t0 must not exceed"),
        (dict(norm="max"), "unknown norm"),
    ],
)
def test_errors(kwargs, message):
    args = dict(t0=0.0) | kwargs
    with pytest.raises(ValueError, match=message):
        integrate(linear, torch.zeros(1, 2), **args)
