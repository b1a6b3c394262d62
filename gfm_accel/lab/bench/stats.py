"""The tuned protocol's numbers (issue 14), as pure functions.

A run's *curve* is a sequence of ``(step, seconds, val_loss)`` records, measured on the
validation split at increasing optimizer steps; ``seconds`` is the cumulative wall time of
training with all of the method's overhead included (the benchmark's own validation passes
excluded).

- The **target** of a task is the median, over seeds, of the tuned baseline's best
  validation loss (:func:`target_loss`).
- A run reaches it at the first record with ``val_loss <= target`` (:func:`time_to_target`).
  A run that never does counts as reaching it at its last record (the budget) and is marked
  ``reached=False``: its speedup is then an upper bound, at most ``baseline / budget``.
- The **speedup** of a method on a task is the ratio of medians over seeds,
  ``median(baseline steps) / median(method steps)`` (the same for seconds), with a paired
  bootstrap 90% interval over seeds (:func:`speedup`). The median of the steps, not of
  per-seed ratios: about half of the baseline's own seeds do not reach a median target, and
  the median over seeds of their censored steps is still the honest middle.
- Over tasks: the geometric mean (:func:`geomean`). A task is made **worse** when the
  method's median validation loss at the end of the equal budget is above the baseline's
  (:func:`is_worse`).
- The tuned baseline is the ``(schedule, lr)`` grid point with the lowest median best
  validation loss, and its lr must be interior to the grid (:func:`choose_baseline`,
  :func:`widen`).

All randomness (the bootstrap) comes from a ``numpy.random.Generator`` with a fixed seed.

Example:
    >>> base = [[(0, 0.0, 2.0), (10, 1.0, 1.0), (20, 2.0, 0.5)], [(0, 0.0, 2.0), (10, 1.0, 0.9), (20, 2.0, 0.6)]]
    >>> target = target_loss([best_loss(c) for c in base])
    >>> target
    0.55
    >>> [time_to_target(c, target).steps for c in base]
    [20, 20]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "SUMMARY_METHODS",
    "Reach",
    "Speedup",
    "TaskResult",
    "GridPoint",
    "BaselineChoice",
    "best_loss",
    "final_loss",
    "target_loss",
    "time_to_target",
    "speedup",
    "geomean",
    "is_worse",
    "log2_grid",
    "choose_baseline",
    "widen",
    "summary",
]

#: The method names the summary may hold (issue 14).
SUMMARY_METHODS: tuple[str, ...] = ("gfm", "linefit", "wnn", "ema", "lookahead", "schedulefree", "outer_nesterov")

Curve = Sequence[Sequence[float]]  # records (step, seconds, val_loss)


def _check_curve(curve: Curve) -> None:
    if len(curve) == 0:
        raise ValueError("empty curve: a run needs at least one (step, seconds, val_loss) record")
    for r in curve:
        if len(r) != 3:
            raise ValueError(f"a curve record is (step, seconds, val_loss), got {tuple(r)!r}")
    steps = [r[0] for r in curve]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"curve steps must increase, got {steps}")


def _loss(x: float) -> float:
    """NaN (a diverged run) compares as +inf, so it is never best and never reaches a target."""
    return math.inf if math.isnan(x) else float(x)


def best_loss(curve: Curve) -> float:
    """The lowest validation loss of a curve (NaN counts as +inf)."""
    _check_curve(curve)
    return min(_loss(r[2]) for r in curve)


def final_loss(curve: Curve) -> float:
    """The validation loss of a curve's last record (the loss at the budget; NaN counts as +inf)."""
    _check_curve(curve)
    return _loss(curve[-1][2])


def target_loss(best_losses: Sequence[float]) -> float:
    """The target: the median over seeds of the tuned baseline's best validation losses.

    Args:
        best_losses: one best validation loss per seed.

    Returns:
        Their median (the mean of the middle two for an even count).
    """
    if len(best_losses) == 0:
        raise ValueError("target_loss needs at least one baseline run")
    return float(np.median(np.array([_loss(x) for x in best_losses], dtype=float)))


@dataclass(frozen=True)
class Reach:
    """When a run reached the target.

    Attributes:
        steps: optimizer steps at the first record with ``val_loss <= target`` (else the last record's).
        seconds: the cumulative seconds at that record.
        reached: False when the run never reached the target (steps/seconds are then its budget).
    """

    steps: float
    seconds: float
    reached: bool


def time_to_target(curve: Curve, target: float) -> Reach:
    """Steps and seconds a run takes to reach ``target`` (censored at its last record).

    Args:
        curve: ``(step, seconds, val_loss)`` records, steps increasing.
        target: the task's target validation loss.

    Returns:
        A :class:`Reach`.
    """
    _check_curve(curve)
    for step, seconds, loss in curve:
        if _loss(loss) <= target:
            return Reach(step, float(seconds), True)
    step, seconds, _ = curve[-1]
    return Reach(step, float(seconds), False)


def _ratio_of_medians(base: np.ndarray, method: np.ndarray, axis: int | None = None) -> np.ndarray:
    b, m = np.median(base, axis=axis), np.median(method, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m > 0, b / np.where(m > 0, m, 1.0), np.inf)


@dataclass(frozen=True)
class Speedup:
    """A speedup with its bootstrap interval.

    Attributes:
        speedup: ``median(baseline) / median(method)``.
        lo, hi: the bootstrap interval's ends (5th and 95th percentiles for ``level=0.9``).
    """

    speedup: float
    lo: float
    hi: float


def speedup(
    baseline: Sequence[float],
    method: Sequence[float],
    *,
    paired: bool = True,
    n_boot: int = 2000,
    level: float = 0.9,
    seed: int = 0,
) -> Speedup:
    """The median-over-seeds speedup of a method with a bootstrap interval.

    Args:
        baseline: the tuned baseline's steps (or seconds) to the target, one per seed.
        method: the method's, one per seed.
        paired: resample the same seed indices for both (the runs share seeds); needs
            equal lengths. ``False`` resamples each side on its own.
        n_boot: bootstrap resamples.
        level: the interval's coverage (0.9: the 5th to the 95th percentile).
        seed: the ``numpy.random.default_rng`` seed (the global RNG is never used).

    Returns:
        A :class:`Speedup`.

    Example:
        >>> s = speedup([100, 120, 80], [50, 60, 40])
        >>> s.speedup, s.lo, s.hi
        (2.0, 2.0, 2.0)
    """
    b, m = np.asarray(baseline, dtype=float), np.asarray(method, dtype=float)
    if b.size == 0 or m.size == 0:
        raise ValueError("speedup needs at least one run on each side")
    if paired and b.size != m.size:
        raise ValueError(f"paired speedup needs one method run per baseline seed ({b.size} vs {m.size})")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    point = float(_ratio_of_medians(b, m))
    rng = np.random.default_rng(seed)
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    im = ib if paired else rng.integers(0, m.size, size=(n_boot, m.size))
    boot = _ratio_of_medians(b[ib], m[im], axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return Speedup(point, float(lo), float(hi))


def geomean(values: Sequence[float]) -> float:
    """The geometric mean of positive speedups (0 when any is 0, inf when any is inf and none 0).

    Example:
        >>> geomean([2.0, 0.5, 1.0])
        1.0
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("geomean of no values")
    if np.any(v < 0) or np.any(np.isnan(v)):
        raise ValueError(f"geomean needs speedups >= 0, got {v.tolist()}")
    if np.any(v == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(v))))


def is_worse(baseline_losses: Sequence[float], method_losses: Sequence[float]) -> bool:
    """Whether a method made the task worse at equal budget.

    Args:
        baseline_losses: the tuned baseline's validation loss at the end of the budget, per seed.
        method_losses: the method's, per seed (the same budget).

    Returns:
        ``median(method) > median(baseline)`` (NaN counts as +inf).
    """
    if len(baseline_losses) == 0 or len(method_losses) == 0:
        raise ValueError("is_worse needs at least one run on each side")
    med = lambda xs: float(np.median([_loss(x) for x in xs]))  # noqa: E731
    return med(method_losses) > med(baseline_losses)


def log2_grid(center: float, points: int) -> list[float]:
    """``points`` learning rates a factor 2 apart, centred on ``center`` (geometrically).

    Example:
        >>> log2_grid(1e-3, 3)
        [0.0005, 0.001, 0.002]
        >>> [round(x / 1e-2, 4) for x in log2_grid(1e-2, 4)]
        [0.3536, 0.7071, 1.4142, 2.8284]
    """
    if not (center > 0 and math.isfinite(center)):
        raise ValueError(f"the grid's centre lr must be positive, got {center!r}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    return [center * 2.0 ** (i - (points - 1) / 2.0) for i in range(points)]


@dataclass(frozen=True)
class GridPoint:
    """One point of the baseline's tuning grid.

    Attributes:
        schedule: the schedule name.
        lr: the base learning rate.
        best_losses: best validation loss of each seed.
    """

    schedule: str
    lr: float
    best_losses: tuple[float, ...]

    @property
    def median(self) -> float:
        return target_loss(self.best_losses)


@dataclass(frozen=True)
class BaselineChoice:
    """The tuned baseline chosen from a grid.

    Attributes:
        schedule, lr: the chosen point.
        median: its median best validation loss.
        interior: whether ``lr`` lies strictly inside that schedule's lr grid.
        widen: ``None`` when interior; else ``"lower"`` (best at the smallest lr: add smaller
            ones) or ``"higher"`` (best at the largest).
        grid: every point, as ``{"schedule", "lr", "median", "best_losses"}`` dicts (for results.json).
    """

    schedule: str
    lr: float
    median: float
    interior: bool
    widen: str | None
    grid: list[dict[str, Any]] = field(default_factory=list)


def choose_baseline(points: Sequence[GridPoint]) -> BaselineChoice:
    """The grid point with the lowest median best validation loss, and whether it is interior.

    Ties go to the earlier point in ``points``. A single-lr schedule is never interior.

    Args:
        points: the grid (every schedule x lr, each with its seeds' best losses).

    Returns:
        A :class:`BaselineChoice`.

    Raises:
        ValueError: an empty grid or a repeated ``(schedule, lr)``.

    Example:
        >>> pts = [GridPoint("constant", lr, (loss,)) for lr, loss in [(1e-3, 0.9), (2e-3, 0.5), (4e-3, 0.7)]]
        >>> c = choose_baseline(pts)
        >>> c.lr, c.interior, c.widen
        (0.002, True, None)
    """
    if not points:
        raise ValueError("choose_baseline needs a non-empty grid")
    keys = [(p.schedule, p.lr) for p in points]
    if len(set(keys)) != len(keys):
        raise ValueError(f"repeated (schedule, lr) grid points in {keys}")
    best = min(points, key=lambda p: p.median)
    lrs = sorted(p.lr for p in points if p.schedule == best.schedule)
    widen_to = "lower" if best.lr == lrs[0] else "higher" if best.lr == lrs[-1] else None
    grid = [{"schedule": p.schedule, "lr": p.lr, "median": p.median, "best_losses": list(p.best_losses)} for p in points]
    return BaselineChoice(best.schedule, best.lr, best.median, widen_to is None, widen_to, grid)


def widen(lrs: Sequence[float], edge: str, factor: float = 2.0) -> list[float]:
    """The lr grid with one more point beyond ``edge`` (``"lower"`` or ``"higher"``).

    Example:
        >>> widen([1.0, 2.0, 4.0], "lower"), widen([1.0, 2.0, 4.0], "higher")
        ([0.5, 1.0, 2.0, 4.0], [1.0, 2.0, 4.0, 8.0])
    """
    if not lrs:
        raise ValueError("widen needs a non-empty grid")
    s = sorted(lrs)
    if edge == "lower":
        return [s[0] / factor] + s
    if edge == "higher":
        return s + [s[-1] * factor]
    raise ValueError(f"edge must be 'lower' or 'higher', got {edge!r}")


@dataclass(frozen=True)
class TaskResult:
    """One method on one task, as the summary holds it.

    Attributes:
        speedup, lo, hi: the median speedup and its bootstrap interval (:func:`speedup`).
        worse: :func:`is_worse` at equal budget.
    """

    speedup: float
    lo: float
    hi: float
    worse: bool

    @classmethod
    def from_speedup(cls, s: Speedup, worse: bool) -> "TaskResult":
        return cls(s.speedup, s.lo, s.hi, bool(worse))


def summary(tasks: Sequence[str], methods: Mapping[str, Mapping[str, TaskResult]],
            extra: Sequence[str] = ()) -> dict[str, Any]:
    """``summary.json`` in the issue's shape.

    Args:
        tasks: task names, in table order.
        methods: ``{method name: {task name: TaskResult}}``; every method must cover every task.
        extra: method names allowed beside :data:`SUMMARY_METHODS` (a run's jump variants).

    Returns:
        ``{"protocol": "tuned", "tasks": [...], "methods": {NAME: {"geomean_speedup": float,
        "tasks_worse": int, "per_task": {TASK: {"speedup", "lo", "hi", "worse"}}}}}``.

    Raises:
        ValueError: an unknown method name, or a method missing a task or with an extra one.
    """
    tasks = list(tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be non-empty and distinct, got {tasks}")
    out: dict[str, Any] = {"protocol": "tuned", "tasks": tasks, "methods": {}}
    for name, per_task in methods.items():
        if name not in SUMMARY_METHODS and name not in extra:
            raise ValueError(f"unknown summary method {name!r}; choose from {', '.join(SUMMARY_METHODS)}")
        if set(per_task) != set(tasks):
            raise ValueError(
                f"method {name!r}: tasks {sorted(per_task)} differ from the summary's {sorted(tasks)}"
            )
        rows = {t: per_task[t] for t in tasks}
        out["methods"][name] = {
            "geomean_speedup": geomean([r.speedup for r in rows.values()]),
            "tasks_worse": sum(bool(r.worse) for r in rows.values()),
            "per_task": {
                t: {"speedup": float(r.speedup), "lo": float(r.lo), "hi": float(r.hi), "worse": bool(r.worse)}
                for t, r in rows.items()
            },
        }
    return out
