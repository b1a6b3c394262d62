"""An outer Nesterov step on the displacement every ``k`` inner steps (SNOO / DiLoCo-style).

The base optimizer (with its schedule) takes the inner steps. Every ``k`` steps, with
``phi`` the anchor (the weights at the previous outer step), ``w`` the live weights and
``b`` the outer momentum buffer (zero at the start):

    d   = w - phi                       (the displacement of the last k steps)
    b   = mu * b + d
    phi = phi + eta * (d + mu * b)      (Nesterov: the step looks ahead along b)
    w   = phi

This is torch's SGD with ``nesterov=True`` applied to the "outer gradient" ``-d``
(DiLoCo, Douillard et al., arXiv 2311.08105; on one worker, SNOO, Kallusky et al.,
arXiv 2510.15830). ``eta = 1, mu = 0`` is the base optimizer unchanged. The inner optimizer's
state (momenta, Adam moments) is kept across outer steps. The live weights are evaluated.
Only the optimizer's parameters take outer steps; buffers (BatchNorm statistics) follow the
live model.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Method

__all__ = ["OuterNesterov"]


class OuterNesterov(Method):
    """Outer Nesterov momentum on the ``k``-step displacement of the base optimizer.

    Args:
        k: inner steps per outer step (>= 1).
        outer_lr: the outer step size ``eta`` (> 0).
        momentum: the outer momentum ``mu`` in ``[0, 1)``.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> on = OuterNesterov(k=2, outer_lr=1.0, momentum=0.5).attach(
        ...     model, lambda p: torch.optim.SGD(p, lr=1.0), total_steps=2)
        >>> w0 = model.weight.item()
        >>> for _ in range(2):
        ...     on.zero_grad(); model.weight.sum().backward(); on.step()  # d = -2
        >>> round(model.weight.item() - w0, 6)  # b = -2; phi = w0 + (-2 + 0.5 * -2)
        -3.0
    """

    NAME = "outer_nesterov"
    GRID = {"k": (5, 20), "outer_lr": (0.5, 1.0), "momentum": (0.5, 0.9)}

    def __init__(self, k: int = 10, outer_lr: float = 0.7, momentum: float = 0.5) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"outer_nesterov k must be an integer >= 1, got {k!r}")
        if not (isinstance(outer_lr, (int, float)) and outer_lr > 0):
            raise ValueError(f"outer_nesterov outer_lr must be > 0, got {outer_lr!r}")
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
            raise ValueError(f"outer_nesterov momentum must be in [0, 1), got {momentum!r}")
        super().__init__(k=k, outer_lr=float(outer_lr), momentum=float(momentum))

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _setup(self) -> None:
        with torch.no_grad():
            self.anchor = [p.detach().clone() for p in self._params()]
            self.buffer = [torch.zeros_like(p) for p in self._params()]

    @torch.no_grad()
    def _after_step(self, loss: float | None) -> None:
        if self.steps % self.hparams["k"] != 0:
            return
        eta, mu = self.hparams["outer_lr"], self.hparams["momentum"]
        for p, phi, b in zip(self._params(), self.anchor, self.buffer):
            d = p - phi
            b.mul_(mu).add_(d)
            phi.add_(d.add_(b, alpha=mu), alpha=eta)
            p.copy_(phi)

    def _extra_state(self) -> dict[str, Any]:
        return {"anchor": [a.clone() for a in self.anchor], "buffer": [b.clone() for b in self.buffer]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if len(state["anchor"]) != len(self.anchor) or len(state["buffer"]) != len(self.buffer):
            raise ValueError(
                f"outer_nesterov state holds {len(state['anchor'])} tensors, the optimizer {len(self.anchor)}"
            )
        with torch.no_grad():
            for dst, src in zip(self.anchor + self.buffer, state["anchor"] + state["buffer"]):
                dst.copy_(src)
