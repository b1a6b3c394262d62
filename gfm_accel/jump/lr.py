"""Learning-rate schedules and the horizon: how far a jump goes when the learning rate decays.

A forecaster trained on trajectories predicts ``w_m``, ``K = m - n`` snapshots ahead, as if
training went on the way the window ``w_0 .. w_n`` went. Under a decaying learning rate the
next ``K`` snapshots cover less ground than the last ones did. Two options correct for it
(one at a time):

* ``lr_horizon=True`` counts the horizon in summed learning rate instead of in steps: the
  jump covers the fraction

      r = (sum of the learning rates of the next S optimizer steps) / (S * the learning rate now),

  ``S`` = the scheduler steps the ``K`` snapshots span, of what the forecast covers: the
  candidates become ``w_n + alpha * a * r * (w_hat_m - w_n)``. For a forecaster linear in
  the horizon (linear extrapolation) this is the forecast ``K * r`` snapshots ahead; any
  forecaster keeps seeing the integer target ``m`` it was trained for. ``r`` is clipped to
  ``(0, 1]``: a warm-up does not make a jump longer than ``K``. The reference is the
  learning rate at the jump, so under a decaying schedule the correction is slightly too
  small (the window's steps were taken at somewhat larger rates).
* ``lr_profile=True`` hands a schedule-aware forecaster the summed learning rate of every
  snapshot interval of the window and the horizon (``lr_profile``, ``(m+1,)``, the layout of
  a trajectory file's ``"lr_sum"``): the past from :class:`LRWindow`, the future from
  :func:`future_lr_profile`.

Both read the future from :func:`future_lrs`: a copy of the scheduler stepped forward; the
live scheduler and optimizer are not touched.

Convention (the Hugging Face Trainer's and Lightning's): the scheduler is stepped after
each optimizer step and *before* ``GFMJump.on_step_end``, so the rate read at an event is
the rate of the next optimizer step.

Example:
    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / 10)
    >>> round(future_lr_ratio(sched, 4), 6)  # (1.0 + 0.9 + 0.8 + 0.7) / 4
    0.85
    >>> [round(v, 6) for v in future_lr_profile(sched, 2, 2, scale=2).tolist()]  # (1.0 + 0.9), (0.8 + 0.7)
    [1.9, 1.5]
    >>> opt.param_groups[0]["lr"], sched.last_epoch
    (1.0, 0)
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections import deque
from typing import Any

import torch

__all__ = ["can_simulate", "future_lrs", "future_lr_ratio", "future_lr_profile", "LRWindow"]

logger = logging.getLogger("gfm_accel.jump.core")


def can_simulate(scheduler: Any) -> bool:
    """Whether the future of ``scheduler`` can be read from a copy of it.

    A ``ReduceLROnPlateau`` cannot (it depends on future losses), nor an object without
    ``step()`` and the ``optimizer`` it drives.
    """
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return False
    return getattr(scheduler, "optimizer", None) is not None and hasattr(scheduler, "step")


def future_lrs(scheduler: Any, steps: int) -> list[float] | None:
    """Learning rates (group 0) of the next ``steps`` optimizer steps, from a copy of the scheduler.

    Args:
        scheduler: a torch ``LRScheduler`` (HF's and Lightning's are these) bound to the
            run's optimizer.
        steps: optimizer steps ahead (``>= 1``).

    Returns:
        ``steps`` rates: the current one, then the rate after each further scheduler step
        of the copy; None when the schedule cannot be simulated (:func:`can_simulate`).
    """
    if not can_simulate(scheduler):
        return None
    optimizer = scheduler.optimizer
    now = float(optimizer.param_groups[0]["lr"])
    # In the copy the run's optimizer is replaced (everywhere in the scheduler's object
    # graph, child schedulers of a SequentialLR included) by a stand-in holding one number
    # per group: no parameter or optimizer state is copied, and stepping the copy changes
    # nothing of the run.
    stand_in = torch.optim.SGD(
        [{**{k: v for k, v in g.items() if k != "params"}, "params": [torch.zeros(1, requires_grad=True)]}
         for g in optimizer.param_groups],
        lr=now,
    )
    clone = copy.deepcopy(scheduler, {id(optimizer): stand_in})
    rates = [now]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for _ in range(int(steps) - 1):
            clone.step()
            rates.append(float(stand_in.param_groups[0]["lr"]))
    return rates


def future_lr_ratio(scheduler: Any, steps: int) -> float | None:
    """Mean learning rate (group 0) of the next ``steps`` optimizer steps over the current one.

    Args:
        scheduler: a torch ``LRScheduler`` bound to the run's optimizer.
        steps: optimizer steps ahead (``>= 1``); the first uses the current rate.

    Returns:
        The ratio (not clipped), or None when the schedule cannot be simulated (a
        ``ReduceLROnPlateau``, which depends on future losses; a current rate of 0).
    """
    if not can_simulate(scheduler) or float(scheduler.optimizer.param_groups[0]["lr"]) <= 0.0:
        return None
    rates = future_lrs(scheduler, steps)
    return sum(rates) / (int(steps) * rates[0])


def future_lr_profile(scheduler: Any, snapshots: int, steps_per_snapshot: float, *, scale: float) -> torch.Tensor | None:
    """Summed learning rate of each of the next ``snapshots`` snapshot intervals.

    Interval ``j`` spans the scheduler steps ``[j s, (j+1) s)``, ``s = steps_per_snapshot``
    (a fraction when the scheduler is stepped less often than snapshots are taken: the rate
    is then held between its steps). Its entry is ``scale`` times the mean rate over that
    span; with ``scale = s`` (a scheduler stepped once per optimizer step) it is the plain
    sum of the ``s`` rates, as in a trajectory file's ``"lr_sum"``.

    Args:
        scheduler: a torch ``LRScheduler`` bound to the run's optimizer.
        snapshots: ``m - n``, the intervals of the horizon (``>= 1``).
        steps_per_snapshot: ``s > 0``, scheduler steps per snapshot interval.
        scale: optimizer steps per snapshot interval (the past's unit, :class:`LRWindow`).

    Returns:
        ``(snapshots,)`` float64, or None when the schedule cannot be simulated.
    """
    s = float(steps_per_snapshot)
    total = max(1, math.ceil(snapshots * s - 1e-9))
    rates = future_lrs(scheduler, total)
    if rates is None:
        return None
    r = torch.tensor(rates, dtype=torch.float64)
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(r, 0)])

    def integral(x: float) -> torch.Tensor:  # of the step function u -> r[floor(u)] over [0, x]
        i = min(int(math.floor(x + 1e-9)), total)
        frac = x - i
        return cum[i] + (r[i] * frac if i < total and frac > 0 else 0.0)

    out = torch.stack([integral((j + 1) * s) - integral(j * s) for j in range(int(snapshots))])
    return out * (float(scale) / s)


class LRWindow:
    """Summed learning rate per snapshot interval of the live window (``lr_profile=True``).

    ``GFMJump`` calls :meth:`step` after each optimizer step and :meth:`snapshot` at each
    snapshot with the group-0 rate read then (the next step's, see the module docstring);
    :meth:`restart` where the window restarts (attach, after an accepted periodic jump, a
    model or optimizer changed). Entry ``t`` of :meth:`past` is ``scale`` times the mean rate
    of the optimizer steps between held snapshots ``t - 1`` and ``t`` (``scale`` = optimizer
    steps per snapshot: with ``every_n_steps = k`` the plain sum of the ``k`` rates, the
    layout of ``"lr_sum"``). An interval without step events (``unit="epoch"`` in a loop
    that calls only ``on_epoch_end``) takes the rate read at its start.

    Args:
        keep: snapshots held (``n + 1``).
        scale: optimizer steps per snapshot interval.

    Example:
        >>> w = LRWindow(keep=3, scale=2)
        >>> w.restart(1.0)
        >>> for lr_after in (0.5, 0.25):
        ...     w.step(lr_after)
        >>> w.snapshot(0.25)
        >>> w.past(1).tolist()  # entry 0 unused; (1.0 + 0.5)
        [0.0, 1.5]
    """

    def __init__(self, keep: int, scale: float) -> None:
        self.keep = int(keep)
        self.scale = float(scale)
        self.sums: deque[float] = deque(maxlen=self.keep)
        self.total = 0.0
        self.count = 0
        self.rate = 0.0

    def restart(self, rate: float) -> None:
        """A new window starts at a snapshot; ``rate`` is the current rate."""
        self.sums.clear()
        self.sums.append(0.0)
        self.total, self.count, self.rate = 0.0, 0, float(rate)

    def step(self, rate: float) -> None:
        """An optimizer step ended: it used the rate read at the last event; ``rate`` is the next one's."""
        self.total += self.rate
        self.count += 1
        self.rate = float(rate)

    def snapshot(self, rate: float) -> None:
        """A snapshot closes the open interval."""
        mean = self.total / self.count if self.count else self.rate
        self.sums.append(self.scale * mean)
        self.total, self.count, self.rate = 0.0, 0, float(rate)

    def past(self, n: int) -> torch.Tensor:
        """``(n+1,)`` float64: entry 0 unused (0), entries ``1..n`` the last ``n`` intervals."""
        if n + 1 > len(self.sums):
            raise ValueError(f"asked for the last {n} intervals but the window holds {len(self.sums) - 1}")
        last = list(self.sums)[len(self.sums) - n :] if n > 0 else []
        return torch.tensor([0.0, *last], dtype=torch.float64)

    def assume_constant(self, held: int, rate: float) -> None:
        """Fill ``held`` snapshots' intervals with a constant ``rate`` (a resumed state without sums)."""
        self.restart(rate)
        for _ in range(held - 1):
            self.sums.append(self.scale * self.rate)

    def state_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready)."""
        return {"sums": list(self.sums), "total": self.total, "count": self.count, "rate": self.rate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.sums = deque((float(v) for v in state["sums"]), maxlen=self.keep)
        self.total, self.count, self.rate = float(state["total"]), int(state["count"]), float(state["rate"])
