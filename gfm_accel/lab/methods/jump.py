"""The jump machinery as a method: the base optimizer and schedule plus a :class:`~gfm_accel.jump.GFMJump`.

Only GFMJump's public API is used: ``attach(model, optimizer, eval_fn=guard_fn,
total=total_steps, bn_loader=bn_batches, lr_scheduler=scheduler)`` (the scheduler only matters
with ``JumpConfig(lr_horizon=True)``), ``on_step_end(step, loss)``, ``history``,
``state_dict``/``load_state_dict``. The guard sees ``guard_fn`` (the workload's guard split),
never the validation split the targets are measured on. The live model is evaluated.

The benchmark's ``gfm``, ``linefit`` and ``wnn`` are this class with a forecaster; a named
variant is a few lines:

Example:
    >>> import torch
    >>> from gfm_accel.forecast.simple import LinearExtrapolationForecaster
    >>> class LineJump(Jump):
    ...     NAME = "line_demo"
    ...     def __init__(self):
    ...         super().__init__(LinearExtrapolationForecaster(),
    ...                          JumpConfig(unit="step", every_n_steps=1, n=2, horizon=2, every=2, jump_past_end=True))
    >>> model = torch.nn.Linear(2, 1)
    >>> m = LineJump().attach(model, lambda p: torch.optim.SGD(p, lr=0.1), total_steps=6,
    ...                       guard_fn=lambda mod: float(mod(torch.ones(4, 2)).pow(2).mean()))
    >>> for _ in range(6):
    ...     m.zero_grad(); model(torch.ones(4, 2)).pow(2).mean().backward(); m.step()
    >>> len(m.jump.history) > 0
    True
"""

from __future__ import annotations

from typing import Any

from ...jump import GFMJump, JumpConfig
from .base import Method

__all__ = ["Jump"]


class Jump(Method):
    """Base optimizer + schedule, with ``GFMJump(forecaster, config=config)`` after every step.

    Args:
        forecaster: any GFMJump forecaster (``forecast(prefix, m, *, spec=None)``); ``None``:
            the shipped GFM forecaster (looked up by GFMJump at attach).
        config: a :class:`~gfm_accel.jump.JumpConfig` with ``unit="step"`` (budgets are in
            optimizer steps).
        name: the method's name in results (``"gfm"``, ``"linefit"``, ``"wnn"``; default
            the class's ``NAME``).

    Attributes:
        jump: the :class:`~gfm_accel.jump.GFMJump` (its ``history`` holds every attempt).
    """

    NAME = "jump"

    def __init__(self, forecaster: Any, config: JumpConfig, name: str | None = None) -> None:
        if not isinstance(config, JumpConfig):
            raise TypeError(f"config must be a JumpConfig, got {type(config).__name__}")
        if config.unit != "step":
            raise ValueError(f'the jump method counts optimizer steps: give JumpConfig(unit="step", ...), got unit={config.unit!r}')
        super().__init__(config=config.to_dict())
        if name is not None:
            self.NAME = name
        self.jump = GFMJump(forecaster, config=config)

    def _setup(self) -> None:
        self.jump.attach(
            self.model, self.optimizer, eval_fn=self.guard_fn, total=self.total_steps, bn_loader=self.bn_batches,
            lr_scheduler=self.scheduler,
        )

    def _after_step(self, loss: float | None) -> None:
        self.jump.on_step_end(self.steps, loss=loss)

    def _extra_state(self) -> dict[str, Any]:
        return {"jump": self.jump.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.jump.load_state_dict(state["jump"])
