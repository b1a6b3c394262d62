"""The fresh test tasks: they build, train, are deterministic, new, and registered with the tuned protocol."""

import doctest

import pytest
import torch

from gfm_accel.lab.datasets import package_bytes
from gfm_accel.lab.optim import build_optimizer
from gfm_accel.lab.tasks import fresh
from gfm_accel.lab.tasks.fresh import FRESH_TASKS, STDLIB_PACKAGES, DWConvPackages, fresh_workload
from gfm_accel.lab.tasks.workload import num_parameters


def test_doctests_and_names():
    assert doctest.testmod(fresh, optionflags=doctest.ELLIPSIS).failed == 0
    assert all(isinstance(n, str) and hasattr(fresh, n) for n in fresh.__all__)


@pytest.mark.parametrize("name", list(FRESH_TASKS))
def test_builds_trains_three_steps_deterministically(name):
    w = fresh_workload(name, steps=3)
    assert w.total_steps == 3 and type(w).from_json(w.to_json()) == w
    state = torch.get_rng_state()
    run, twin = w.build(0), w.build(0)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(run.model.parameters(), twin.model.parameters()))
    x0, y0 = next(run.batches)
    xt, yt = next(twin.batches)
    assert torch.equal(x0, xt) and torch.equal(y0, yt) and len(y0) == w.batch_size
    assert not torch.equal(next(w.build(1).batches)[0], x0)
    before = [p.detach().clone() for p in run.model.parameters()]
    opt = build_optimizer(w.optimizer, run.model.parameters(), w.lr, weight_decay=w.weight_decay)
    losses = []
    for batch in [(x0, y0), next(run.batches), next(run.batches)]:
        opt.zero_grad()
        loss = run.loss(run.model, batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(a, p) for a, p in zip(before, run.model.parameters()))
    ev = run.evaluate(run.model)
    assert 0.0 < ev.loss < 10.0 and 0.0 <= ev.accuracy <= 1.0 and run.guard(run.model) > 0
    assert 10_000 < num_parameters(run.model) < 300_000


def test_fresh_pairs_are_new():
    from gfm_accel.lab.zoo_tuned import ZOO_TASKS, benchmark_pairs

    pairs = {n: p for n, p in benchmark_pairs().items() if n in FRESH_TASKS}
    assert set(pairs) == set(FRESH_TASKS) and len(set(pairs.values())) == len(pairs) >= 3
    used = {p for n, p in benchmark_pairs().items() if n not in FRESH_TASKS}
    used |= {(t.data, t.arch) for t in ZOO_TASKS.values()}
    used |= {("digits", "mlp"), ("digits", "cnn"), ("stdlib_text", "chargpt")}  # the fixed-lr zoo (lab/zoo.py)
    assert not set(pairs.values()) & used
    assert not {a for _, a in pairs.values()} & {a for _, a in used}  # every architecture is new, too


def test_package_windows_are_balanced_disjoint_splits():
    w = DWConvPackages(per_class=16)
    val, guard = w.eval_sets()
    y = torch.cat([b[1] for b in val])
    assert torch.equal(torch.bincount(y), torch.full((len(STDLIB_PACKAGES),), 16))
    s = fresh._package_splits()
    for split, data in zip(s, package_bytes()):
        assert len(split.train) + len(split.val) + len(split.guard) == len(data)
        assert len(split.val) > 4 * w.window and len(split.guard) > 4 * w.window
    # training windows: labels drawn uniformly, each window from its class's training stream
    x, y = next(w.train_batches(seed=0))
    assert x.dtype == torch.long and tuple(x.shape) == (64, 128) and len(torch.unique(y)) > 4
    c = int(y[0])
    raw = bytes(x[0].tolist())
    assert raw in s[c].train.numpy().tobytes()
    assert len(w.bn_inputs()) == 4


def test_registered_with_the_tuned_protocol():
    from gfm_accel.lab.bench.accel import TASK_SETS
    from gfm_accel.lab.bench.accel_tuned import build_plan

    assert list(TASK_SETS["fresh"]) == list(FRESH_TASKS)
    plan = build_plan(list(FRESH_TASKS), steps=3)
    assert [w.name for w in plan.workloads] == list(FRESH_TASKS) and all(w.total_steps == 3 for w in plan.workloads)
    assert [type(w) for w in build_plan(list(FRESH_TASKS)).workloads] == list(FRESH_TASKS.values())
    assert plan.to_dict()["workloads"][0]["class"] == "MixerDigits"
    with pytest.raises(ValueError, match="unknown fresh task"):
        fresh_workload("fresh_nothing")


@pytest.mark.parametrize("name", list(FRESH_TASKS))
def test_runs_through_the_tuned_runners_curve(name):
    from gfm_accel.lab.bench.curves import run_curve
    from gfm_accel.lab.methods import build_method

    w = fresh_workload(name, steps=4)
    make = lambda p: build_optimizer(w.optimizer, p, w.lr, weight_decay=w.weight_decay)  # noqa: E731
    method = "schedulefree" if name == "fresh_dwconv_packages" else "plain"  # BatchNorm: Schedule-Free recomputes it
    curve = run_curve(w.build(0), build_method(method), make, total_steps=4, schedule=w.schedule, warmup=w.warmup,
                      eval_every=2)
    assert [r[0] for r in curve.records] == [0, 2, 4] and all(torch.isfinite(torch.tensor([r[2] for r in curve.records])))
