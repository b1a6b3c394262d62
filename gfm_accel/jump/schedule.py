"""The jump schedule: counters, when a jump is due, its target ``m``, the room left in a run.

:class:`JumpSchedule` holds no tensors and knows nothing of models: it turns the events of a
training run (epoch ends, optimizer steps) into "take a snapshot now" and "a jump is due
now", following a :class:`~gfm_accel.jump.config.JumpConfig`. :func:`target_m` is the
target index of a schedule (the paper's ``m``, Sections 4.3-4.4), public so that offline
tools compute it the same way.

Index conventions: the *counter* is the number of epochs (``unit="epoch"``) or optimizer
steps (``unit="step"``) completed; snapshots are taken every ``per_snapshot`` counter
values from ``start`` (the counter value of ``w_0``); ``n``, ``m``, ``K`` and ``P`` are in
snapshot units.

Example:
    >>> from gfm_accel.jump.config import JumpConfig
    >>> s = JumpSchedule(JumpConfig(mode="periodic", n=2, horizon=3, every=2, unit="epoch"))
    >>> s.begin(total=10)
    >>> [e for e in range(10) if s.epoch_ended(e) and s.snapshot_taken(held=min(e + 2, 3))]
    [1, 3, 5]
    >>> target_m(JumpConfig(mode="far", n=4, unit="epoch"), total=30)
    30
"""

from __future__ import annotations

import math
from typing import Any

from .config import JumpConfig

__all__ = ["JumpSchedule", "target_m", "far_target", "decayed_horizon", "horizon_at"]

_COUNTERS = ("epochs", "steps", "seg", "jumps", "far_done", "start", "rejections")


def far_target(config: JumpConfig, total: int | None, start: int = 0) -> int:
    """Far mode's ``m`` in snapshot units, counted from ``w_0`` (taken at counter ``start``).

    Args:
        config: the schedule.
        total: planned run length in the config's unit (epochs or optimizer steps), or None.
        start: counter value of ``w_0``.

    Returns:
        ``horizon`` when set, else the planned end ``(total - start)`` in snapshot units.

    Raises:
        ValueError: no ``horizon`` and no ``total``, or a target ``m <= n``.
    """
    if config.horizon is not None:
        m = config.horizon
    elif total is None:
        raise ValueError("far mode needs the planned run length: attach(..., total=epochs or steps) or horizon=m")
    else:
        m = (total - start) // _per_snapshot(config)
    if m <= config.n:
        raise ValueError(
            f"far mode: the target m={m} (snapshot units) must be larger than n={config.n}; the run is too "
            f"short for n+1={config.n + 1} observed snapshots before its end"
        )
    return m


def decayed_horizon(k_max: int, k_min: int, counter: int, total: int, kind: str) -> int:
    """``K`` of a jump at ``counter`` of a planned run of ``total`` under ``horizon_decay=kind``.

    ``K_c = k_min + (k_max - k_min) * f(p)``, ``p = min(counter / total, 1)``, with
    ``f(p) = 1 - p`` (``"linear"``, computed in integers, so exact) or
    ``(1 + cos(pi p)) / 2`` (``"cosine"``), rounded half up. Progress is the run's, from
    counter 0 (not from a later ``w_0``): a run resumed without its jump state keeps the
    decay it would have had. Rounding half up, not Python's half-to-even, so that equal
    progress always gives the same ``K``.

    Args:
        k_max: ``K`` at the start of the run (``horizon``).
        k_min: ``K`` at the planned end (``horizon_min``).
        counter: epochs or optimizer steps completed.
        total: the planned run length in the same unit.
        kind: ``"none"``, ``"linear"`` or ``"cosine"``.

    Returns:
        An integer in ``[k_min, k_max]`` (``k_max`` for ``"none"``).

    Example:
        >>> [decayed_horizon(10, 1, c, 20, "linear") for c in (0, 2, 10, 18, 20)]
        [10, 9, 6, 2, 1]
    """
    if kind == "none":
        return k_max
    counter = min(max(counter, 0), total)
    if kind == "linear":  # round(k_min + span * (total - counter) / total), half up, exactly
        span = k_max - k_min
        return k_min + (2 * span * (total - counter) + total) // (2 * total)
    if kind == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * counter / total))
        return min(k_max, max(k_min, math.floor(k_min + (k_max - k_min) * f + 0.5)))
    raise ValueError(f"unknown horizon_decay {kind!r}")


def horizon_at(config: JumpConfig, counter: int | None, total: int | None) -> int:
    """Periodic mode's ``K`` for a jump at ``counter``: ``horizon``, decayed by ``horizon_decay``.

    Raises:
        ValueError: a decay without ``total`` or ``counter`` (the run's progress is unknown).
    """
    if config.horizon_decay == "none":
        return config.periodic_horizon
    if total is None or counter is None:
        raise ValueError(
            f"horizon_decay={config.horizon_decay!r} needs the planned run length and the counter: "
            f"attach(..., total=epochs or steps)"
        )
    return decayed_horizon(config.periodic_horizon, config.horizon_min, counter, total, config.horizon_decay)


def target_m(config: JumpConfig, total: int | None = None, start: int = 0, counter: int | None = None) -> int:
    """The target index ``m`` a jump of ``config`` forecasts (snapshot units, ``w_0`` = 0).

    Args:
        config: the schedule.
        total: planned run length in the config's unit (far mode's default target).
        start: counter value of ``w_0`` (far mode counts the planned end from it).
        counter: the counter at the jump, for ``horizon_decay`` (default ``start``).

    Returns:
        Periodic mode: ``n + K`` (``K`` from :func:`horizon_at`); far mode: :func:`far_target`.

    Example:
        >>> target_m(JumpConfig(mode="periodic", n=4, horizon=10, every=5, unit="epoch"))
        14
    """
    if config.mode == "far":
        return far_target(config, total, start)
    return config.n + horizon_at(config, start if counter is None else counter, total)


def _per_snapshot(config: JumpConfig) -> int:
    return config.every_n_steps if config.unit == "step" else 1


class JumpSchedule:
    """Counters of a run and the rules that turn them into snapshots and jumps.

    Args:
        config: the :class:`JumpConfig` whose schedule this is.

    Attributes:
        epochs: epochs completed.
        steps: optimizer steps completed.
        seg: snapshots recorded in the current window after its first one.
        jumps: accepted jumps.
        rejections: attempts in a row not accepted (``max_rejections``).
        far_done: far mode's single attempt has been made.
        start: counter value of ``w_0``.
        total: planned run length (the config's unit), or None.
    """

    def __init__(self, config: JumpConfig) -> None:
        self.config = config
        self.total: int | None = None
        self.reset()

    def reset(self) -> None:
        """Zero every counter (a new run)."""
        self.epochs = 0
        self.steps = 0
        self.seg = 0
        self.jumps = 0
        self.rejections = 0
        self.far_done = False
        self.start = 0

    # ------------------------------------------------------------------ setup
    def begin(self, total: int | None = None, start: int = 0) -> None:
        """Set the planned length and the counter value of ``w_0`` of a fresh run.

        Raises:
            ValueError: ``total`` not a positive int, ``start`` negative or not before ``total``.
        """
        check_total_and_start(total, start)
        self.total = total
        self.start = start
        if self.config.unit == "epoch":
            self.epochs = max(self.epochs, start)
        else:
            self.steps = max(self.steps, start)

    @property
    def per_snapshot(self) -> int:
        """Counter units between two snapshots (1 epoch, or ``every_n_steps`` steps)."""
        return _per_snapshot(self.config)

    @property
    def counter(self) -> int:
        """Epochs (``unit="epoch"``) or optimizer steps (``unit="step"``) completed."""
        return self.epochs if self.config.unit == "epoch" else self.steps

    # ------------------------------------------------------------------ events
    def epoch_ended(self, epoch: int | None = None) -> bool:
        """Count an epoch end (0-based ``epoch``; a repeated index is ignored).

        Returns:
            Whether a snapshot is to be taken now.
        """
        new = int(epoch) + 1 if epoch is not None else self.epochs + 1
        if new <= self.epochs:
            return False
        self.epochs = new
        return self.config.unit == "epoch" and not self.finished()

    def step_ended(self, step: int | None = None) -> bool:
        """Count an optimizer step (``step`` = steps completed; a step already seen is ignored).

        Returns:
            Whether a snapshot is to be taken now.
        """
        new = int(step) if step is not None else self.steps + 1
        if new <= self.steps:
            return False
        self.steps = new
        if self.config.unit != "step" or (new - self.start) % self.config.every_n_steps != 0:
            return False
        return not self.finished()

    def snapshot_taken(self, held: int) -> bool:
        """Count a snapshot of the current window.

        Args:
            held: snapshots the recorder holds now.

        Returns:
            :meth:`due`.
        """
        self.seg += 1
        return self.due(held)

    def attempted(self) -> None:
        """A jump was attempted (accepted or not): far mode makes only one."""
        if self.config.mode == "far":
            self.far_done = True

    def accepted(self) -> None:
        """A jump was accepted: periodic mode starts a new window at the jumped weights."""
        self.jumps += 1
        self.rejections = 0
        if self.config.mode == "periodic":
            self.seg = 0

    def rejected(self) -> None:
        """An attempt was not accepted (guard or unusable forecast): counts toward ``max_rejections``."""
        self.rejections += 1

    # ------------------------------------------------------------------ rules
    def finished(self) -> bool:
        """No more jumps will be made (far mode tried, ``max_jumps`` or ``max_rejections`` reached)."""
        cfg = self.config
        if cfg.mode == "far":
            return self.far_done
        if self.gave_up():
            return True
        return cfg.max_jumps is not None and self.jumps >= cfg.max_jumps

    def gave_up(self) -> bool:
        """Periodic mode: ``max_rejections`` attempts in a row were not accepted (jumping is off)."""
        cfg = self.config
        return cfg.mode == "periodic" and cfg.max_rejections is not None and self.rejections >= cfg.max_rejections

    def due(self, held: int) -> bool:
        """Whether a jump is due now, with ``held`` snapshots in the recorder."""
        cfg = self.config
        if self.finished() or held < cfg.n + 1:
            return False
        if self.total is not None and self.counter >= self.total:
            return False  # the planned run is over: no training would follow the jump
        if cfg.mode == "far":
            return self.seg >= cfg.n
        if not (self.seg > 0 and self.seg % cfg.periodic_every == 0):
            return False
        if self.total is not None and not cfg.jump_past_end:
            if self.counter + self.horizon() * self.per_snapshot > self.total:
                return False  # the target lies past the planned end: no time to relax from the jump
        return True

    def horizon(self, counter: int | None = None) -> int:
        """Periodic mode's ``K`` for a jump at ``counter`` (default: now), see :func:`horizon_at`."""
        return horizon_at(self.config, self.counter if counter is None else counter, self.total)

    def target_m(self) -> int:
        """``m`` of a jump made now (see :func:`target_m`)."""
        return target_m(self.config, self.total, self.start, self.counter)

    def room_left(self) -> int | None:
        """Snapshots that still fit before the planned end (None without a ``total``)."""
        if self.total is None:
            return None
        return (self.total - self.counter) // self.per_snapshot

    def has_room(self) -> bool:
        """Whether ``n + 1`` fresh snapshots from now still fit before the planned end."""
        left = self.room_left()
        return left is None or left > self.config.n

    def first_jump(self) -> tuple[int, int]:
        """The earliest jump of a fresh window started now.

        Returns:
            ``(counter, needed_total)``: the counter value at which it can happen, and the
            smallest planned length for which it is allowed.
        """
        cfg, k = self.config, self.per_snapshot
        if cfg.mode == "far":
            at = self.counter + cfg.n * k
            return at, (self.start + (cfg.n + 1) * k if cfg.horizon is None else at + 1)
        at = self.counter + cfg.periodic_every * k
        return at, (at + self.horizon(at) * k if not cfg.jump_past_end else at + 1)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The counters, as plain values."""
        return {name: getattr(self, name) for name in _COUNTERS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters of :meth:`state_dict`."""
        self.epochs = int(state["epochs"])
        self.steps = int(state["steps"])
        self.seg = int(state["seg"])
        self.jumps = int(state["jumps"])
        self.far_done = bool(state["far_done"])
        self.start = int(state.get("start", 0))
        self.rejections = int(state.get("rejections", 0))  # absent in states saved before the option


def check_total_and_start(total: Any, start: Any) -> None:
    """Validate a planned length and a start counter.

    Raises:
        ValueError: ``total`` not a positive int, ``start`` negative or past ``total``
            (``start == total``, a finished run, is allowed: no jump fits).
    """
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 1):
        raise ValueError(f"total must be a positive integer (planned epochs or steps), got {total!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an integer >= 0 (epochs or steps already done), got {start!r}")
    if total is not None and start > total:
        raise ValueError(f"start={start} is not before the planned end total={total}")
