"""GFMJump: the framework-free jump core (record, forecast, guarded jump, resume, DDP).

A plain torch loop calls :meth:`GFMJump.on_epoch_end` once per epoch (or
:meth:`GFMJump.on_step_end` after every optimizer step with ``unit="step"``); the Hugging
Face and Lightning adapters translate their events into the same two calls. All logic
lives here.

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
  restored after every call.
"""

from __future__ import annotations

import json
import logging
import math
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

__all__ = ["GFMJump", "STATE_FORMAT", "check_adapter_args"]

logger = logging.getLogger(__name__)

STATE_FORMAT = "gfm_accel.jump_state"
_STATE_VERSION = "1"
# Options whose change would change which snapshots mean what; a resumed run must match.
_STRUCTURAL = ("mode", "n", "unit", "every_n_steps", "horizon", "every", "include_frozen")

_OK, _NONFINITE, _WRONG_SIZE, _FAILED = 0, 1, 2, 3
_REASONS = {
    _NONFINITE: "skipped: forecast NaN/Inf",
    _WRONG_SIZE: "skipped: forecast has wrong size",
    _FAILED: "skipped: forecaster failed",
}


def _warn(msg: str, *args: Any) -> None:
    if dist.is_main_process():
        logger.warning(msg, *args)


class GFMJump:
    """Record a live model's weights and jump it to a forecast, guarded.

    Args:
        forecaster: anything with ``forecast(prefix, m, *, spec=None)`` and an
            ``expected_dim`` attribute (:class:`~gfm_accel.forecast.base.Forecaster`).
            ``None`` uses ``gfm_accel.pretrained_forecaster()``, looked up at :meth:`attach`.
        config: a :class:`JumpConfig`; or give its options as keyword arguments.
        **options: :class:`JumpConfig` fields (``mode``, ``n``, ``horizon``, ``alpha``, ...).

    Attributes:
        history: one :class:`JumpRecord` per jump attempt.
        recorder: the :class:`~gfm_accel.recorder.WeightRecorder` (after :meth:`attach`).
        config: the :class:`JumpConfig`.

    Example:
        >>> import torch
        >>> from gfm_accel.forecast.simple import LinearExtrapolationForecaster
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> jump = GFMJump(LinearExtrapolationForecaster(), mode="far", n=2).attach(model, opt, total=6)
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
        self.config = config
        self.forecaster = forecaster
        self.history: list[JumpRecord] = []
        self.recorder: WeightRecorder | None = None
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.eval_fn: Callable[[nn.Module], float] | None = None
        self.bn_loader: Iterable | None = None
        self.total: int | None = None
        # Counters (all in the state dict).
        self._epochs = 0  # epochs completed
        self._steps = 0  # optimizer steps completed
        self._seg = 0  # snapshots recorded in the current window after its first one
        self._jumps = 0  # accepted jumps
        self._far_done = False
        self._start = 0  # counter value of w_0
        self._pending_state: dict[str, Any] | None = None

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
                is loaded.

        Returns:
            ``self``.

        Raises:
            ValueError: the forecaster's ``expected_dim`` differs from the model's D, far
                mode without ``total`` or ``horizon``, a target ``m <= n``, a guard without
                ``eval_fn``, or a BatchNorm refresh without ``bn_loader``.
        """
        cfg = self.config
        forecaster = self._resolve_forecaster()
        spec = ParamSpec.from_model(model, include_frozen=cfg.include_frozen)
        if spec.numel == 0:
            raise ValueError("the model has no trainable parameters to forecast")
        expected = getattr(forecaster, "expected_dim", None)
        if expected is not None and int(expected) != spec.numel:
            raise ValueError(
                f"the forecaster was built for D={int(expected)} parameters but the model has "
                f"D={spec.numel} trainable parameters; use a forecaster for this model (or a "
                f"model-agnostic one with expected_dim=None)"
            )
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 1):
            raise ValueError(f"total must be a positive integer (planned epochs or steps), got {total!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an integer >= 0 (epochs or steps already done), got {start!r}")
        if total is not None and start >= total:
            raise ValueError(f"start={start} is not before the planned end total={total}")
        if cfg.mode == "far":
            self._far_target(total, start)  # fail early; recomputed from the loaded state
        if cfg.guard is True and eval_fn is None:
            raise ValueError("guard=True needs eval_fn(model) -> float (the loss on held-out batches)")
        if cfg.refresh_bn_batches > 0 and bn_loader is None:
            raise ValueError(f"refresh_bn_batches={cfg.refresh_bn_batches} needs bn_loader= (training batches)")
        self.forecaster = forecaster
        self.model, self.optimizer, self.eval_fn, self.bn_loader, self.total = model, optimizer, eval_fn, bn_loader, total
        every = "epoch" if cfg.unit == "epoch" else cfg.every_n_steps
        self.recorder = WeightRecorder(
            model,
            every=every,
            keep=cfg.n + 1,
            dtype=cfg.snapshot_dtype,
            include_frozen=cfg.include_frozen,
            record_initial=False,
            spec=spec,
        )
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)
        else:
            self._start = start
            if cfg.unit == "epoch":
                self._epochs = max(self._epochs, start)
            else:
                self._steps = max(self._steps, start)
            self.recorder.record(self._counter())
        return self

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
            forecaster = pretrained_forecaster()
        if not callable(getattr(forecaster, "forecast", None)):
            raise TypeError(
                f"forecaster must have a forecast(prefix, m, *, spec=None) method, got {type(forecaster).__name__}"
            )
        return forecaster

    def _far_target(self, total: int | None, start: int) -> int:
        """Far mode's ``m`` in snapshot units, counted from ``w_0`` (taken at ``start``)."""
        cfg = self.config
        if cfg.horizon is not None:
            m = cfg.horizon
        elif total is None:
            raise ValueError(
                "far mode needs the planned run length: attach(..., total=epochs or steps) or horizon=m"
            )
        else:
            m = (total - start) if cfg.unit == "epoch" else (total - start) // cfg.every_n_steps
        if m <= cfg.n:
            raise ValueError(
                f"far mode: the target m={m} (snapshot units) must be larger than n={cfg.n}; the run is too "
                f"short for n+1={cfg.n + 1} observed snapshots before its end"
            )
        return m

    def _counter(self) -> int:
        return self._epochs if self.config.unit == "epoch" else self._steps

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
        self._require_attached()
        new = int(epoch) + 1 if epoch is not None else self._epochs + 1
        if new <= self._epochs:
            logger.debug("epoch %d already seen; ignored", new - 1)
            return None
        self._epochs = new
        if self.config.unit != "epoch":
            return None
        return self._observe(new, loss)

    def on_step_end(self, step: int | None = None, loss: float | None = None) -> JumpRecord | None:
        """Call after each optimizer step: records every ``every_n_steps`` (``unit="step"``) and jumps when due.

        Args:
            step: optimizer steps completed so far (defaults to an internal counter); a
                step already seen is ignored.
            loss: optional training loss stored beside the snapshot.

        Returns:
            The :class:`JumpRecord` of a jump attempt made now, else None.
        """
        self._require_attached()
        new = int(step) if step is not None else self._steps + 1
        if new <= self._steps:
            return None
        self._steps = new
        if self.config.unit != "step" or (new - self._start) % self.config.every_n_steps != 0:
            return None
        return self._observe(new, loss)

    def _finished(self) -> bool:
        cfg = self.config
        if cfg.mode == "far":
            return self._far_done
        return cfg.max_jumps is not None and self._jumps >= cfg.max_jumps

    def _observe(self, step: int, loss: float | None) -> JumpRecord | None:
        if self._finished():
            return None  # no more jumps: stop paying for snapshots
        self.recorder.record(step, loss=loss)
        self._seg += 1
        return self.maybe_jump()

    def due(self) -> bool:
        """Whether a jump is due now (enough fresh snapshots, schedule reached)."""
        if self.recorder is None or self._finished():
            return False
        cfg = self.config
        if len(self.recorder) < cfg.n + 1:
            return False
        if self.total is not None and self._counter() >= self.total:
            return False  # the planned run is over: no training would follow the jump
        if cfg.mode == "far":
            return self._seg >= cfg.n
        if not (self._seg > 0 and self._seg % cfg.periodic_every == 0):
            return False
        if self.total is not None and not cfg.jump_past_end:
            per_snapshot = cfg.every_n_steps if cfg.unit == "step" else 1
            if self._counter() + cfg.periodic_horizon * per_snapshot > self.total:
                return False  # the target lies past the planned end: no time to relax from the jump
        return True

    def maybe_jump(self, force: bool = False) -> JumpRecord | None:
        """Jump if due (or, with ``force``, whenever n+1 snapshots are held); record it in :attr:`history`."""
        self._require_attached()
        if not (self.due() or (force and len(self.recorder) >= self.config.n + 1 and not self._finished())):
            return None
        record = self._jump()
        self.history.append(record)
        return record

    # ------------------------------------------------------------------ the jump
    def _target_m(self) -> int:
        cfg = self.config
        if cfg.mode == "far":
            return self._far_target(self.total, self._start)
        return cfg.n + cfg.periodic_horizon

    def _forecast(self, spec: ParamSpec, m: int, device: torch.device) -> tuple[int, torch.Tensor | None]:
        """Rank 0 forecasts and validates; returns ``(status, (D,) float32 CPU or None)`` on every rank."""
        D = spec.numel
        status = _OK
        out: torch.Tensor | None = None
        if dist.is_main_process():
            prefix = self.recorder.last(self.config.n + 1)
            try:
                with torch.no_grad():
                    raw = self.forecaster.forecast(prefix, m, spec=spec)
            except Exception as exc:  # a forecaster bug must not kill a training run
                status = _FAILED
                logger.warning("GFMJump: the forecaster raised %s: %s; no jump", type(exc).__name__, exc)
            else:
                if not torch.is_tensor(raw):
                    status = _WRONG_SIZE
                else:
                    if raw.dim() == 2 and raw.shape[0] == 1:
                        raw = raw[0]
                    if tuple(raw.shape) != (D,):
                        status = _WRONG_SIZE
                    elif not raw.is_floating_point() or not bool(torch.isfinite(raw).all()):
                        status = _NONFINITE
                    else:
                        out = raw.detach().to("cpu", torch.float32)
                if status == _WRONG_SIZE:
                    shape = tuple(raw.shape) if torch.is_tensor(raw) else type(raw).__name__
                    logger.warning("GFMJump: forecast has shape %s, expected (%d,); no jump", shape, D)
                elif status == _NONFINITE:
                    logger.warning("GFMJump: forecast holds NaN/Inf; no jump")
        if dist.is_distributed():
            flag = torch.tensor([status], dtype=torch.int64)
            dist.broadcast_(flag, device)
            status = int(flag.item())
            if status == _OK:
                if out is None:
                    out = torch.empty(D, dtype=torch.float32)
                dist.broadcast_(out, device)
        return status, out

    def _evaluate(self, model: nn.Module, device: torch.device) -> float:
        was_training = model.training
        try:
            with torch.no_grad():
                value = self.eval_fn(model)
        finally:
            model.train(was_training)
        value = float(value.item()) if torch.is_tensor(value) else float(value)
        return dist.all_reduce_mean(value, device)

    def _refresh_bn(self, model: nn.Module, device: torch.device) -> None:
        refresh_batchnorm(model, self.bn_loader, self.config.refresh_bn_batches)
        if dist.is_distributed():  # ranks saw different batches; keep them identical
            for b in model.buffers():
                dist.broadcast_(b.data, device)

    @torch.no_grad()
    def _jump(self) -> JumpRecord:
        cfg = self.config
        model, spec = self.model, self.recorder.spec
        t0 = time.perf_counter()
        m = self._target_m()
        record = JumpRecord(
            step=self.recorder.steps[-1], epoch=self._epochs, mode=cfg.mode, n=cfg.n, m=m
        )
        params = spec.check_model(model)
        device = dist.comm_device(params[0].device)
        status, forecast = self._forecast(spec, m, device)
        record.forecast_seconds = time.perf_counter() - t0
        if status != _OK:
            record.reason = _REASONS[status]
            record.seconds = time.perf_counter() - t0
            if cfg.mode == "far":
                self._far_done = True
            return record

        t_guard = time.perf_counter()
        guarded = cfg.guard if cfg.guard is not None else self.eval_fn is not None
        w_n = flatten_params(model, spec)
        delta = forecast.sub_(w_n)  # w_hat_m - w_n, in place: one (D,) buffer
        # Exact backup in the parameters' own dtype/device, plus buffers (BatchNorm refresh).
        backup = [p.detach().clone() for p in params]
        buffers = list(model.buffers())
        buffer_backup = [b.detach().clone() for b in buffers]
        was_training = model.training
        if guarded:
            record.loss_before = self._evaluate(model, device)
        accepted_alpha = None
        try:
            for a in cfg.candidate_alphas(guarded):
                record.alphas_tried.append(a)
                assign_params(model, w_n + a * delta, spec)
                if cfg.refresh_bn_batches > 0:
                    self._refresh_bn(model, device)
                if not guarded:
                    accepted_alpha = a
                    break
                after = self._evaluate(model, device)
                record.losses_after.append(after)
                lb = record.loss_before
                if math.isfinite(after) and math.isfinite(lb) and after <= lb + cfg.tolerance * abs(lb):
                    accepted_alpha = a
                    break
        except BaseException:
            # eval_fn or the BatchNorm loader failed mid-jump: never leave the model jumped.
            self._restore(params, backup, buffers, buffer_backup)
            model.train(was_training)
            raise
        if accepted_alpha is None:
            self._restore(params, backup, buffers, buffer_backup)
            record.reason = "rejected: loss rose"
            if record.loss_before is not None and not math.isfinite(record.loss_before):
                record.reason = "rejected: guard loss before the jump is not finite"
            _warn(
                "GFMJump: jump at step %d rejected by the guard (loss %.6g -> %s); weights restored",
                record.step,
                record.loss_before,
                ", ".join(f"{v:.6g}" for v in record.losses_after),
            )
        else:
            record.accepted = True
            record.alpha = accepted_alpha
            record.reason = "accepted" if guarded else "accepted (no guard)"
            record.jump_norm = float(delta.norm()) * accepted_alpha
            self._after_accept(record)
        model.train(was_training)
        record.guard_seconds = time.perf_counter() - t_guard
        record.seconds = time.perf_counter() - t0
        if record.accepted and dist.is_main_process():
            logger.info(
                "GFMJump: %s jump at step %d to m=%d accepted with alpha=%g (loss %s -> %s)",
                cfg.mode, record.step, m, record.alpha, record.loss_before,
                record.losses_after[-1] if record.losses_after else None,
            )
        if cfg.mode == "far":
            self._far_done = True
        return record

    @staticmethod
    @torch.no_grad()
    def _restore(params, backup, buffers, buffer_backup) -> None:
        for p, b in zip(params, backup):
            p.copy_(b)
        for buf, b in zip(buffers, buffer_backup):
            buf.copy_(b)

    def _after_accept(self, record: JumpRecord) -> None:
        self._jumps += 1
        if self.config.optimizer_state == "reset" and self.optimizer is not None:
            # Momentum buffers / Adam moments and step counts describe the old trajectory.
            self.optimizer.state.clear()
        if self.config.mode == "periodic":
            # The next window starts at the jumped weights (same step index).
            self.recorder.clear()
            self.recorder.record(record.step)
            self._seg = 0

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (counters, history, the recorder's snapshots)."""
        if self._pending_state is not None and self.recorder is None:
            return dict(self._pending_state)
        return {
            "format": STATE_FORMAT,
            "version": _STATE_VERSION,
            "config": self.config.to_dict(),
            "epochs": self._epochs,
            "steps": self._steps,
            "seg": self._seg,
            "jumps": self._jumps,
            "far_done": self._far_done,
            "start": self._start,
            "history": [r.to_dict() for r in self.history],
            "recorder": self.recorder.state_dict() if self.recorder is not None else None,
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
        diff = [k for k in _STRUCTURAL if k in saved and saved[k] != mine[k]]
        if diff:
            raise ValueError(
                "GFMJump state was saved with a different schedule: "
                + ", ".join(f"{k}={saved[k]!r} (now {mine[k]!r})" for k in diff)
            )
        other = [k for k in mine if k in saved and k not in _STRUCTURAL and saved[k] != mine[k]]
        if other:
            _warn("GFMJump: resuming with changed options %s (the current values are used)", other)
        if self.recorder is None:
            self._pending_state = state
            return
        if state.get("recorder") is not None:
            self.recorder.load_state_dict(state["recorder"])
        self._epochs = int(state["epochs"])
        self._steps = int(state["steps"])
        self._seg = int(state["seg"])
        self._jumps = int(state["jumps"])
        self._far_done = bool(state["far_done"])
        self._start = int(state.get("start", 0))
        self.history = [JumpRecord.from_dict(r) for r in state.get("history", [])]

    def save_state(self, path: str | os.PathLike, *, all_ranks: bool = False) -> Path:
        """Write :meth:`state_dict` as one safetensors file (atomic), beside a checkpoint.

        Snapshots go in the tensor ``"recorder.weights"`` (``(T, D)``); everything else is
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
        meta = {
            "format": STATE_FORMAT,
            "version": _STATE_VERSION,
            "state": json.dumps({k: v for k, v in state.items() if k not in ("format", "version")}),
        }
        if not tensors:  # safetensors needs no tensors, but keep the file self-describing
            tensors["recorder.weights"] = torch.empty(0, 0)
            meta["no_recorder"] = "1"
        return atomic_save_file(tensors, path, meta)

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore from a file written by :meth:`save_state`."""
        meta, _ = read_header(path)
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
        self.load_state_dict(state)

    # ------------------------------------------------------------------ misc
    @property
    def jumps(self) -> int:
        """Number of accepted jumps so far."""
        return self._jumps

    def __repr__(self) -> str:
        fields_ = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in fields(self.config)[:4])
        return f"GFMJump({fields_}, attached={self.recorder is not None}, jumps={self._jumps})"


def check_adapter_args(eval_fn: Any, eval_batches: Any) -> None:
    """Validate the guard arguments every framework adapter takes.

    Raises:
        ValueError: ``eval_batches`` is not a positive int, or ``eval_fn`` is not callable.
    """
    if isinstance(eval_batches, bool) or not isinstance(eval_batches, int) or eval_batches < 1:
        raise ValueError(f"eval_batches must be a positive int, got {eval_batches!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise ValueError(f"eval_fn must be callable as eval_fn(model) -> float, got {type(eval_fn).__name__}")
