"""Lookahead around the user's base optimizer, from ``pytorch_optimizer``.

``pytorch_optimizer.Lookahead(base, k, alpha)``: every ``k`` base steps the fast weights
``w`` and the slow weights ``phi`` become ``phi <- phi + alpha * (w - phi)`` and
``w <- phi`` (no momentum pull-back: the library's default ``pullback_momentum="none"``).
The lr scheduler drives the base optimizer's param groups (Lookahead shares them).

Evaluation uses the slow weights (the method's output in Zhang et al., "Lookahead
Optimizer: k steps forward, 1 step back", arXiv 1907.08610), through the library's
``backup_and_load_cache`` / ``clear_and_load_backup``; right after a synchronisation they
equal the fast weights. BatchNorm buffers are not part of Lookahead's slow state (the library
interpolates parameters only), so the slow weights are evaluated with the live running statistics.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .base import Method, OptimizerFactory, require_package

__all__ = ["Lookahead"]


class Lookahead(Method):
    """Lookahead (``pytorch_optimizer.Lookahead``) wrapping the base optimizer.

    Args:
        k: base steps between synchronisations (>= 1).
        alpha: slow-weight step size in ``(0, 1]``.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> la = Lookahead(k=2, alpha=0.5).attach(model, lambda p: torch.optim.SGD(p, lr=1.0), total_steps=2)
        >>> w0 = model.weight.item()
        >>> for _ in range(2):
        ...     la.zero_grad(); model.weight.sum().backward(); la.step()  # fast: w0-1, w0-2
        >>> round(model.weight.item() - w0, 6)  # synchronised: w0 + 0.5 * (-2)
        -1.0
    """

    NAME = "lookahead"
    GRID = {"k": (5, 10), "alpha": (0.5, 0.8)}

    def __init__(self, k: int = 5, alpha: float = 0.5) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"lookahead k must be an integer >= 1, got {k!r}")
        if not (isinstance(alpha, (int, float)) and 0.0 < alpha <= 1.0):
            raise ValueError(f"lookahead alpha must be in (0, 1], got {alpha!r}")
        super().__init__(k=k, alpha=float(alpha))

    def _make_optimizer(
        self, model: nn.Module, make_optimizer: OptimizerFactory, total_steps: int, schedule: str, warmup: float
    ) -> torch.optim.Optimizer:
        require_package("pytorch_optimizer", "pytorch-optimizer")
        from pytorch_optimizer import Lookahead as _Lookahead

        self.base = make_optimizer(model.parameters())
        return _Lookahead(self.base, k=self.hparams["k"], alpha=self.hparams["alpha"])

    def _make_scheduler(self, optimizer, schedule, total_steps, warmup):  # type: ignore[override]
        return super()._make_scheduler(self.base, schedule, total_steps, warmup)

    @contextlib.contextmanager
    def _eval_model(self) -> Iterator[nn.Module]:
        self.optimizer.backup_and_load_cache()
        try:
            yield self.model
        finally:
            self.optimizer.clear_and_load_backup()
