"""``GFMJump`` as a Lightning ``Callback``: the core, driven by Lightning hooks.

Usage::

    from gfm_accel.integrations.lightning import GFMJump
    jump = GFMJump()        # the shipped forecaster, the recommended schedule (docs/jump.md)
    trainer = lightning.Trainer(max_epochs=20, callbacks=[jump])
    trainer.fit(module, train_loader, val_loader)
    jump.history            # list[JumpRecord]; also logged as gfm/* metrics

The adapter composes a framework-free :class:`gfm_accel.jump.core.GFMJump` (``self.core``)
and only translates hooks:

===========================  ==============================================================
Lightning hook               core call
===========================  ==============================================================
``on_train_start``           ``core.attach(pl_module, optimizer, eval_fn=..., total=..., bn_loader=...,
                             lr_scheduler=...)``; ``core.catch_up(trainer.current_epoch)``
``on_train_epoch_end``       ``core.use_optimizer(...)``; ``core.on_epoch_end(trainer.current_epoch)``
``on_train_batch_end``       ``core.use_optimizer(...)``; ``core.on_step_end(trainer.global_step)``
``on_train_end``             ``core.on_train_end(steps_per_epoch)`` (the summary line)
``state_dict``               ``core.state_dict()`` (saved in the ``.ckpt`` by Lightning)
``load_state_dict``          ``core.load_state_dict(...)``, applied at the next ``attach``
===========================  ==============================================================

Design choices (see ``docs/integrations.md``):

* **Planned end** (far mode's default target): ``trainer.max_epochs`` for ``unit="epoch"``,
  ``trainer.max_steps`` (or ``trainer.estimated_stepping_batches`` when ``max_steps=-1``)
  for ``unit="step"``.
* **Guard data**: a user ``eval_fn(model) -> float``; else the first ``eval_batches``
  batches of the Trainer's validation dataloader (taken once, at ``on_train_start``, the
  global RNG left alone, and reused, so every jump is judged on the same batches). The
  loss is what ``pl_module.validation_step(batch, batch_idx)`` returns (a tensor, or a dict
  with ``"loss"``); while the guard evaluates, the module is detached from its Trainer
  (the public ``trainer`` setter), so its ``self.log`` calls record nothing and do not
  pollute the epoch's validation metrics. The core calls the guard once at attach: a
  ``validation_step`` that returns nothing is a ``ValueError`` before the first step,
  asking to return the loss (or pass ``eval_fn=``). No validation data: no guard (a WARNING).
* **Resume: snapshots stay in the callback state dict**, i.e. inside Lightning's ``.ckpt``.
  The ``.ckpt`` is Lightning's own ``torch.save`` file that already holds the model and the
  optimizer (Adam: two more vectors of size D); the ``n + 1`` snapshots are of the same
  order, and keeping them inside makes the checkpoint self-contained (nothing to lose when
  a checkpoint is copied). Only tensors and plain values are stored, so it loads with
  ``weights_only=True``. The core's state can also be written to a safetensors file with
  ``jump.core.save_state(path)``.
* **Logs**: each ``JumpRecord`` goes through ``pl_module.log_dict`` (keys ``gfm/...``,
  ``on_epoch=True`` at epoch end, ``on_step=True`` for the step unit) to the Trainer's
  logger; Lightning writes logger output on rank zero only.
* ``trainer.optimizers[0]`` is the optimizer given to the core (one optimizer supported;
  with several, optimizer-state reset applies to the first only, and a warning says so).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Mapping
from typing import Any, Callable

if importlib.util.find_spec("lightning") is None:  # tested in a subprocess (tests/integrations)
    raise ImportError("gfm_accel.integrations.lightning needs Lightning: pip install 'gfm_accel[lightning]'")

import torch  # noqa: E402

from lightning.pytorch.callbacks import Callback  # noqa: E402

from gfm_accel.jump.core import GFMJump as CoreGFMJump  # noqa: E402
from gfm_accel.jump.adapter import AdapterBase  # noqa: E402
from gfm_accel.jump.guard import batches_eval_fn, fixed_batches  # noqa: E402

__all__ = ["GFMJump"]

logger = logging.getLogger(__name__)


class GFMJump(AdapterBase, Callback):
    """Lightning ``Callback`` that records weights and jumps, guarded.

    Args:
        forecaster: any :class:`~gfm_accel.forecast.base.Forecaster`.
        eval_fn: optional ``eval_fn(model) -> float`` guard loss (overrides the val data).
        eval_batches: number of validation batches the guard evaluates.
        log_prefix: prefix of the logged metric names.
        **config: :class:`~gfm_accel.jump.config.JumpConfig` fields (``mode``, ``n``,
            ``horizon``, ``every``, ``unit``, ``every_n_steps``, ``alpha``, ``alphas``,
            ``guard``, ``tolerance``, ``optimizer_state``, ``refresh_bn_batches``, ...).

    Example:
        >>> from gfm_accel.forecast.simple import LinearExtrapolationForecaster
        >>> cb = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2)
        >>> cb.core.config.mode, cb.history
        ('far', [])
        >>> # lightning.Trainer(max_epochs=10, callbacks=[cb]).fit(module, train, val)
    """

    def __init__(
        self,
        forecaster: Any = None,
        *,
        eval_fn: Callable[[torch.nn.Module], float] | None = None,
        eval_batches: int = 4,
        log_prefix: str = "gfm/",
        **config: Any,
    ) -> None:
        AdapterBase.__init__(self, forecaster, eval_fn=eval_fn, eval_batches=eval_batches, log_prefix=log_prefix,
                             **config)
        self._trainer: Any = None

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer, pl_module) -> None:
        self._trainer = trainer
        if self.core.recorder is not None:
            self.core.reset()  # a second fit() with this callback and no checkpoint: a new run
        optimizers = list(trainer.optimizers)
        if len(optimizers) > 1:
            logger.warning("GFMJump: %d optimizers; only the first one's state is managed", len(optimizers))
        unit = self.core.config.unit
        if unit == "epoch":
            total = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        else:
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
            if total is None:
                est = trainer.estimated_stepping_batches
                total = int(est) if est != float("inf") else None
        eval_fn = self.eval_fn if self.eval_fn is not None else self._validation_eval_fn(trainer)
        if self.core.config.guard and eval_fn is None:
            raise ValueError("GFMJump(guard=True) needs validation data (a val dataloader) or eval_fn=")
        # Epochs / steps already done: w_0's index when no saved state is waiting (the
        # callback added to a resumed run); the core ignores it when a state is loaded.
        self.core.attach(
            pl_module,
            optimizers[0] if optimizers else None,
            eval_fn=eval_fn,
            total=total,
            bn_loader=trainer.train_dataloader if self.core.config.refresh_bn_batches > 0 else None,
            start=int(trainer.current_epoch) if unit == "epoch" else int(trainer.global_step),
            **self._lr_schedule(trainer),
        )
        self._log(self.core.catch_up(int(trainer.current_epoch)), pl_module, on_step=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._follow_optimizer(trainer)
        self._log(self.core.on_epoch_end(trainer.current_epoch), pl_module, on_step=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._follow_optimizer(trainer)
        self._log(self.core.on_step_end(trainer.global_step), pl_module, on_step=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.core.recorder is not None and trainer.is_global_zero:
            self.core.on_train_end(_steps_per_epoch(trainer))

    def _lr_schedule(self, trainer) -> dict[str, Any]:
        """The first scheduler of ``configure_optimizers`` and its steps per snapshot (for ``lr_horizon``)."""
        configs = getattr(trainer, "lr_scheduler_configs", None) or []
        if not configs:
            return {}
        cfg, jump = configs[0], self.core.config
        steps_per_epoch = _steps_per_epoch(trainer)
        if cfg.interval == "step":
            per = jump.every_n_steps if jump.unit == "step" else steps_per_epoch
        else:  # stepped once per epoch
            per = 1 if jump.unit == "epoch" else (jump.every_n_steps / steps_per_epoch if steps_per_epoch else None)
        if per is None:
            return {"lr_scheduler": cfg.scheduler}
        return {"lr_scheduler": cfg.scheduler, "lr_steps_per_snapshot": per / max(cfg.frequency, 1)}

    def _follow_optimizer(self, trainer) -> None:
        if self.core.recorder is not None and trainer.optimizers:
            self.core.use_optimizer(trainer.optimizers[0])

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.core.recorder is not None:
            self.core.reset()  # attached already (a reused callback): the next attach loads it
        self.core.load_state_dict(state_dict)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _val_loader(trainer) -> Any:
        loaders = trainer.val_dataloaders
        if loaders is None:
            # Not loaded yet (before the first validation): ask the data source.
            source = getattr(getattr(trainer, "_data_connector", None), "_val_dataloader_source", None)
            if source is not None and source.is_defined():
                loaders = source.dataloader()
        if isinstance(loaders, (list, tuple)):
            loaders = loaders[0] if loaders else None
        elif isinstance(loaders, Mapping):
            loaders = next(iter(loaders.values()), None)
        return loaders

    def _validation_eval_fn(self, trainer) -> Callable[[torch.nn.Module], float] | None:
        """The guard loss over the first ``eval_batches`` validation batches (None: no val data)."""
        loader = self._val_loader(trainer)
        if loader is None:
            return None
        batches = fixed_batches(loader, self.eval_batches)  # leaves the global RNG as it was
        if not batches:
            raise ValueError("GFMJump guard: the validation dataloader yielded no batch")
        return batches_eval_fn(batches, self._validation_loss)

    def _validation_loss(self, model, batch, index: int) -> torch.Tensor:
        """``validation_step``'s returned loss, with its ``self.log`` calls left out of the run's metrics.

        The module is detached from its Trainer while the guard evaluates (the public
        ``trainer`` setter; Lightning's ``log`` then records nothing), so the guard's
        evaluations do not pollute the epoch's validation metrics.
        """
        trainer = self._trainer
        model.trainer = None
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*self\.log\(\)` but the `self\.trainer` reference")
                out = model.validation_step(batch, index)
        finally:
            model.trainer = trainer
        loss = out.get("loss") if isinstance(out, Mapping) else out
        if not torch.is_tensor(loss) and not isinstance(loss, (int, float)):
            raise ValueError(
                "GFMJump guard: validation_step returned no loss; return the loss tensor (or a dict with "
                "'loss') from validation_step, pass eval_fn=, or guard=False"
            )
        return loss

    def _log(self, record, pl_module, *, on_step: bool) -> None:
        if record is None:
            return
        metrics = {k: float(v) for k, v in record.log_dict(self.log_prefix).items()}
        has_logger = bool(getattr(self._trainer, "loggers", None))
        # The values agree across ranks (the core all-reduces the guard loss and broadcasts
        # the decision); sync_dist only averages the per-rank wall times.
        distributed = getattr(self._trainer, "world_size", 1) > 1
        pl_module.log_dict(
            metrics, on_step=on_step, on_epoch=not on_step, prog_bar=False, logger=has_logger, sync_dist=distributed
        )


def _steps_per_epoch(trainer) -> int | None:
    """Optimizer steps per epoch (None when the loader has no length)."""
    batches = trainer.num_training_batches
    if batches is None or batches == float("inf"):
        return None
    return max(int(batches) // trainer.accumulate_grad_batches, 1)
