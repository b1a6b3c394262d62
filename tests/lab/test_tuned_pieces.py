"""The tuned benchmark's pieces compose: a workload, every method, a curve, the protocol's numbers.

This is the short loop the runner (``gfm-accel bench accel --protocol tuned``) wraps; it also
runs the doctests of the modules, so their examples stay true.
"""

import doctest
import importlib
import pytest
import torch

from gfm_accel.lab.bench import stats
from gfm_accel.lab.bench.curves import run_curve
from gfm_accel.lab.methods import METHODS, Jump, build_method
from gfm_accel.lab.tasks.resnet import ResNetTask
from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import JumpConfig

MODULES = [
    "gfm_accel.lab.schedules",
    "gfm_accel.lab.methods",
    "gfm_accel.lab.methods.base",
    "gfm_accel.lab.methods.ema",
    "gfm_accel.lab.methods.lookahead",
    "gfm_accel.lab.methods.schedulefree",
    "gfm_accel.lab.methods.outer_nesterov",
    "gfm_accel.lab.methods.jump",
    "gfm_accel.lab.tasks.workload",
    "gfm_accel.lab.tasks.char_gpt",
    "gfm_accel.lab.tasks.resnet",
    "gfm_accel.lab.bench.stats",
    "gfm_accel.lab.bench.curves",
    "gfm_accel.lab.tasks.heldout",
    "gfm_accel.lab.bench.accel_tuned",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", MODULES + ["gfm_accel.lab", "gfm_accel.lab.tasks", "gfm_accel.lab.bench"])
def test_all_names_import(name):
    module = importlib.import_module(name)
    assert all(isinstance(n, str) and hasattr(module, n) for n in module.__all__)


def _curve(task, method, seed, every=4):
    make = lambda p: torch.optim.SGD(p, lr=task.lr, momentum=0.9, weight_decay=task.weight_decay)  # noqa: E731
    curve = run_curve(task.build(seed), method, make, total_steps=task.total_steps, schedule=task.schedule,
                      warmup=task.warmup, eval_every=every)
    assert len(curve.accuracy) == len(curve.records) == len(curve.train_loss)
    assert curve.final.loss == curve.records[-1][2]
    assert all(b[1] >= a[1] for a, b in zip(curve.records, curve.records[1:]))  # seconds accumulate
    return curve.records


def test_every_method_on_a_tiny_resnet_gives_a_summary():
    task = ResNetTask(width=8, blocks=(1, 1, 1), total_steps=12, batch_size=32)
    seeds = (0, 1)
    base = [_curve(task, build_method("plain"), s) for s in seeds]
    target = stats.target_loss([stats.best_loss(c) for c in base])
    base_steps = [stats.time_to_target(c, target).steps for c in base]
    assert sum(stats.time_to_target(c, target).reached for c in base) >= 1
    results = {}
    makers = {name: (lambda name=name: build_method(name)) for name in METHODS if name != "plain"}
    makers["linefit"] = lambda: Jump(LinearExtrapolationForecaster(), JumpConfig(unit="step", every_n_steps=2, n=2))
    for name, make in makers.items():
        curves = [_curve(task, make(), s) for s in seeds]
        s = stats.speedup(base_steps, [stats.time_to_target(c, target).steps for c in curves], n_boot=200)
        worse = stats.is_worse([stats.final_loss(c) for c in base], [stats.final_loss(c) for c in curves])
        results[name] = {task.name: stats.TaskResult.from_speedup(s, worse)}
        assert all(len(c) == 4 and c[-1][0] == 12 for c in curves)
    out = stats.summary([task.name], results)
    assert sorted(out["methods"]) == ["ema", "linefit", "lookahead", "outer_nesterov", "schedulefree"]
    for row in out["methods"].values():
        r = row["per_task"][task.name]
        assert r["lo"] <= r["speedup"] <= r["hi"] and row["geomean_speedup"] == pytest.approx(r["speedup"])
