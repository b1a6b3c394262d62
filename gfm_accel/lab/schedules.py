"""Learning-rate schedules by name, as :class:`torch.optim.lr_scheduler.LambdaLR` builders.

The tuned protocol (issue 14) runs every learning-rate grid point with two schedules:

- ``"constant"``: the optimizer's lr at every step;
- ``"warmup_cosine"``: linear warmup over ``W = round(warmup * total_steps)`` steps, then a
  cosine decay that reaches 0 at ``total_steps``.

Index convention: ``factor(s)`` multiplies the base lr of the optimizer step with 0-based
index ``s`` (the lr in force after ``s`` calls of ``scheduler.step()``). With warmup,
``factor(s) = (s + 1) / W`` for ``s < W`` (the first step is not wasted at lr 0, the last
warmup step is at the full lr); after it ``factor(s) = (1 + cos(pi * (s - W) / (T - W))) / 2``,
so the last step ``T - 1`` still moves and the lr would be exactly 0 at ``s = T``.

Example:
    >>> import torch
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    >>> sched = build_scheduler(opt, "warmup_cosine", total_steps=10, warmup=0.2)
    >>> lrs = []
    >>> for _ in range(10):
    ...     lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    >>> [round(x, 3) for x in lrs[:4]], round(lrs[-1], 3)
    ([0.5, 1.0, 1.0, 0.962], 0.038)
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["SCHEDULES", "lr_factor", "warmup_steps", "build_scheduler"]

#: The schedule names :func:`build_scheduler` accepts.
SCHEDULES: tuple[str, ...] = ("constant", "warmup_cosine")


def _check(name: str, total_steps: int, warmup: float) -> None:
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    if not (isinstance(warmup, (int, float)) and 0.0 <= warmup < 1.0):
        raise ValueError(f"warmup must be a fraction of total_steps in [0, 1), got {warmup!r}")


def warmup_steps(total_steps: int, warmup: float) -> int:
    """The number of warmup steps ``W = round(warmup * total_steps)``.

    Args:
        total_steps: the run's optimizer steps ``T``.
        warmup: warmup as a fraction of ``T``, in ``[0, 1)``.

    Returns:
        ``W``, an integer in ``[0, T)``.
    """
    _check("constant", total_steps, warmup)
    return min(int(round(warmup * total_steps)), total_steps - 1)


def lr_factor(name: str, step: int, total_steps: int, warmup: float = 0.0) -> float:
    """The multiplier of the base lr at 0-based optimizer step ``step``.

    Args:
        name: one of :data:`SCHEDULES`.
        step: 0-based step index ``s`` (steps past ``total_steps`` get the value at ``T``).
        total_steps: the run's optimizer steps ``T``.
        warmup: ``"warmup_cosine"``'s warmup fraction (ignored by ``"constant"``).

    Returns:
        The factor in ``[0, 1]``.
    """
    _check(name, total_steps, warmup)
    if name == "constant":
        return 1.0
    w = warmup_steps(total_steps, warmup)
    s = min(int(step), total_steps)
    if s < w:
        return (s + 1) / w
    return 0.5 * (1.0 + math.cos(math.pi * (s - w) / (total_steps - w)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup: float = 0.0
) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor` to every param group of ``optimizer``.

    Call ``scheduler.step()`` once after each ``optimizer.step()``.

    Args:
        optimizer: the optimizer whose param groups' ``lr`` is the base lr.
        name: one of :data:`SCHEDULES`.
        total_steps: the run's optimizer steps ``T``.
        warmup: warmup fraction of ``T`` for ``"warmup_cosine"``.

    Returns:
        The scheduler (its ``state_dict`` round-trips; the factor is a pure function of the step).
    """
    _check(name, total_steps, warmup)
    return LambdaLR(optimizer, _Factor(name, total_steps, float(warmup)))


class _Factor:
    """A picklable ``step -> factor`` callable (LambdaLR stores only callable objects' ``__dict__``)."""

    def __init__(self, name: str, total_steps: int, warmup: float) -> None:
        self.name, self.total_steps, self.warmup = name, total_steps, warmup

    def __call__(self, step: int) -> float:
        return lr_factor(self.name, step, self.total_steps, self.warmup)
