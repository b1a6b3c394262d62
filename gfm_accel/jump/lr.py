"""Learning-rate schedules and the horizon: how far a jump goes when the learning rate decays.

A forecaster trained on trajectories predicts ``w_m``, ``K = m - n`` snapshots ahead, as if
training went on the way the window ``w_0 .. w_n`` went. Under a decaying learning rate the
next ``K`` snapshots cover less ground than the last ones did. With ``lr_horizon=True`` the
horizon is counted in summed learning rate instead of in steps: the jump covers the
fraction

    r = (sum of the learning rates of the next S optimizer steps) / (S * the learning rate now),

``S`` = the scheduler steps the ``K`` snapshots span, of what the forecast covers: the
candidates become ``w_n + alpha * a * r * (w_hat_m - w_n)``. For a forecaster linear in the
horizon (linear extrapolation) this is the forecast ``K * r`` snapshots ahead; any
forecaster keeps seeing the integer target ``m`` it was trained for. ``r`` is clipped to
``(0, 1]``: a warm-up does not make a jump longer than ``K``. The future learning rates
come from a copy of the scheduler stepped ``S - 1`` times; the live scheduler and optimizer
are not touched. The reference is the learning rate at the jump, so under a decaying
schedule the correction is slightly too small (the window's steps were taken at somewhat
larger rates).

Example:
    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / 10)
    >>> round(future_lr_ratio(sched, 4), 6)  # (1.0 + 0.9 + 0.8 + 0.7) / 4
    0.85
    >>> opt.param_groups[0]["lr"], sched.last_epoch
    (1.0, 0)
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import torch

__all__ = ["future_lr_ratio"]

logger = logging.getLogger("gfm_accel.jump.core")


def future_lr_ratio(scheduler: Any, steps: int) -> float | None:
    """Mean learning rate (group 0) of the next ``steps`` optimizer steps over the current one.

    Args:
        scheduler: a torch ``LRScheduler`` (HF's and Lightning's are these) bound to the
            run's optimizer.
        steps: optimizer steps ahead (``>= 1``); the first uses the current rate.

    Returns:
        The ratio (not clipped), or None when the schedule cannot be simulated (a
        ``ReduceLROnPlateau``, which depends on future losses; a current rate of 0).
    """
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return None
    optimizer = getattr(scheduler, "optimizer", None)
    if optimizer is None or not hasattr(scheduler, "step"):
        return None
    now = float(optimizer.param_groups[0]["lr"])
    if now <= 0.0:
        return None
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
    total = now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for _ in range(int(steps) - 1):
            clone.step()
            total += float(stand_in.param_groups[0]["lr"])
    return total / (int(steps) * now)
