"""The tuned protocol's numbers, checked by hand."""

import json
import math
import random

import numpy as np
import pytest

from gfm_accel.lab.bench.stats import (
    BaselineChoice,
    GridPoint,
    Reach,
    Speedup,
    TaskResult,
    best_loss,
    choose_baseline,
    final_loss,
    geomean,
    is_worse,
    log2_grid,
    speedup,
    summary,
    target_loss,
    time_to_target,
    widen,
)

CURVE = [(0, 0.0, 2.3), (50, 1.5, 1.2), (100, 3.25, 0.8), (150, 5.0, 0.85), (200, 6.5, 0.7)]


def test_best_final_target_and_time_to_target():
    assert best_loss(CURVE) == 0.7 and final_loss(CURVE) == 0.7
    assert best_loss([(0, 0.0, float("nan")), (1, 1.0, 3.0)]) == 3.0
    assert final_loss([(0, 0.0, 1.0), (1, 1.0, float("nan"))]) == math.inf
    assert target_loss([0.9, 0.7, 0.8, 1.5, 0.75]) == 0.8
    assert target_loss([1.0, 2.0]) == 1.5
    assert time_to_target(CURVE, 0.8) == Reach(100, 3.25, True)
    assert time_to_target(CURVE, 0.75) == Reach(200, 6.5, True)
    assert time_to_target(CURVE, 0.5) == Reach(200, 6.5, False)  # censored at the budget
    assert time_to_target(CURVE, 5.0) == Reach(0, 0.0, True)
    with pytest.raises(ValueError, match="empty curve"):
        best_loss([])
    with pytest.raises(ValueError, match="steps must increase"):
        time_to_target([(0, 0.0, 1.0), (0, 1.0, 0.5)], 0.6)
    with pytest.raises(ValueError, match=r"\(step, seconds, val_loss\)"):
        best_loss([(0, 1.0)])


def test_speedup_ratio_of_medians_and_bootstrap():
    base, meth = [100, 200, 150, 120, 180], [50, 100, 100, 60, 90]
    s = speedup(base, meth, n_boot=4000, seed=0)
    assert s.speedup == pytest.approx(150 / 90)
    # the interval by hand: the same resampled indices through numpy's median
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 5, size=(4000, 5))
    b, m = np.array(base, float)[idx], np.array(meth, float)[idx]
    boot = np.median(b, axis=1) / np.median(m, axis=1)
    assert (s.lo, s.hi) == pytest.approx(tuple(np.percentile(boot, [5, 95])))
    assert s.lo <= s.speedup <= s.hi and s.lo < s.hi
    assert speedup(base, meth, n_boot=4000, seed=0) == s  # deterministic
    assert speedup([10.0, 10.0], [5.0, 5.0]) == Speedup(2.0, 2.0, 2.0)
    assert speedup([10, 20, 30], [15], paired=False).speedup == pytest.approx(20 / 15)
    with pytest.raises(ValueError, match="paired speedup needs one method run per baseline seed"):
        speedup([1, 2], [1])
    with pytest.raises(ValueError, match="level"):
        speedup([1], [1], level=1.0)


def test_speedup_never_touches_the_global_rng():
    np.random.seed(3)
    random.seed(3)
    before, pyb = np.random.get_state()[1].copy(), random.getstate()
    speedup([1, 2, 3], [2, 2, 2])
    assert np.array_equal(np.random.get_state()[1], before) and random.getstate() == pyb


def test_geomean_and_worse():
    assert geomean([2.0, 0.5, 4.0]) == pytest.approx(4 ** (1 / 3))  # product 4
    assert geomean([1.5]) == pytest.approx(1.5)
    assert geomean([2.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        geomean([1.0, -1.0])
    assert is_worse([0.5, 0.6, 0.7], [0.61, 0.62, 0.5])  # 0.61 > 0.6
    assert not is_worse([0.5, 0.6, 0.7], [0.6, 0.6, 0.9])  # equal medians: not worse
    assert is_worse([0.5], [float("nan")])


def test_choose_baseline_interior_and_edges():
    def pts(schedule, pairs):
        return [GridPoint(schedule, lr, tuple(losses)) for lr, losses in pairs]

    grid = pts("constant", [(1e-3, (1.0, 1.1, 0.9)), (2e-3, (0.8, 0.7, 0.9)), (4e-3, (0.9, 0.95, 2.0))])
    grid += pts("warmup_cosine", [(1e-3, (0.9, 0.9, 0.9)), (2e-3, (0.7, 0.6, 0.65)), (4e-3, (0.66, 0.64, 0.7))])
    c = choose_baseline(grid)
    assert (c.schedule, c.lr, c.median, c.interior, c.widen) == ("warmup_cosine", 2e-3, 0.65, True, None)
    assert len(c.grid) == 6 and c.grid[0] == {"schedule": "constant", "lr": 1e-3, "median": 1.0, "best_losses": [1.0, 1.1, 0.9]}
    edge = choose_baseline(pts("constant", [(1e-3, (0.5,)), (2e-3, (0.6,)), (4e-3, (0.7,))]))
    assert (edge.lr, edge.interior, edge.widen) == (1e-3, False, "lower")
    edge = choose_baseline(pts("constant", [(1e-3, (0.9,)), (2e-3, (0.6,)), (4e-3, (0.4,))]))
    assert (edge.lr, edge.interior, edge.widen) == (4e-3, False, "higher")
    assert isinstance(edge, BaselineChoice)
    with pytest.raises(ValueError, match="repeated"):
        choose_baseline(pts("constant", [(1e-3, (0.5,)), (1e-3, (0.6,))]))
    assert widen([4e-3, 1e-3, 2e-3], "higher") == [1e-3, 2e-3, 4e-3, 8e-3]
    with pytest.raises(ValueError, match="edge"):
        widen([1.0], "both")


def test_log2_grid():
    g = log2_grid(3e-3, 7)
    assert len(g) == 7 and g[3] == pytest.approx(3e-3)
    assert [b / a for a, b in zip(g, g[1:])] == pytest.approx([2.0] * 6)
    assert g[0] == pytest.approx(3e-3 / 8) and g[-1] == pytest.approx(3e-3 * 8)


def test_summary_shape_and_numbers():
    r = {
        "ema": {"a": TaskResult(2.0, 1.5, 2.5, False), "b": TaskResult(0.5, 0.4, 0.9, True)},
        "gfm": {"a": TaskResult.from_speedup(Speedup(1.0, 0.9, 1.1), worse=False), "b": TaskResult(4.0, 3.0, 5.0, False)},
    }
    s = summary(["a", "b"], r)
    assert s == {
        "protocol": "tuned",
        "tasks": ["a", "b"],
        "methods": {
            "ema": {"geomean_speedup": pytest.approx(1.0), "tasks_worse": 1, "per_task": {
                "a": {"speedup": 2.0, "lo": 1.5, "hi": 2.5, "worse": False},
                "b": {"speedup": 0.5, "lo": 0.4, "hi": 0.9, "worse": True}}},
            "gfm": {"geomean_speedup": pytest.approx(2.0), "tasks_worse": 0, "per_task": {
                "a": {"speedup": 1.0, "lo": 0.9, "hi": 1.1, "worse": False},
                "b": {"speedup": 4.0, "lo": 3.0, "hi": 5.0, "worse": False}}},
        },
    }
    assert json.loads(json.dumps(s))["methods"]["ema"]["tasks_worse"] == 1
    with pytest.raises(ValueError, match="unknown summary method 'sam'"):
        summary(["a"], {"sam": {"a": TaskResult(1, 1, 1, False)}})
    with pytest.raises(ValueError, match="differ"):
        summary(["a", "b"], {"ema": {"a": TaskResult(1, 1, 1, False)}})
