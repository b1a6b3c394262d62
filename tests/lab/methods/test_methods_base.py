"""The Method interface: plain equals a hand loop, registry errors, state round-trip and RNG for every method."""

import random

import numpy as np
import pytest
import torch
from _method_helpers import adamw, data, evaluated, flat, mlp, run, sgd

from gfm_accel.jump import JumpConfig
from gfm_accel.lab.methods import METHODS, Jump, Method, Plain, build_method
from gfm_accel.lab.schedules import build_scheduler
from gfm_accel.forecast.simple import LinearExtrapolationForecaster

# Small settings so that a 7-step run crosses a synchronisation mid-way.
SETTINGS = {
    "plain": {},
    "ema": {"decay": 0.9},
    "lookahead": {"k": 3, "alpha": 0.5},
    "schedulefree": {"lr_scale": 2.0},
    "outer_nesterov": {"k": 3, "outer_lr": 0.8, "momentum": 0.9},
}


def test_plain_equals_a_hand_written_loop_with_the_scheduler():
    x, y = data()
    model_a, model_b = mlp(), mlp()
    method = Plain().attach(model_a, adamw(), total_steps=10, schedule="warmup_cosine", warmup=0.2)
    got = run(method, model_a, 10, (x, y))
    opt = torch.optim.AdamW(model_b.parameters(), lr=0.01, weight_decay=0.01)
    sched = build_scheduler(opt, "warmup_cosine", 10, 0.2)
    for i in range(10):
        xb, yb = x[(i * 8) % 32:][:8], y[(i * 8) % 32:][:8]
        opt.zero_grad(set_to_none=True)
        (model_b(xb) - yb).pow(2).mean().backward()
        opt.step()
        sched.step()
        assert torch.equal(got[i], flat(model_b))
    assert method.steps == 10
    assert torch.equal(evaluated(method), flat(model_a))


def test_registry_names_grids_and_errors():
    assert sorted(METHODS) == ["ema", "lookahead", "outer_nesterov", "plain", "schedulefree"]
    assert Plain.grid() == [{}]
    assert METHODS["ema"].grid() == [{"decay": 0.99}, {"decay": 0.999}, {"decay": 0.9999}]
    assert len(METHODS["lookahead"].grid()) == 4
    assert len(METHODS["outer_nesterov"].grid()) == 8
    assert {"k": 20, "outer_lr": 0.5, "momentum": 0.9} in METHODS["outer_nesterov"].grid()
    for name, cls in METHODS.items():
        for hp in cls.grid():
            assert build_method(name, **hp).hparams.items() >= hp.items()
    with pytest.raises(ValueError, match="unknown method 'swa'"):
        build_method("swa")
    with pytest.raises(ValueError, match=r"unknown ema hyperparameter\(s\) \['k'\]"):
        build_method("ema", k=3)
    with pytest.raises(ValueError, match="decay must be in"):
        build_method("ema", decay=1.0)
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        Plain().attach(mlp(), sgd(), total_steps=0)
    with pytest.raises(ValueError, match="unknown schedule"):
        Plain().attach(mlp(), sgd(), total_steps=3, schedule="cosine")
    with pytest.raises(RuntimeError, match="call attach"):
        Plain().step()
    m = Plain().attach(mlp(), sgd(), total_steps=3)
    with pytest.raises(RuntimeError, match="already attached"):
        m.attach(mlp(), sgd(), total_steps=3)


def _make(name: str) -> Method:
    if name == "jump":
        return Jump(LinearExtrapolationForecaster(), JumpConfig(unit="step", every_n_steps=1, n=2, horizon=2, every=2,
                                                        jump_past_end=True, guard=False))
    return build_method(name, **SETTINGS[name])


@pytest.mark.parametrize("name", sorted(SETTINGS) + ["jump"])
def test_state_dict_round_trip_continues_identically(name):
    x, y = data()
    ref_model = mlp()
    ref = _make(name).attach(ref_model, adamw(), total_steps=9, schedule="warmup_cosine", warmup=0.2)
    ref_w = run(ref, ref_model, 9, (x, y))
    model = mlp()
    first = _make(name).attach(model, adamw(), total_steps=9, schedule="warmup_cosine", warmup=0.2)
    run(first, model, 4, (x, y))
    assert torch.equal(flat(model), ref_w[3])
    state, weights = first.state_dict(), {k: v.clone() for k, v in model.state_dict().items()}
    resumed_model = mlp(seed=5)  # other init: everything must come from the saved state
    resumed_model.load_state_dict(weights)
    resumed = _make(name).attach(resumed_model, adamw(), total_steps=9, schedule="warmup_cosine", warmup=0.2)
    resumed.load_state_dict(state)
    got = run(resumed, resumed_model, 5, (x, y), start=4)
    for a, b in zip(got, ref_w[4:]):
        assert torch.equal(a, b)
    assert torch.equal(evaluated(resumed), evaluated(ref))
    assert resumed.steps == ref.steps == 9
    if name == "jump":
        key = lambda m: [(r.step, r.m, r.accepted, r.jump_norm) for r in m.jump.history]  # noqa: E731
        assert len(ref.jump.history) >= 2 and key(resumed) == key(ref)


def test_load_state_dict_rejects_another_method_or_hparams():
    a = build_method("ema", decay=0.9).attach(mlp(), sgd(), total_steps=3)
    b = build_method("ema", decay=0.99).attach(mlp(), sgd(), total_steps=3)
    with pytest.raises(ValueError, match="does not match"):
        b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="does not match"):
        Plain().attach(mlp(), sgd(), total_steps=3).load_state_dict(a.state_dict())


@pytest.mark.parametrize("name", sorted(SETTINGS) + ["jump"])
def test_no_global_rng_consumed(name):
    model, (x, y) = mlp(), data()
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    method = _make(name)
    method.attach(model, adamw(), total_steps=7, schedule="warmup_cosine", warmup=0.2,
                  guard_fn=lambda m: float((m(x) - y).pow(2).mean()))
    run(method, model, 7, (x, y))
    evaluated(method)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert random.getstate() == states[2]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_evaluating_restores_the_training_run_and_mode(name):
    """Evaluating every step leaves the trajectory bit-identical to never evaluating."""
    x, y = data()
    model_a, model_b = mlp(), mlp()
    a = _make(name).attach(model_a, adamw(), total_steps=7)
    b = _make(name).attach(model_b, adamw(), total_steps=7)
    for i in range(7):
        wa, wb = run(a, model_a, 1, (x, y), start=i), run(b, model_b, 1, (x, y), start=i)
        with b.evaluating() as m:
            assert not m.training
        assert model_b.training
        assert torch.equal(wa[0], wb[0])


def test_a_few_steps_reduce_the_loss_for_every_method_at_its_defaults():
    x, y = data(n=64)
    for name in sorted(SETTINGS):
        model = mlp()
        method = build_method(name).attach(model, adamw(0.03), total_steps=40, warmup=0.1)
        with method.evaluating() as m:
            before = (m(x) - y).pow(2).mean().item()
        run(method, model, 40, (x, y))
        with method.evaluating() as m:
            after = (m(x) - y).pow(2).mean().item()
        assert after < 0.7 * before, name
