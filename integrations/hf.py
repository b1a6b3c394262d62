"""``GFMJump`` as a Hugging Face ``TrainerCallback``: the core, driven by Trainer events.

Usage::

    from gfm_accel.integrations.hf import GFMJump
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=4)
    trainer.add_callback(jump)
    trainer.train()
    jump.history            # list[JumpRecord]; also in trainer.state.log_history

The adapter holds no jump logic: it composes a framework-free
:class:`gfm_accel.jump.GFMJump` (``self.core``) and translates events:

========================  ===============================================================
Trainer event             core call
========================  ===============================================================
``on_train_begin``        ``core.attach(model, optimizer, eval_fn=..., total=..., bn_loader=...)``;
                          on a resumed run, then ``core.load_state(<checkpoint>/gfm_jump_state.safetensors)``
``on_epoch_end``          ``core.on_epoch_end(epoch)`` (``unit="epoch"``)
``on_step_end``           ``core.on_step_end(global_step)`` (``unit="step"``)
``on_save``               ``core.save_state(<checkpoint>/gfm_jump_state.safetensors)`` (saving rank only)
========================  ===============================================================

Design choices (see ``docs/integrations.md``):

* **Planned end of the run** (far mode's default target): ``state.num_train_epochs`` for
  ``unit="epoch"`` (the Trainer derives it from ``max_steps`` when that is set; a final
  partial epoch counts as one), ``state.max_steps`` for ``unit="step"``.
* **Guard data.** The Trainer does not hand callbacks a reference to itself nor its eval
  dataset. In order: a user ``eval_fn(model) -> float``; an ``eval_dataset`` given to this
  callback (collated with the Trainer's train collator); the Trainer's own eval dataset,
  through ``trainer.get_eval_dataloader()`` (the Trainer is found on the call stack of
  ``on_train_begin``: the frame whose ``self`` is a ``transformers.Trainer``). The first
  ``eval_batches`` batches are taken once and reused for every guard evaluation, so the
  before/after losses of every jump are measured on the same data. The loss is the
  model's own ``loss`` output (the batches must carry ``labels``). Without any of these,
  the guard is off (the core's default: on when an ``eval_fn`` exists).
* **Resume** uses ``on_save`` (not ``ExportableState``): the Trainer rebuilds an
  ``ExportableState`` callback from JSON ``args`` (``type(cb)(**args)``) when
  ``restore_callback_states_from_checkpoint=True``, which cannot carry a forecaster object
  and would silently replace the user's callback. Instead, the full core state (recorder
  snapshots, schedule counters, history) goes to one safetensors file inside the checkpoint
  folder, written by the saving process; ``on_train_begin`` of a resumed run (``global_step
  > 0``) reads it from ``<output_dir>/checkpoint-<global_step>`` or from ``resume_from``.
* **Logs.** Each ``JumpRecord`` goes through ``Trainer.log`` (numbers, keys ``gfm/...``; NaN
  left out), so it lands in ``state.log_history``, the saved ``trainer_state.json`` and every
  ``on_log`` reporter; the ``control`` flags are restored afterwards so that the Trainer's own
  log at that step still happens. Like ``Trainer.log``, this runs on every rank; the
  ``logging`` line is written on rank zero only.
* The optimizer handed to callbacks is Accelerate's ``AcceleratedOptimizer``; the core gets
  the torch optimizer inside it, so a rollback/reset acts on the real state.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import logging
import math
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

if importlib.util.find_spec("transformers") is None:  # tested in a subprocess (tests/integrations)
    raise ImportError(
        "gfm_accel.integrations.hf needs the Hugging Face transformers package: "
        "pip install 'gfm_accel[hf]'"
    )

import torch  # noqa: E402

from transformers import TrainerCallback  # noqa: E402

from gfm_accel.jump.core import GFMJump as CoreGFMJump  # noqa: E402
from gfm_accel.jump.core import check_adapter_args  # noqa: E402

__all__ = ["GFMJump", "STATE_FILE", "make_loss_eval_fn"]

logger = logging.getLogger(__name__)

#: Name of the sidecar file written into each checkpoint folder.
STATE_FILE = "gfm_jump_state.safetensors"


def make_loss_eval_fn(batches: list[Any]) -> Callable[[torch.nn.Module], float]:
    """Build ``eval_fn(model) -> float``: the mean of the model's ``loss`` output over fixed batches.

    Args:
        batches: a list of batches (dicts of tensors passed as keyword arguments, or
            tuples/lists passed positionally), already on the model's device or movable to it.

    Returns:
        A function evaluating the model in eval mode under ``torch.no_grad()`` and restoring
        its train/eval mode.

    Raises:
        ValueError: ``batches`` is empty.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> class WithLoss(torch.nn.Module):
        ...     def __init__(self): super().__init__(); self.net = net
        ...     def forward(self, x, labels): return {"loss": (self.net(x) - labels).pow(2).mean()}
        >>> fn = make_loss_eval_fn([{"x": torch.zeros(4, 2), "labels": torch.zeros(4, 1)}])
        >>> isinstance(fn(WithLoss()), float)
        True
    """
    if not batches:
        raise ValueError("the guard needs at least one held-out batch, got none")

    @torch.no_grad()
    def eval_fn(model: torch.nn.Module) -> float:
        was_training = model.training
        device = _model_device(model)
        model.eval()
        try:
            total = 0.0
            for batch in batches:
                batch = _to_device(batch, device)
                out = model(**batch) if isinstance(batch, Mapping) else model(*batch)
                total += float(_loss_of(out))
            return total / len(batches)
        finally:
            model.train(was_training)

    return eval_fn


class GFMJump(TrainerCallback):
    """Hugging Face ``TrainerCallback`` that records weights and jumps, guarded.

    Args:
        forecaster: any :class:`~gfm_accel.forecast.base.Forecaster`.
        eval_fn: optional ``eval_fn(model) -> float`` guard loss (overrides the eval data).
        eval_dataset: optional held-out dataset for the guard (default: the Trainer's).
        eval_batches: number of held-out batches the guard evaluates (taken once, reused).
        resume_from: checkpoint folder to load the jump state from on a resumed run,
            when it is not ``<output_dir>/checkpoint-<global_step>``.
        log_prefix: prefix of the keys written to ``state.log_history``.
        **config: :class:`~gfm_accel.jump.JumpConfig` fields (``mode``, ``n``, ``horizon``,
            ``every``, ``unit``, ``every_n_steps``, ``alpha``, ``alphas``, ``guard``,
            ``tolerance``, ``optimizer_state``, ``refresh_bn_batches``, ...).

    Example:
        >>> from gfm_accel.forecast.simple import LinearExtrapolationForecaster
        >>> cb = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2)
        >>> cb.core.config.n, cb.history
        (2, [])
        >>> # trainer.add_callback(cb); trainer.train()
    """

    def __init__(
        self,
        forecaster: Any = None,
        *,
        eval_fn: Callable[[torch.nn.Module], float] | None = None,
        eval_dataset: Any = None,
        eval_batches: int = 4,
        resume_from: str | os.PathLike | None = None,
        log_prefix: str = "gfm/",
        **config: Any,
    ) -> None:
        check_adapter_args(eval_fn, eval_batches)
        self.core = CoreGFMJump(forecaster, **config)
        self.eval_fn = eval_fn
        self.eval_dataset = eval_dataset
        self.eval_batches = eval_batches
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self.log_prefix = log_prefix
        self._is_main = True
        self._trainer_ref: Any = None

    # ------------------------------------------------------------------ views
    @property
    def history(self) -> list:
        """The core's list of :class:`~gfm_accel.jump.JumpRecord`, one per jump attempt."""
        return self.core.history

    @property
    def config(self):
        """The core's :class:`~gfm_accel.jump.JumpConfig`."""
        return self.core.config

    # ----------------------------------------------------------------- events
    def on_train_begin(self, args, state, control, model=None, optimizer=None, train_dataloader=None, **kwargs):
        if model is None:
            raise ValueError("GFMJump: the Trainer passed no model to on_train_begin")
        self._is_main = bool(state.is_world_process_zero)
        if not isinstance(self.core, CoreGFMJump) or self.core.recorder is not None:
            # A second ``trainer.train()`` with this callback: start from a clean core (a
            # resumed run then reloads its state below).
            self.core = CoreGFMJump(self.core.forecaster, config=self.core.config)
        trainer = _find_trainer()
        self._trainer_ref = weakref.ref(trainer) if trainer is not None else None
        eval_fn = self._build_eval_fn(args, trainer, train_dataloader)
        unit = self.core.config.unit
        if unit == "epoch":
            total = int(state.num_train_epochs) if state.num_train_epochs else None
        else:
            total = int(state.max_steps) if state.max_steps and state.max_steps > 0 else None
        state_file = self._find_state_file(args, state) if state.global_step > 0 else None
        # Epochs / steps already done: w_0's index when there is no saved state to load (a
        # run resumed without it, or the callback added to a resumed run).
        start = math.floor((state.epoch or 0) + 1e-6) if unit == "epoch" else int(state.global_step)
        if state_file is None and start > 0:
            if self._is_main:
                logger.warning(
                    "GFMJump: resuming at step %d without a saved jump state (%s); observation restarts here",
                    state.global_step,
                    STATE_FILE,
                )
            if not _room_for_a_jump(self.core.config, total, start):
                if self._is_main:
                    logger.warning("GFMJump: too little of the resumed run is left for a jump; none will be made")
                self.core = _Disabled(self.core)
                return control
        self.core.attach(
            model,
            _unwrap_optimizer(optimizer),
            eval_fn=eval_fn,
            total=total,
            bn_loader=train_dataloader,
            start=start if state_file is None else 0,
        )
        if state_file is not None:
            self.core.load_state(state_file)
            if self._is_main:
                logger.info("GFMJump: resumed jump state from %s", state_file)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.core.config.unit == "epoch":
            # state.epoch is the (fractional) number of epochs completed: e + 1 at the end of
            # the 0-based epoch e, or e + fraction for the last epoch of a max_steps run.
            epoch = math.ceil(state.epoch - 1e-6) - 1 if state.epoch is not None else None
            self._log(self.core.on_epoch_end(epoch), state, control)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.core.config.unit == "step":
            self._log(self.core.on_step_end(int(state.global_step)), state, control)
        return control

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.core.save_state(folder / STATE_FILE)
        return control

    # ---------------------------------------------------------------- helpers
    def _build_eval_fn(self, args, trainer, train_dataloader) -> Callable[[torch.nn.Module], float] | None:
        if self.eval_fn is not None:
            return self.eval_fn
        loader = None
        if self.eval_dataset is not None:
            collate = getattr(train_dataloader, "collate_fn", None)
            loader = torch.utils.data.DataLoader(
                self.eval_dataset, batch_size=args.per_device_eval_batch_size, shuffle=False, collate_fn=collate
            )
        elif trainer is not None and getattr(trainer, "eval_dataset", None) is not None:
            eval_ds = trainer.eval_dataset
            name = next(iter(eval_ds)) if isinstance(eval_ds, dict) else None
            loader = trainer.get_eval_dataloader(name)
        if loader is None:
            if self.core.config.guard:
                raise ValueError(
                    "GFMJump(guard=True) needs held-out data: give the Trainer an eval_dataset, or pass "
                    "eval_dataset= or eval_fn= to GFMJump"
                )
            return None
        batches = list(itertools.islice(iter(loader), self.eval_batches))
        if not batches:
            logger.warning("GFMJump: the eval dataloader is empty; the guard is off")
            return None
        return make_loss_eval_fn(batches)

    def _find_state_file(self, args, state) -> Path | None:
        """The jump state of a resumed run: ``resume_from``, ``args.resume_from_checkpoint``,
        then ``<output_dir>/checkpoint-<global_step>``."""
        candidates = []
        if self.resume_from is not None:
            candidates.append(self.resume_from / STATE_FILE)
        resume_arg = getattr(args, "resume_from_checkpoint", None)
        if isinstance(resume_arg, str) and resume_arg:
            candidates.append(Path(resume_arg) / STATE_FILE)
        candidates.append(Path(args.output_dir) / f"checkpoint-{state.global_step}" / STATE_FILE)
        return next((p for p in candidates if p.is_file()), None)

    def _log(self, record, state, control) -> None:
        if record is None:
            return
        # NaN (e.g. no guard loss) is left out: trainer_state.json stays strict JSON.
        entry: dict[str, Any] = {k: v for k, v in record.log_dict(self.log_prefix).items() if not math.isnan(v)}
        trainer = self._trainer_ref() if self._trainer_ref is not None else None
        if trainer is not None and trainer.state is state:
            # Trainer.log appends to log_history (adding epoch and step) and calls on_log, so
            # reporters (TensorBoard, W&B, ...) see the jump too. Its handler clears
            # control.should_log; restore the flags so the Trainer's own log at this step
            # still happens.
            flags = (control.should_log, control.should_evaluate, control.should_save)
            trainer.log(entry)
            control.should_log, control.should_evaluate, control.should_save = flags
        else:
            entry["epoch"] = state.epoch
            entry["step"] = state.global_step
            state.log_history.append(entry)
        if self._is_main:
            logger.info(
                "GFMJump at step %s: %s (alpha=%s, loss %s -> %s, %.3f s)",
                record.step,
                record.reason,
                record.alpha,
                record.loss_before,
                record.losses_after[-1] if record.losses_after else None,
                record.seconds,
            )


# -------------------------------------------------------------------- internals
def _room_for_a_jump(config: Any, total: int | None, start: int) -> bool:
    """Whether n+1 fresh snapshots from ``start`` still fit before the planned end."""
    if total is None:
        return True
    left = total - start
    if config.unit == "step":
        left //= config.every_n_steps
    return left > config.n


class _Disabled:
    """Stands in for a core that cannot jump in this run: events are no-ops, history kept."""

    def __init__(self, core: Any) -> None:
        self.config = core.config
        self.forecaster = core.forecaster
        self.history = core.history
        self.recorder = None

    def on_epoch_end(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        return None

    def save_state(self, path: Any) -> None:
        return None


def _unwrap_optimizer(optimizer: Any) -> Any:
    """Accelerate's ``AcceleratedOptimizer`` wraps the torch optimizer as ``.optimizer``."""
    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


def _find_trainer(max_depth: int = 12) -> Any:
    """The ``transformers.Trainer`` whose training loop is calling us, or None."""
    from transformers import Trainer

    frame = inspect.currentframe()
    try:
        for _ in range(max_depth):
            if frame is None:
                return None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                return candidate
            frame = frame.f_back
    finally:
        del frame
    return None


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in itertools.chain(model.parameters(), model.buffers()):
        return p.device
    return torch.device("cpu")


def _to_device(obj: Any, device: torch.device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _loss_of(out: Any) -> torch.Tensor:
    loss = None
    if isinstance(out, Mapping):
        loss = out.get("loss")
    elif isinstance(out, (tuple, list)) and out:
        loss = out[0]
    elif torch.is_tensor(out):
        loss = out
    if loss is None:
        raise ValueError(
            "GFMJump guard: the model returned no loss on the held-out batches; they need 'labels' "
            "(or pass eval_fn=)"
        )
    return loss.detach().float().mean()
