"""Outer momentum (``outer_momentum``): carry the last accepted jump's displacement into the next.

Outer-step methods treat what a period of training moved the weights as one big step and
extrapolate it with momentum across periods (Lookahead's slow weights; SNOO, Nesterov
momentum on the displacement every ``k`` steps). :class:`OuterMomentum` does this for
periodic jumps: it keeps ``v``, the displacement ``w_new - w_n`` of the last accepted
jump, and adds ``beta v`` to the next jump's candidates.

Choices (the anchors do not make them for a guarded jump):

* The momentum term is scaled by the guard's back-off, not by ``alpha``: candidate ``a``
  (``a = alpha * b * r``, ``b`` in ``alphas``, ``r`` the ``lr_horizon`` ratio) is
  ``w_n + a (w_hat_m - w_n) + (a / alpha) beta v``. With ``alpha = 1`` and the first
  candidate this is the heavy-ball outer step ``w_n + (w_hat_m - w_n) + beta v``; a guard
  that backs off shrinks the whole step towards ``w_n``, so the smallest candidate stays
  near the weights the guard knows are safe. Scaling by ``alpha`` too would make the
  effective momentum ``alpha * beta``.
* ``v`` is the float32 ``(D,)`` CPU vector of the displacement the accepted candidate
  asked for (before rounding to the parameters' dtype), the same device and dtype as the
  recorder's snapshots and the forecast: it costs one ``(D,)`` float32 of host memory and
  no accelerator memory.
* After a rejected jump (rolled back) or a skipped one (no usable forecast) ``v = 0``:
  momentum describes the last period's outer step, and that period made none; carrying an
  older ``v`` across it would push along a direction the guard has just refused (or one
  two periods old).
* Under ``torch.distributed`` every rank holds the same ``v`` without communication: it is
  computed from the broadcast forecast, the live weights (identical on every rank after a
  DDP step) and the all-reduced guard decision, all identical across ranks.

Example:
    >>> import torch
    >>> mom = OuterMomentum(0.5)
    >>> mom.term(1.0) is None
    True
    >>> mom.accepted(torch.tensor([2.0, -4.0]))
    >>> mom.term(1.0)
    tensor([ 1., -2.])
    >>> mom.rejected(); mom.term(1.0) is None
    True
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["OuterMomentum"]


class OuterMomentum:
    """The velocity ``v`` of periodic jumps and its momentum term ``scale * beta * v``.

    Args:
        beta: the momentum coefficient, ``outer_momentum`` in ``[0, 1)`` (0 = off).

    Attributes:
        velocity: ``(D,)`` float32 CPU, the last accepted jump's displacement, or None (= 0).

    Example:
        >>> import torch
        >>> mom = OuterMomentum(0.9)
        >>> mom.accepted(torch.ones(3)); mom.state_dict()["velocity"].tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, beta: float) -> None:
        self.beta = float(beta)
        self.velocity: torch.Tensor | None = None

    @property
    def enabled(self) -> bool:
        """Whether momentum is on (``beta > 0``)."""
        return self.beta > 0

    def term(self, scale: float) -> torch.Tensor | None:
        """``scale * beta * v``, ``(D,)`` float32, or None when off or ``v = 0``."""
        if not self.enabled or self.velocity is None:
            return None
        return self.velocity * (scale * self.beta)

    def accepted(self, displacement: torch.Tensor) -> None:
        """An accepted jump moved the weights by ``displacement`` (``(D,)``): it becomes ``v``."""
        if self.enabled:
            self.velocity = displacement.detach().to("cpu", torch.float32).clone()

    def rejected(self) -> None:
        """A jump was rejected or skipped (or the window restarted): ``v = 0``."""
        self.velocity = None

    def state_dict(self) -> dict[str, Any]:
        """``{"velocity": (D,) tensor or None}``."""
        return {"velocity": None if self.velocity is None else self.velocity.clone()}

    def load_state_dict(self, state: dict[str, Any], numel: int | None = None) -> None:
        """Restore :meth:`state_dict`.

        Args:
            state: from :meth:`state_dict` (a missing or None ``velocity`` is ``v = 0``).
            numel: the model's ``D``, checked when given.

        Raises:
            ValueError: a velocity that is not a ``(numel,)`` tensor.
        """
        v = state.get("velocity")
        if v is None:
            self.velocity = None
            return
        if not torch.is_tensor(v) or v.dim() != 1 or (numel is not None and v.numel() != numel):
            shape = tuple(v.shape) if torch.is_tensor(v) else type(v).__name__
            raise ValueError(f"GFMJump state: outer-momentum velocity has shape {shape}, expected ({numel},)")
        self.velocity = v.detach().to("cpu", torch.float32).clone()
