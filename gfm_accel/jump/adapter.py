"""What every framework adapter shares: the core it drives, the guard arguments, the views.

The Hugging Face and Lightning adapters (``gfm_accel.integrations``) inherit
:class:`AdapterBase` beside their framework's callback class; they only translate events.

Example:
    >>> from gfm_accel.forecast.simple import LinearExtrapolationForecaster
    >>> a = AdapterBase(LinearExtrapolationForecaster(), eval_fn=None, eval_batches=2, log_prefix="gfm/", n=2)
    >>> a.config.n, a.history, a.eval_batches
    (2, [], 2)
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .config import JumpConfig
from .core import GFMJump

__all__ = ["AdapterBase", "check_adapter_args"]


def check_adapter_args(eval_fn: Any, eval_batches: Any) -> None:
    """Validate the guard arguments every framework adapter takes.

    Raises:
        ValueError: ``eval_batches`` is not a positive int, or ``eval_fn`` is not callable.
    """
    if isinstance(eval_batches, bool) or not isinstance(eval_batches, int) or eval_batches < 1:
        raise ValueError(f"eval_batches must be a positive int, got {eval_batches!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise ValueError(f"eval_fn must be callable as eval_fn(model) -> float, got {type(eval_fn).__name__}")


class AdapterBase:
    """The core an adapter drives, its guard arguments, and read-only views of the core.

    Args:
        forecaster: any :class:`~gfm_accel.forecast.base.Forecaster` (None: the shipped one).
        eval_fn: optional ``eval_fn(model) -> float`` guard loss (overrides the framework's data).
        eval_batches: number of held-out batches the guard evaluates (taken once, reused).
        log_prefix: prefix of the metric keys the adapter logs.
        **config: :class:`~gfm_accel.jump.JumpConfig` fields.
    """

    def __init__(
        self,
        forecaster: Any,
        *,
        eval_fn: Callable[[torch.nn.Module], float] | None,
        eval_batches: int,
        log_prefix: str,
        **config: Any,
    ) -> None:
        check_adapter_args(eval_fn, eval_batches)
        self.core = GFMJump(forecaster, **config)
        self.eval_fn = eval_fn
        self.eval_batches = eval_batches
        self.log_prefix = log_prefix

    @property
    def history(self) -> list:
        """The core's list of :class:`~gfm_accel.jump.JumpRecord`, one per jump attempt."""
        return self.core.history

    @property
    def config(self) -> JumpConfig:
        """The core's :class:`~gfm_accel.jump.JumpConfig`."""
        return self.core.config
