"""GFMJump: the framework-free jump core (record, forecast, guarded jump, resume, DDP).

A plain torch loop calls :meth:`GFMJump.on_epoch_end` once per epoch (or
:meth:`GFMJump.on_step_end` after every optimizer step with ``unit="step"``); the Hugging
Face and Lightning adapters translate their events into the same calls. All policy lives
here; the pieces are modules of their own: :mod:`~gfm_accel.jump.schedule` (counters, when
a jump is due, its target ``m``), :mod:`~gfm_accel.jump.forecasting` (step 1-2 below),
:mod:`~gfm_accel.jump.guard` (steps 3-4), :mod:`~gfm_accel.jump.outcome`, and
:mod:`~gfm_accel.jump.lr` (``lr_horizon``, ``lr_profile``). :meth:`GFMJump._jump` strings them
together.

A jump, step by step (Sections 4.3-4.4 of the paper for the forecast itself):

1. The forecaster sees ``w_0 .. w_n`` (``(n+1, D)`` float32, CPU) and predicts ``w_hat_m``.
   Under ``torch.distributed`` only rank 0 forecasts; the vector is broadcast.
2. A forecast of the wrong size or holding NaN/Inf (or a forecaster that raises) causes no
   jump: a warning, a :class:`JumpRecord` with the reason, and training goes on.
3. Candidates ``w_n + a (w_hat_m - w_n)`` for ``a`` in ``alpha * alphas`` are written in
   place (:func:`~gfm_accel.params.assign_params`, which validates before writing, so the
   model is never half-written). With a guard, the first candidate whose held-out loss
   satisfies ``loss_after <= loss_before + tolerance * |loss_before|`` is kept.
4. If none passes, the exact previous parameters and buffers are copied back (bit for
   bit) and the optimizer is left untouched. The optimizer state is only changed
   (``optimizer_state="reset"``) once a jump has been accepted, so a rejected jump never
   touches it: this gives the same exact-restore guarantee as a deep copy of
   ``optimizer.state_dict()`` without holding two more copies of Adam's moments.

Design choices where the paper is silent:

* BatchNorm statistics are refreshed (``refresh_bn_batches``) *before* a candidate is
  evaluated: evaluating jumped weights with the old statistics would make the guard
  reject good jumps of BatchNorm models.
* A far jump is attempted once; if it is rejected or skipped, training simply continues.
* No jump is made at or after the planned end (``total``): no training would follow it.
* After an accepted periodic jump the recorder is cleared and the jumped weights become the
  next window's ``w_0`` (recorded at the same step index).
* ``eval_fn`` is called under ``torch.no_grad()`` and the model's train/eval mode is
  restored after every call; it is called once at :meth:`GFMJump.attach`, so a bad guard
  set-up fails before training.
* Only parameters the optimizer updates are moved (``include_unoptimized``); a model or
  optimizer changed after attach restarts the window (:meth:`GFMJump.use_optimizer`).
* Nothing here consumes global RNG state (:func:`~gfm_accel.jump.rng.keep_global_rng`).
* ``lr_profile``: GFMJump, not the recorder, keeps the summed learning rate per snapshot
  interval (:class:`~gfm_accel.jump.lr.LRWindow`): it owns the snapshot timing (the
  schedule decides when the recorder records) and the scheduler, while the recorder knows
  neither optimizer nor scheduler. The sums restart with the window and are saved in
  :meth:`GFMJump.state_dict` (``"lr_window"``, present only with the option on).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .._io import FileFormatError, atomic_save_file, decode_metadata, load_tensors, read_header
from ..params import ParamSpec, assign_params, flatten_params
from ..recorder import WeightRecorder
from . import dist
from .bn import refresh_batchnorm
from .config import JumpConfig, JumpRecord
from .forecasting import forecast_step
from .guard import Backup, check_eval_fn, evaluate, search
from .lr import LRWindow, can_simulate, future_lr_profile, future_lr_ratio
from .momentum import OuterMomentum
from .outcome import Outcome
from .rng import keep_global_rng
from .schedule import JumpSchedule, check_total_and_start, far_target

__all__ = ["GFMJump", "STATE_FORMAT"]

logger = logging.getLogger(__name__)

STATE_FORMAT = "gfm_accel.jump_state"
_STATE_VERSION = "1"
# Options whose change would change which snapshots mean what; a resumed run must match.
_STRUCTURAL = ("mode", "n", "unit", "every_n_steps", "horizon", "every", "include_frozen", "include_unoptimized")


def _warn(msg: str, *args: Any) -> None:
    if dist.is_main_process():
        logger.warning(msg, *args)


def _info(msg: str, *args: Any) -> None:
    if dist.is_main_process():
        logger.info(msg, *args)


class GFMJump:
    """Record a live model's weights and jump it to a forecast, guarded.

    Args:
        forecaster: anything with ``forecast(prefix, m, *, spec=None)`` and an
            ``expected_dim`` attribute (:class:`~gfm_accel.forecast.base.Forecaster`).
            ``None`` uses ``gfm_accel.pretrained_forecaster()``, looked up at :meth:`attach`.
            With ``lr_profile=True`` it must have ``schedule_aware = True`` and is called as
            ``forecast(prefix, m, spec=spec, lr_profile=profile)``, ``profile`` ``(m+1,)``.
        config: a :class:`JumpConfig`; or give its options as keyword arguments.
        **options: :class:`JumpConfig` fields (``mode``, ``n``, ``horizon``, ``alpha``, ...).

    Attributes:
        history: one :class:`JumpRecord` per jump attempt.
        recorder: the :class:`~gfm_accel.recorder.WeightRecorder` (after :meth:`attach`).
        schedule: the :class:`~gfm_accel.jump.schedule.JumpSchedule` (counters, due, target).
        momentum: the :class:`~gfm_accel.jump.momentum.OuterMomentum` of ``outer_momentum``.
        config: the :class:`JumpConfig`.
        lr_window: the window's summed learning rates (:class:`~gfm_accel.jump.lr.LRWindow`)
            with ``lr_profile=True`` (after :meth:`attach`), else None.

    Example:
        >>> import torch
        >>> from gfm_accel.forecast.simple import LinearExtrapolationForecaster
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch").attach(model, opt, total=6)
        >>> x, y = torch.randn(32, 4), torch.randn(32, 1)
        >>> for epoch in range(6):
        ...     loss = (model(x) - y).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
        ...     rec = jump.on_epoch_end(epoch)
        >>> [(r.step, r.m, r.accepted) for r in jump.history]
        [(2, 6, True)]
    """

    def __init__(self, forecaster: Any = None, *, config: JumpConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise ValueError(f"give either config= or keyword options, not both (got options {sorted(options)})")
        if config is None:
            config = JumpConfig.from_dict(options)
        elif not isinstance(config, JumpConfig):
            raise TypeError(f"config must be a JumpConfig, got {type(config).__name__}")
        if isinstance(forecaster, (str, os.PathLike)):
            raise TypeError(
                f"GFMJump takes a forecaster object, not a file path ({os.fspath(forecaster)!r}); load the file "
                f"first: GFMJump(gfm_accel.pretrained_forecaster({os.fspath(forecaster)!r}), ...)"
            )
        self.config = config
        self.forecaster = forecaster
        self.schedule = JumpSchedule(config)
        self.momentum = OuterMomentum(config.outer_momentum)
        self.history: list[JumpRecord] = []
        self.recorder: WeightRecorder | None = None
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.eval_fn: Callable[[nn.Module], float] | None = None
        self.bn_loader: Iterable | None = None
        self.lr_scheduler: Any = None
        self.lr_steps_per_snapshot: float | None = None
        self.lr_window: LRWindow | None = None
        self.active = True
        self._saved_state: dict[str, Any] | None = None
        self._binding: tuple | None = None

    @property
    def total(self) -> int | None:
        """Planned run length given to :meth:`attach` (epochs or optimizer steps)."""
        return self.schedule.total

    @property
    def guarded(self) -> bool:
        """Whether jumps are judged by the guard (``guard``, or on when an ``eval_fn`` is given)."""
        return self.config.guard if self.config.guard is not None else self.eval_fn is not None

    @property
    def has_saved_state(self) -> bool:
        """A state was loaded before :meth:`attach` and waits to be applied there."""
        return self._saved_state is not None

    def reset(self) -> "GFMJump":
        """Forget the run (binding, snapshots, counters, history, a waiting state): a new run follows.

        Returns:
            ``self``.
        """
        self.schedule.reset()
        self.schedule.total = None
        self.momentum.rejected()
        self.history = []
        self.recorder = self.model = self.optimizer = self.eval_fn = self.bn_loader = None
        self.lr_scheduler = self.lr_steps_per_snapshot = self.lr_window = None
        self.active = True
        self._saved_state = None
        self._binding = None
        return self

    # ------------------------------------------------------------------ setup
    def attach(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        eval_fn: Callable[[nn.Module], float] | None = None,
        total: int | None = None,
        bn_loader: Iterable | None = None,
        start: int = 0,
        lr_scheduler: Any = None,
        lr_steps_per_snapshot: float | None = None,
    ) -> "GFMJump":
        """Bind to a model (and optimizer) and record ``w_0``.

        Args:
            model: the model being trained (a DDP wrapper is fine; its ``module.``
                parameter names are used).
            optimizer: its optimizer (its state is cleared after an accepted jump when
                ``optimizer_state="reset"``; without one there is nothing to reset).
            eval_fn: ``eval_fn(model) -> float``, the loss on fixed held-out batches; turns
                the guard on unless ``guard=False``.
            total: planned run length, epochs (``unit="epoch"``) or optimizer steps
                (``unit="step"``); far mode's default target ``m``.
            bn_loader: batches for ``refresh_bn_batches``.
            start: epochs (or optimizer steps) already completed when attaching to a run
                in progress without a saved jump state: ``w_0`` gets this step index, step
                snapshots are taken every ``every_n_steps`` from it, and far mode's default
                target is ``total - start`` (in snapshot units). Ignored when a saved state
                is loaded. When too little of the run is left for ``n + 1`` fresh snapshots,
                a warning says so and the events do nothing (:attr:`active` is False).
            lr_scheduler: the run's learning-rate scheduler, for ``lr_horizon=True`` or
                ``lr_profile=True`` (stepped before each :meth:`on_step_end`, as the Hugging
                Face Trainer and Lightning do).
            lr_steps_per_snapshot: scheduler steps between two snapshots (default
                ``every_n_steps`` with ``unit="step"``, 1 with ``unit="epoch"``: a scheduler
                stepped once per epoch).

        Returns:
            ``self``.

        Raises:
            ValueError: the forecaster's ``expected_dim`` differs from the model's D, far
                mode without ``total`` or ``horizon``, ``horizon_decay`` without ``total``, a
                target ``m <= n``, a guard without ``eval_fn``, a BatchNorm refresh without
                ``bn_loader``, or ``lr_profile=True`` without a scheduler, with one that cannot
                be simulated (``ReduceLROnPlateau``) or with a forecaster that is not
                ``schedule_aware``.
        """
        cfg = self.config
        if self.recorder is not None:
            raise RuntimeError(
                "GFMJump is attached already; attaching again would mix two runs' snapshots, counters and "
                "history. Call jump.reset() first to start a new run (or use a new GFMJump); after recreating "
                "the optimizer call jump.use_optimizer(optimizer)"
            )
        forecaster = self._resolve_forecaster()
        spec = self._spec_for(model, optimizer)
        self._check_dim(forecaster, spec)
        if self._saved_state is not None:
            start = 0  # the saved state knows where the run stands
        check_total_and_start(total, start)
        resuming = self._saved_state is None and start > 0
        if resuming:
            _warn("GFMJump: attached at step %d without a saved jump state; observation restarts here", start)
        if cfg.mode == "far" and not (resuming and not self._room_from(total, start)):
            far_target(cfg, total, start)  # fail early; recomputed from the loaded state
        if cfg.horizon_decay != "none" and total is None:
            raise ValueError(
                f"horizon_decay={cfg.horizon_decay!r} needs the planned run length: attach(..., total=epochs or "
                f"steps), so that K decays from horizon={cfg.periodic_horizon} to horizon_min={cfg.horizon_min} "
                f"at its end"
            )
        if cfg.guard is True and eval_fn is None:
            raise ValueError("guard=True needs eval_fn(model) -> float (the loss on held-out batches)")
        if cfg.refresh_bn_batches > 0 and bn_loader is None:
            raise ValueError(f"refresh_bn_batches={cfg.refresh_bn_batches} needs bn_loader= (training batches)")
        if cfg.lr_horizon and lr_scheduler is None:
            raise ValueError("lr_horizon=True needs attach(lr_scheduler=...) (the run's learning-rate scheduler)")
        if cfg.lr_profile:
            self._check_lr_profile(forecaster, lr_scheduler)
        if lr_steps_per_snapshot is not None and not (
            isinstance(lr_steps_per_snapshot, (int, float)) and lr_steps_per_snapshot > 0
        ):
            raise ValueError(f"lr_steps_per_snapshot must be a positive number, got {lr_steps_per_snapshot!r}")
        if eval_fn is not None and cfg.guard is not False:
            check_eval_fn(eval_fn, model, dist.comm_device(spec.check_model(model)[0].device))
        self.forecaster = forecaster
        self.model, self.optimizer, self.eval_fn, self.bn_loader = model, optimizer, eval_fn, bn_loader
        self.lr_scheduler = lr_scheduler
        if lr_steps_per_snapshot is None:
            lr_steps_per_snapshot = cfg.every_n_steps if cfg.unit == "step" else 1
        self.lr_steps_per_snapshot = float(lr_steps_per_snapshot)
        self.lr_window = None
        if cfg.lr_profile:
            # Optimizer steps per snapshot interval: the unit of the past sums (and the future's).
            scale = cfg.every_n_steps if cfg.unit == "step" else self.lr_steps_per_snapshot
            self.lr_window = LRWindow(keep=cfg.n + 1, scale=scale)
        self.active = True
        self.recorder = self._new_recorder(model, spec)
        self._binding = self._fingerprint()
        self.schedule.total = total
        if self._saved_state is not None:
            state, self._saved_state = self._saved_state, None
            self.load_state_dict(state)
            self._warn_guard_off()
            return self
        if resuming and not self._room_from(total, start):
            _warn("GFMJump: too little of the resumed run is left for a jump; none will be made")
            self.active = False
            return self
        self.schedule.begin(total, start)
        self.recorder.record(self.schedule.counter)
        self._restart_lr_window()
        self._warn_guard_off()
        self._warn_too_short()
        return self

    @staticmethod
    def _check_lr_profile(forecaster: Any, lr_scheduler: Any) -> None:
        if lr_scheduler is None:
            raise ValueError(
                "lr_profile=True needs attach(lr_scheduler=...) (the run's learning-rate scheduler, whose copy "
                "gives the horizon's learning rates)"
            )
        if not can_simulate(lr_scheduler):
            raise ValueError(
                f"lr_profile=True needs a scheduler whose future can be simulated; {type(lr_scheduler).__name__} "
                "cannot (a ReduceLROnPlateau depends on future losses)"
            )
        if getattr(forecaster, "schedule_aware", False) is not True:
            raise ValueError(
                f"lr_profile=True needs a schedule-aware forecaster; {type(forecaster).__name__} is not one. Fit "
                "GFMForecaster('coordinate', schedule_aware=True) on trajectories holding 'lr_sum' (or turn "
                "lr_profile off)"
            )

    def _lr_now(self) -> float:
        """Group-0 learning rate of the scheduler's optimizer now (the next optimizer step's)."""
        return float(self.lr_scheduler.optimizer.param_groups[0]["lr"])

    def _restart_lr_window(self) -> None:
        if self.lr_window is not None:
            self.lr_window.restart(self._lr_now())

    def _lr_profile(self, m: int) -> torch.Tensor | None:
        """``(m+1,)`` float64 summed learning rate per snapshot interval of the window frame."""
        n = self.config.n
        future = future_lr_profile(self.lr_scheduler, m - n, self.lr_steps_per_snapshot, scale=self.lr_window.scale)
        if future is None:
            _info("GFMJump: the learning-rate schedule cannot be simulated; the forecaster sees a constant one")
            return None
        return torch.cat([self.lr_window.past(n), future])

    def _spec_for(self, model: nn.Module, optimizer: Any) -> ParamSpec:
        """The parameters a jump moves: the trainable ones the optimizer updates (see ``include_unoptimized``)."""
        cfg = self.config
        only = None
        if optimizer is not None and not (cfg.include_unoptimized or cfg.include_frozen):
            only = [p for group in optimizer.param_groups for p in group["params"]]
        spec = ParamSpec.from_model(model, include_frozen=cfg.include_frozen, only=only)
        if spec.numel == 0:
            if only is not None and ParamSpec.from_model(model).numel > 0:
                raise ValueError(
                    "none of the model's trainable parameters is in the optimizer's param_groups: pass the "
                    "optimizer of this model (or include_unoptimized=True to move them anyway)"
                )
            raise ValueError("the model has no trainable parameters to forecast")
        if only is not None:
            left = len(ParamSpec.from_model(model)) - len(spec)
            if left > 0:
                _info(
                    "GFMJump: %d trainable parameter tensor(s) the optimizer does not update are left as they "
                    "are (include_unoptimized=True moves them too)", left,
                )
        return spec

    @staticmethod
    def _check_dim(forecaster: Any, spec: ParamSpec) -> None:
        expected = getattr(forecaster, "expected_dim", None)
        if expected is not None and int(expected) != spec.numel:
            raise ValueError(
                f"the forecaster was built for D={int(expected)} parameters but the model has "
                f"D={spec.numel} trainable parameters; use a forecaster for this model (or a "
                f"model-agnostic one with expected_dim=None)"
            )

    def _new_recorder(self, model: nn.Module, spec: ParamSpec) -> WeightRecorder:
        cfg = self.config
        return WeightRecorder(
            model,
            every="epoch" if cfg.unit == "epoch" else cfg.every_n_steps,
            keep=cfg.n + 1,
            dtype=cfg.snapshot_dtype,
            include_frozen=cfg.include_frozen,
            record_initial=False,
            spec=spec,
        )

    def _warn_guard_off(self) -> None:
        if self.guarded:
            return
        if self.config.guard is False:
            _info("GFMJump: guard=False: every jump is accepted without a held-out check")
        else:
            _warn(
                "GFMJump: the guard is off (no held-out data): every jump is accepted unchecked. Give "
                "attach(eval_fn=...) a loss on a few fixed held-out batches (the HF Trainer an eval_dataset, "
                "Lightning a val dataloader), or pass guard=False to silence this"
            )

    def _warn_too_short(self) -> None:
        cfg, sched = self.config, self.schedule
        unit = "epoch" if cfg.unit == "epoch" else "step"
        at, needed = sched.first_jump()
        if sched.total is not None and needed > sched.total:
            _warn(
                "GFMJump: the planned run (total=%d %ss) is too short for any jump: the first can come at %s %d "
                "and needs a planned length of at least %d %ss (%s). Train longer or shorten the schedule",
                sched.total, unit, unit, at, needed, unit, self._schedule_text(),
            )
        else:
            _info("GFMJump: the first jump can come at %s %d (%s)", unit, at, self._schedule_text())

    def _schedule_text(self) -> str:
        cfg = self.config
        text = f"{cfg.mode}, n={cfg.n}"
        if cfg.mode == "periodic":
            text += f", K={cfg.periodic_horizon}, P={cfg.periodic_every}"
            if cfg.horizon_decay != "none":
                text += f", K decaying ({cfg.horizon_decay}) to {cfg.horizon_min}"
        if cfg.unit == "step":
            text += f", a snapshot every {cfg.every_n_steps} steps"
        return text

    # ------------------------------------------------------------- changes after attach
    def use_optimizer(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Bind a recreated optimizer (its state is what ``optimizer_state="reset"`` clears, and its
        parameters are the ones a jump moves). The adapters call it when the framework's optimizer changes."""
        self._require_attached()
        if optimizer is self.optimizer:
            return
        self.optimizer = optimizer
        self._check_binding()

    def _fingerprint(self) -> tuple:
        params = tuple((name, id(p), p.requires_grad) for name, p in self.model.named_parameters())
        opt = None
        if self.optimizer is not None:
            opt = tuple(id(p) for group in self.optimizer.param_groups for p in group["params"])
        return params, opt

    def _check_binding(self) -> None:
        """Follow a model or optimizer changed after attach: the window restarts at the current weights.

        A parameter added, removed, replaced (a module swapped) or (un)frozen, or an optimizer
        over other parameters, changes what a snapshot means; snapshots of the old layout
        cannot be forecast together with new ones.
        """
        now = self._fingerprint()
        if now == self._binding:
            return
        what = _describe_change(self._binding, now)
        self._binding = now
        spec = self._spec_for(self.model, self.optimizer)
        self._check_dim(self.forecaster, spec)
        _warn("GFMJump: %s after attach; the window restarts at the current weights", what)
        self.recorder = self._new_recorder(self.model, spec)
        self.momentum.rejected()  # v has the old layout
        self.schedule.seg = 0
        self.schedule.start = self.schedule.counter
        self.recorder.record(self.schedule.counter)
        self._restart_lr_window()

    def _room_from(self, total: int | None, start: int) -> bool:
        probe = JumpSchedule(self.config)
        probe.begin(total, start)
        return probe.has_room()

    def _resolve_forecaster(self) -> Any:
        forecaster = self.forecaster
        if forecaster is None:
            try:
                from .. import pretrained_forecaster  # lazy: heavy, and lands with its own issue
            except (ImportError, AttributeError) as exc:
                raise ValueError(
                    "no forecaster given and gfm_accel.pretrained_forecaster() is not available "
                    f"({exc}); pass GFMJump(forecaster=...)"
                ) from exc
            with keep_global_rng():
                forecaster = pretrained_forecaster()
        if not callable(getattr(forecaster, "forecast", None)):
            raise TypeError(
                f"forecaster must have a forecast(prefix, m, *, spec=None) method, got {type(forecaster).__name__}"
            )
        return forecaster

    def _require_attached(self) -> None:
        if self.recorder is None or self.model is None:
            raise RuntimeError("GFMJump is not attached: call jump.attach(model, optimizer, ...) first")

    # ------------------------------------------------------------------ events
    def on_epoch_end(self, epoch: int | None = None, loss: float | None = None) -> JumpRecord | None:
        """Call once at the end of each epoch: records (``unit="epoch"``) and jumps when due.

        Args:
            epoch: 0-based index of the epoch that just ended (defaults to an internal
                counter). A repeated index (e.g. after a resume) is ignored, so nothing is
                recorded twice.
            loss: optional training loss stored beside the snapshot.

        Returns:
            The :class:`JumpRecord` of a jump attempt made now, else None.
        """
        return self._event(self.schedule.epoch_ended, epoch, loss)

    def on_step_end(self, step: int | None = None, loss: float | None = None) -> JumpRecord | None:
        """Call after each optimizer step: records every ``every_n_steps`` (``unit="step"``) and jumps when due.

        ``step`` counts optimizer steps completed so far (defaults to an internal counter; a
        step already seen is ignored); ``loss`` and the return value are as in :meth:`on_epoch_end`.
        """
        return self._event(self.schedule.step_ended, step, loss)

    def _event(self, ended: Callable[[int | None], bool], index: int | None, loss: float | None) -> JumpRecord | None:
        """One epoch or step end: ``ended(index)`` advances the schedule's counters and says
        whether a snapshot is due (only ever for the config's unit); then observe at that counter."""
        self._require_attached()
        if not self.active:
            return None
        steps = self.schedule.steps
        snapshot = ended(index)
        if self.lr_window is not None and self.schedule.steps > steps:
            self.lr_window.step(self._lr_now())  # a new optimizer step ended
        if not snapshot:
            return None
        return self._observe(self.schedule.counter, loss)

    def _observe(self, step: int, loss: float | None) -> JumpRecord | None:
        before = self._binding
        self._check_binding()
        if self._binding is not before:
            return None  # the window restarted at this step
        self.recorder.record(step, loss=loss)  # a copy of the weights: draws no random numbers
        if self.lr_window is not None:
            self.lr_window.snapshot(self._lr_now())
        if not self.schedule.snapshot_taken(len(self.recorder)):
            return None
        return self.maybe_jump()

    def due(self) -> bool:
        """Whether a jump is due now (enough fresh snapshots, schedule reached)."""
        if self.recorder is None or not self.active:
            return False
        return self.schedule.due(len(self.recorder))

    def maybe_jump(self, force: bool = False) -> JumpRecord | None:
        """Jump if due (or, with ``force``, whenever n+1 snapshots are held); record it in :attr:`history`."""
        self._require_attached()
        held = len(self.recorder) >= self.config.n + 1
        if not (self.due() or (force and held and self.active and not self.schedule.finished())):
            return None
        with keep_global_rng():
            record = self._jump()
        self.history.append(record)
        return record

    def catch_up(self, epochs: int) -> JumpRecord | None:
        """Replay an epoch end the resumed run will not report.

        A framework that writes a checkpoint after the last optimizer step of an epoch but
        before its epoch-end event (the Hugging Face Trainer calls ``on_save`` before
        ``on_epoch_end``) resumes in the next epoch: the saved state has seen one epoch end
        fewer than the run has completed. The weights at resume are those of that epoch end,
        so it is processed now (recorded, and a jump made if one is due), exactly as the
        uninterrupted run did.

        Args:
            epochs: epochs the framework says are complete.

        Returns:
            The :class:`JumpRecord` of a jump made now, else None.
        """
        self._require_attached()
        if self.active and epochs == self.schedule.epochs + 1:
            return self.on_epoch_end(epochs - 1)
        return None

    def summary(self, steps_per_epoch: int | None = None) -> str:
        """One line: jumps accepted / tried, and how far ahead the accepted ones forecast.

        Args:
            steps_per_epoch: optimizer steps per epoch, to state a step-unit distance in epochs.

        Returns:
            E.g. ``"GFMJump: 3/4 jumps accepted; forecast 30 steps (2.5 epochs) ahead in total"``.
            The distance is nominal (``alpha * (m - n)`` snapshots per accepted jump): what
            a jump skips is measured against a plain run (``docs/acceleration.md``). When
            ``max_rejections`` switched jumping off, the line ends with
            ``"; off from step S (K attempts in a row not kept)"`` (``epoch`` for epoch units).
        """
        accepted = [r for r in self.history if r.accepted]
        line = f"GFMJump: {len(accepted)}/{len(self.history)} jumps accepted"
        off = ""
        if self.schedule.gave_up() and self.history:
            last, epochs = self.history[-1], self.config.unit == "epoch"
            off = (f"; off from {'epoch' if epochs else 'step'} {last.epoch if epochs else last.step} "
                   f"({self.config.max_rejections} attempts in a row not kept)")
        if not accepted:
            return line + off
        ahead = sum((r.m - r.n) * r.alpha for r in accepted) * self.schedule.per_snapshot
        if self.config.unit == "epoch":
            return line + f"; forecast {ahead:g} epochs ahead in total (nominal)" + off
        line += f"; forecast {ahead:g} steps"
        if steps_per_epoch:
            line += f" ({ahead / steps_per_epoch:.3g} epochs)"
        return line + " ahead in total (nominal)" + off

    def on_train_end(self, steps_per_epoch: int | None = None) -> str:
        """Call once when training ends: logs :meth:`summary` at INFO (rank zero) and returns it."""
        line = self.summary(steps_per_epoch)
        _info("%s", line)
        return line

    # ------------------------------------------------------------------ the jump
    @torch.no_grad()
    def _jump(self) -> JumpRecord:
        """One attempt: forecast, back up, search the candidates, restore or accept, log."""
        cfg, model, spec = self.config, self.model, self.recorder.spec
        t0 = time.perf_counter()
        m = self.schedule.target_m()
        record = JumpRecord(
            step=self.recorder.steps[-1], epoch=self.schedule.epochs, mode=cfg.mode, n=cfg.n, m=m, horizon=m - cfg.n
        )
        params = spec.check_model(model)
        device = dist.comm_device(params[0].device)

        # 1. forecast (rank 0) and share it
        profile = (lambda: self._lr_profile(m)) if self.lr_window is not None else None
        outcome, forecast = forecast_step(self.forecaster, lambda: self.recorder.last(cfg.n + 1), m, spec, device,
                                          lr_profile=profile)
        record.forecast_seconds = time.perf_counter() - t0
        if outcome is Outcome.OK:
            record.lr_ratio = self._lr_ratio(m - cfg.n)
            # 2-4. back up, try the candidates, restore or accept
            t_guard = time.perf_counter()
            outcome = self._guarded_move(record, model, spec, params, forecast, device)
            record.guard_seconds = time.perf_counter() - t_guard
        else:
            self.momentum.rejected()  # a skipped jump made no outer step
        record.reason = outcome.reason
        record.seconds = time.perf_counter() - t0
        self.schedule.attempted()
        if not outcome.accepted:
            self.schedule.rejected()
        self._log_attempt(record)
        if not outcome.accepted and self.schedule.gave_up():
            _info("GFMJump: %d attempts in a row not accepted (max_rejections); jumping and recording are off "
                  "for the rest of the run", self.schedule.rejections)
        return record

    def _guarded_move(self, record, model, spec, params, forecast, device) -> Outcome:
        """Move the model to the first candidate the guard accepts, or leave it exactly as it was."""
        cfg, guarded = self.config, self.guarded
        w_n = flatten_params(model, spec)
        delta = forecast.sub_(w_n)  # w_hat_m - w_n, in place: one (D,) buffer
        backup = Backup(params, list(model.buffers()))
        was_training = model.training
        momentum = self.momentum.term(1.0)  # beta v, (D,), or None (off, or v = 0)

        def step(a: float) -> torch.Tensor:
            # The displacement of candidate a; the momentum term is scaled by the back-off a / alpha.
            return a * delta if momentum is None else a * delta + (a / cfg.alpha) * momentum

        def write(a: float) -> None:
            assign_params(model, w_n + a * delta if momentum is None else w_n + step(a), spec)
            if cfg.refresh_bn_batches > 0:
                self._refresh_bn(model, device)

        def loss_now() -> float:
            return evaluate(self.eval_fn, model, device)

        if guarded:
            record.loss_before = loss_now()
        try:
            alphas = [a * record.lr_ratio for a in cfg.candidate_alphas(guarded)]
            result = search(alphas, write, loss_now if guarded else None, record.loss_before, cfg.tolerance)
        except BaseException:
            # eval_fn or the BatchNorm loader failed mid-jump: never leave the model jumped.
            backup.restore()
            model.train(was_training)
            raise
        record.alphas_tried, record.losses_after = result.alphas_tried, result.losses_after
        if result.outcome.accepted:
            record.accepted, record.alpha = True, result.alpha
            if self.momentum.enabled:
                applied = step(result.alpha)
                record.jump_norm = float(applied.norm())
                if momentum is not None:
                    record.momentum_norm = float(momentum.norm()) * result.alpha / cfg.alpha
                self.momentum.accepted(applied)
            else:
                record.jump_norm = float(delta.norm()) * result.alpha
            self._after_accept(record)
        else:
            backup.restore()
            self.momentum.rejected()
        model.train(was_training)
        return result.outcome

    def _lr_ratio(self, snapshots_ahead: int) -> float:
        """``r`` of ``lr_horizon`` for a forecast ``snapshots_ahead`` snapshots ahead (1.0 when off)."""
        if not self.config.lr_horizon or self.lr_scheduler is None:
            return 1.0
        steps = max(1, round(snapshots_ahead * self.lr_steps_per_snapshot))
        ratio = future_lr_ratio(self.lr_scheduler, steps)
        if ratio is None:
            _info("GFMJump: the learning-rate schedule cannot be simulated; the horizon is not rescaled")
            return 1.0
        return min(1.0, ratio)

    def _refresh_bn(self, model: nn.Module, device: torch.device) -> None:
        refresh_batchnorm(model, self.bn_loader, self.config.refresh_bn_batches)
        if dist.is_distributed():  # ranks saw different batches; keep them identical
            for b in model.buffers():
                dist.broadcast_(b.data, device)

    def _after_accept(self, record: JumpRecord) -> None:
        self.schedule.accepted()
        if self.config.optimizer_state == "reset" and self.optimizer is not None:
            # Momentum buffers / Adam moments and step counts describe the old trajectory.
            self.optimizer.state.clear()
        if self.config.mode == "periodic":
            # The next window starts at the jumped weights (same step index).
            self.recorder.clear()
            self.recorder.record(record.step)
            self._restart_lr_window()

    def _log_attempt(self, record: JumpRecord) -> None:
        after = ", ".join(f"{v:.6g}" for v in record.losses_after)
        if record.accepted:
            _info(
                "GFMJump: %s jump at step %d to m=%d accepted with alpha=%g (loss %s -> %s)",
                record.mode, record.step, record.m, record.alpha, record.loss_before,
                record.losses_after[-1] if record.losses_after else None,
            )
        elif record.alphas_tried:
            _warn(
                "GFMJump: jump at step %d rejected by the guard (loss %.6g -> %s); weights restored",
                record.step, record.loss_before, after,
            )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (counters, history, the recorder's snapshots,
        ``outer_momentum``'s ``v``; with ``lr_profile`` the window's learning-rate sums, ``"lr_window"``)."""
        if self._saved_state is not None and self.recorder is None:
            return dict(self._saved_state)
        return {
            "format": STATE_FORMAT,
            "version": _STATE_VERSION,
            "config": self.config.to_dict(),
            **self.schedule.state_dict(),
            "history": [r.to_dict() for r in self.history],
            "recorder": self.recorder.state_dict() if self.recorder is not None else None,
            **({"lr_window": self.lr_window.state_dict()} if self.lr_window is not None else {}),
            "momentum": self.momentum.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; before :meth:`attach` it is applied at attach time.

        Raises:
            ValueError: a state saved with a different mode, n, unit, step interval,
                horizon or window (the snapshots would mean something else).
        """
        if state.get("format", STATE_FORMAT) != STATE_FORMAT:
            raise ValueError(f"not a GFMJump state (format {state.get('format')!r})")
        saved = state.get("config") or {}
        mine = self.config.to_dict()
        unused = () if mine["unit"] == "step" else ("every_n_steps",)  # the step interval means nothing per epoch
        diff = [k for k in _STRUCTURAL if k in saved and k not in unused and saved[k] != mine[k]]
        if diff:
            raise ValueError(
                "GFMJump state was saved with a different schedule: "
                + ", ".join(f"{k}={saved[k]!r} (now {mine[k]!r})" for k in diff)
            )
        other = [k for k in mine if k in saved and k not in _STRUCTURAL and saved[k] != mine[k]]
        if other:
            _warn("GFMJump: resuming with changed options %s (the current values are used)", other)
        if self.recorder is None:
            self._saved_state = state
            return
        if state.get("recorder") is not None:
            self.recorder.load_state_dict(state["recorder"])
        self.schedule.load_state_dict(state)
        if self.lr_window is not None:
            if state.get("lr_window") is not None:
                self.lr_window.load_state_dict(state["lr_window"])
            else:
                _warn("GFMJump: the saved state holds no learning-rate sums (lr_profile was off); the window's "
                      "intervals are taken at the current rate")
                self.lr_window.assume_constant(len(self.recorder), self._lr_now())
        self.momentum.load_state_dict(state.get("momentum") or {}, numel=self.recorder.spec.numel)
        self.active = True
        self.history = [JumpRecord.from_dict(r) for r in state.get("history", [])]

    def save_state(self, path: str | os.PathLike, *, all_ranks: bool = False) -> Path:
        """Write :meth:`state_dict` as one safetensors file (atomic), beside a checkpoint.

        Snapshots go in the tensor ``"recorder.weights"`` (``(T, D)``), ``outer_momentum``'s
        ``v`` (when nonzero) in ``"momentum.velocity"`` (``(D,)``); everything else is
        JSON in the metadata. Under ``torch.distributed`` only rank 0 writes unless
        ``all_ranks`` (each rank then needs its own path).
        """
        path = Path(path)
        if not (all_ranks or dist.is_main_process()):
            return path
        state = self.state_dict()
        tensors: dict[str, torch.Tensor] = {}
        rec = state.get("recorder")
        if rec is not None:
            rec = dict(rec)
            tensors["recorder.weights"] = rec.pop("weights")
            state = {**state, "recorder": rec}
        velocity = (state.get("momentum") or {}).get("velocity")
        if velocity is not None:
            tensors["momentum.velocity"] = velocity
            state = {**state, "momentum": {"velocity": None}}
        meta = {
            "format": STATE_FORMAT,
            "version": _STATE_VERSION,
            "state": json.dumps({k: v for k, v in state.items() if k not in ("format", "version")}),
        }
        if "recorder.weights" not in tensors:  # safetensors needs no tensors, but keep the file self-describing
            tensors["recorder.weights"] = torch.empty(0, 0)
            meta["no_recorder"] = "1"
        return atomic_save_file(tensors, path, meta)

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore from a file written by :meth:`save_state`."""
        meta, header = read_header(path)
        if meta.get("format") != STATE_FORMAT:
            raise FileFormatError(f"{path}: not a GFMJump state file (format {meta.get('format')!r})")
        if meta.get("version") != _STATE_VERSION:
            raise FileFormatError(f"{path}: GFMJump state version {meta.get('version')!r}, expected {_STATE_VERSION}")
        state = decode_metadata({"state": meta["state"]})["state"]
        if not isinstance(state, dict):
            raise FileFormatError(f"{path}: corrupt GFMJump state metadata")
        state["format"], state["version"] = STATE_FORMAT, _STATE_VERSION
        if state.get("recorder") is not None and meta.get("no_recorder") != "1":
            state["recorder"]["weights"] = load_tensors(path, ["recorder.weights"])["recorder.weights"]
        if "momentum.velocity" in header:
            state["momentum"] = {"velocity": load_tensors(path, ["momentum.velocity"])["momentum.velocity"]}
        self.load_state_dict(state)

    # ------------------------------------------------------------------ misc
    @property
    def jumps(self) -> int:
        """Number of accepted jumps so far."""
        return self.schedule.jumps

    def __repr__(self) -> str:
        fields_ = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in fields(self.config)[:4])
        return f"GFMJump({fields_}, attached={self.recorder is not None}, jumps={self.jumps})"


def _describe_change(old: tuple, new: tuple) -> str:
    """Name the first difference of two binding fingerprints (see ``GFMJump._fingerprint``)."""
    (old_p, old_o), (new_p, new_o) = old, new
    old_by, new_by = {n: (i, g) for n, i, g in old_p}, {n: (i, g) for n, i, g in new_p}
    for name, (i, g) in new_by.items():
        if name not in old_by:
            return f"parameter {name!r} was added"
        if old_by[name][0] != i:
            return f"parameter {name!r} was replaced (a module swapped)"
        if old_by[name][1] != g:
            return f"parameter {name!r} was {'unfrozen' if g else 'frozen'}"
    for name in old_by:
        if name not in new_by:
            return f"parameter {name!r} was removed"
    if old_o != new_o:
        return "the optimizer's parameters changed (optimizer recreated or param group added)"
    return "the parameter order changed"
