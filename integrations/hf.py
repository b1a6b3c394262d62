"""``GFMJump`` as a Hugging Face ``TrainerCallback``: the core, driven by Trainer events.

Usage::

    from gfm_accel.integrations.hf import GFMJump
    jump = GFMJump()        # the shipped forecaster, the recommended schedule (docs/jump.md)
    trainer.add_callback(jump)
    trainer.train()
    jump.history            # list[JumpRecord]; also in trainer.state.log_history

The adapter holds no jump logic: it composes a framework-free
:class:`gfm_accel.jump.GFMJump` (``self.core``) and translates events:

========================  ===============================================================
Trainer event             core call
========================  ===============================================================
``on_train_begin``        on a resumed run ``core.load_state(<checkpoint>/gfm_jump_state.safetensors)``;
                          ``core.attach(model, optimizer, eval_fn=..., total=..., bn_loader=...,
                          lr_scheduler=...)``; ``core.catch_up(epochs done)``
``on_epoch_end``          ``core.use_optimizer(...)``; ``core.on_epoch_end(epoch)``
``on_step_end``           ``core.use_optimizer(...)``; ``core.on_step_end(global_step)``
``on_save``               ``core.save_state(<checkpoint>/gfm_jump_state.safetensors)`` (saving rank only)
``on_train_end``          ``core.on_train_end(steps_per_epoch)`` (the summary line)
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
from gfm_accel.jump.adapter import AdapterBase  # noqa: E402
from gfm_accel.jump.guard import batches_eval_fn, fixed_batches  # noqa: E402
from gfm_accel.jump.rng import keep_global_rng  # noqa: E402

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
    return batches_eval_fn(batches, _model_loss)


def _model_loss(model: torch.nn.Module, batch: Any, index: int) -> torch.Tensor:
    out = model(**batch) if isinstance(batch, Mapping) else model(*batch)
    return _loss_of(out)


class GFMJump(AdapterBase, TrainerCallback):
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
        AdapterBase.__init__(self, forecaster, eval_fn=eval_fn, eval_batches=eval_batches, log_prefix=log_prefix,
                             **config)
        self.eval_dataset = eval_dataset
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self._is_main = True
        self._trainer_ref: Any = None
        self._steps_per_epoch: int | None = None

    # ----------------------------------------------------------------- events
    def on_train_begin(
        self, args, state, control, model=None, optimizer=None, train_dataloader=None, lr_scheduler=None, **kwargs
    ):
        if model is None:
            raise ValueError("GFMJump: the Trainer passed no model to on_train_begin")
        self._is_main = bool(state.is_world_process_zero)
        if self.core.recorder is not None:
            self.core.reset()  # a second trainer.train() with this callback: a new run
        if train_dataloader is not None and hasattr(train_dataloader, "__len__"):
            self._steps_per_epoch = max(len(train_dataloader) // max(args.gradient_accumulation_steps, 1), 1)
        trainer, resume_arg = _find_trainer()
        self._trainer_ref = weakref.ref(trainer) if trainer is not None else None
        eval_fn = self._build_eval_fn(args, trainer, train_dataloader)
        unit = self.core.config.unit
        if unit == "epoch":
            total = int(state.num_train_epochs) if state.num_train_epochs else None
        else:
            total = int(state.max_steps) if state.max_steps and state.max_steps > 0 else None
        state_file = self._find_state_file(args, state, resume_arg) if state.global_step > 0 else None
        if state_file is not None:
            self.core.load_state(state_file)  # applied by attach
            if self._is_main:
                logger.info("GFMJump: resumed jump state from %s", state_file)
        # Epochs / steps already done: w_0's index when there is no saved state to load (a
        # run resumed without it, or the callback added to a resumed run).
        epochs_done = math.floor((state.epoch or 0) + 1e-6)
        self.core.attach(
            model,
            _unwrap_optimizer(optimizer),
            eval_fn=eval_fn,
            total=total,
            bn_loader=train_dataloader,
            start=0 if state_file is not None else epochs_done if unit == "epoch" else int(state.global_step),
            # the Trainer steps its scheduler after every optimizer step
            lr_scheduler=lr_scheduler,
            lr_steps_per_snapshot=self.core.config.every_n_steps if unit == "step" else self._steps_per_epoch,
        )
        # A checkpoint written at the last step of an epoch precedes that epoch's on_epoch_end,
        # which the resumed Trainer does not replay.
        self._log(self.core.catch_up(epochs_done), state, control)
        return control

    def on_epoch_end(self, args, state, control, optimizer=None, **kwargs):
        self._follow_optimizer(optimizer)
        # state.epoch is the (fractional) number of epochs completed: e + 1 at the end of
        # the 0-based epoch e, or e + fraction for the last epoch of a max_steps run.
        epoch = math.ceil(state.epoch - 1e-6) - 1 if state.epoch is not None else None
        self._log(self.core.on_epoch_end(epoch), state, control)
        return control

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        self._follow_optimizer(optimizer)
        self._log(self.core.on_step_end(int(state.global_step)), state, control)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.core.recorder is not None and self._is_main:
            self.core.on_train_end(self._steps_per_epoch)
        return control

    def on_save(self, args, state, control, **kwargs):
        if args.should_save and self.core.recorder is not None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.core.save_state(folder / STATE_FILE)
        return control

    # ---------------------------------------------------------------- helpers
    def _follow_optimizer(self, optimizer: Any) -> None:
        if optimizer is not None and self.core.recorder is not None:
            self.core.use_optimizer(_unwrap_optimizer(optimizer))

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
            with keep_global_rng():
                loader = trainer.get_eval_dataloader(name)
        if loader is None:
            if self.core.config.guard:
                raise ValueError(
                    "GFMJump(guard=True) needs held-out data: give the Trainer an eval_dataset, or pass "
                    "eval_dataset= or eval_fn= to GFMJump"
                )
            return None
        batches = fixed_batches(loader, self.eval_batches)  # leaves the global RNG as it was
        if not batches:
            logger.warning("GFMJump: the eval dataloader is empty; the guard is off")
            return None
        return make_loss_eval_fn(batches)

    def _find_state_file(self, args, state, resume_arg: Any = None) -> Path | None:
        """The jump state of a resumed run: ``resume_from``, the checkpoint given to
        ``trainer.train(resume_from_checkpoint=...)``, ``args.resume_from_checkpoint``, then
        ``<output_dir>/checkpoint-<global_step>``."""
        candidates = []
        if self.resume_from is not None:
            candidates.append(self.resume_from / STATE_FILE)
        for arg in (resume_arg, getattr(args, "resume_from_checkpoint", None)):
            if isinstance(arg, (str, os.PathLike)) and str(arg):
                candidates.append(Path(arg) / STATE_FILE)
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


# -------------------------------------------------------------------- internals
def _unwrap_optimizer(optimizer: Any) -> Any:
    """Accelerate's ``AcceleratedOptimizer`` wraps the torch optimizer as ``.optimizer``."""
    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


def _find_trainer(max_depth: int = 12) -> tuple[Any, Any]:
    """The ``transformers.Trainer`` whose training loop is calling us, and the checkpoint its
    loop was given (``trainer.train(resume_from_checkpoint=...)``, resolved when ``True``).

    The Trainer hands callbacks neither itself nor that path, so both are read from the
    training loop's frame on the call stack; ``(None, None)`` when not found.
    """
    from transformers import Trainer

    frame = inspect.currentframe()
    try:
        for _ in range(max_depth):
            if frame is None:
                return None, None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                return candidate, frame.f_locals.get("resume_from_checkpoint")
            frame = frame.f_back
    finally:
        del frame
    return None, None


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
            "GFMJump guard: the model returned no loss on the held-out batches: give the eval dataset a "
            "'labels' column (or pass GFMJump(eval_fn=...) or GFMJump(guard=False))"
        )
    return loss.detach().float().mean()
