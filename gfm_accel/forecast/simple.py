"""Training-free reference forecasters (the competitors GFM must beat).

All serve any D (``expected_dim = None``) and follow :class:`~gfm_accel.forecast.base.Forecaster`;
they share the input handling (:class:`_TrainingFree`) and differ only in how they extend a
``(B, n+1, D)`` window to ``w_m``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..params import ParamSpec
from .base import as_batch, check_prefix

__all__ = ["LastValueForecaster", "LinearExtrapolationForecaster", "LineFitForecaster", "line_through"]


class _TrainingFree:
    """Batching and checks shared by the training-free forecasters; subclasses define :meth:`_extend`."""

    expected_dim = None

    def forecast(self, prefix: torch.Tensor, m: int, *, spec: ParamSpec | None = None) -> torch.Tensor:
        batch, unbatched = as_batch(prefix)
        check_prefix(batch, m)
        n = batch.shape[1] - 1
        out = batch[:, 0].clone() if n == 0 else self._extend(batch, n, m)
        return out[0] if unbatched else out

    def _extend(self, batch: torch.Tensor, n: int, m: int) -> torch.Tensor:  # (B, n+1, D) -> (B, D), n >= 1
        raise NotImplementedError


class LastValueForecaster(_TrainingFree):
    """Predict ``w_m = w_n`` (a jump to it is a no-op).

    Example:
        >>> LastValueForecaster().forecast(torch.arange(6.).view(3, 2), m=10)
        tensor([4., 5.])
    """

    def _extend(self, batch: torch.Tensor, n: int, m: int) -> torch.Tensor:
        return batch[:, -1].clone()


class LinearExtrapolationForecaster(_TrainingFree):
    """Extend the last observed step linearly: ``w_m = w_n + (m - n) (w_n - w_{n-1})``.

    With a single snapshot (n = 0) it returns ``w_0``.

    Example:
        >>> LinearExtrapolationForecaster().forecast(torch.tensor([[0.], [1.]]), m=4)
        tensor([4.])
    """

    def _extend(self, batch: torch.Tensor, n: int, m: int) -> torch.Tensor:
        return batch[:, -1] + (m - n) * (batch[:, -1] - batch[:, -2])


class LineFitForecaster(_TrainingFree):
    """Fit a least-squares line through all of ``w_0 .. w_n`` (per coordinate) and extend it to ``m``.

    ``w_hat_m = a + b m`` with ``(a, b)`` the ordinary least-squares fit of ``w_j`` on
    ``j = 0 .. n``. Unlike :class:`LinearExtrapolationForecaster`, which multiplies the last
    (noisy) step by ``m - n``, the slope here averages over the whole window, and the start
    point is the fitted value at ``n`` rather than the noisy ``w_n``. It is the strongest
    training-free competitor of the acceleration benchmark
    (``docs/acceleration.md``). With one snapshot (n = 0) it returns ``w_0``.

    Example:
        >>> LineFitForecaster().forecast(torch.tensor([[0.0], [1.2], [1.8], [3.0]]), m=6)
        tensor([5.8200])
    """

    def _extend(self, batch: torch.Tensor, n: int, m: int) -> torch.Tensor:
        return line_through(batch, torch.full((batch.shape[0],), float(m)))


def line_through(prefix: Tensor, m: Tensor, *, fitted: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Least-squares line through a ``(B, n+1, C)`` prefix, per coordinate, evaluated at ``m``.

    Args:
        prefix: ``(B, n+1, C)``; with one snapshot the line is flat at ``x_0`` (as
            :class:`LineFitForecaster`).
        m: ``(B,)`` where to evaluate it (any float; ``m > n`` extrapolates).
        fitted: also return its values at ``j = 0..n`` (``(B, n+1, C)``; ``n+1`` times the
            memory of the result, so off for the live forecast).

    Returns:
        ``(B, C)`` the line at ``m``, or ``(fitted values, line at m)`` when ``fitted``.

    Example:
        >>> round(line_through(torch.tensor([[[0.0], [1.2], [1.8], [3.0]]]), torch.tensor([6.0])).item(), 4)
        5.82
    """
    n1 = prefix.shape[1]
    mean = prefix.mean(dim=1)  # (B, C)
    j = torch.arange(n1, dtype=prefix.dtype, device=prefix.device)
    jc = j - j.mean()
    if n1 == 1:
        slope = torch.zeros_like(mean)
    else:
        slope = torch.einsum("t,btc->bc", jc, prefix - mean[:, None]) / jc.pow(2).sum()
    at_m = mean + slope * (m.to(device=prefix.device, dtype=prefix.dtype) - j.mean()).unsqueeze(-1)
    if not fitted:
        return at_m
    return mean[:, None] + slope[:, None] * jc[None, :, None], at_m
