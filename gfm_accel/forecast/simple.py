"""Training-free reference forecasters (the competitors GFM must beat).

Both serve any D (``expected_dim = None``) and follow :class:`~gfm_accel.forecast.base.Forecaster`.
"""

from __future__ import annotations

import torch

from ..params import ParamSpec
from .base import as_batch, check_prefix

__all__ = ["LastValueForecaster", "LinearExtrapolationForecaster"]


class LastValueForecaster:
    """Predict ``w_m = w_n`` (a jump to it is a no-op).

    Example:
        >>> LastValueForecaster().forecast(torch.arange(6.).view(3, 2), m=10)
        tensor([4., 5.])
    """

    expected_dim = None

    def forecast(self, prefix: torch.Tensor, m: int, *, spec: ParamSpec | None = None) -> torch.Tensor:
        batch, unbatched = as_batch(prefix)
        check_prefix(batch, m)
        out = batch[:, -1].clone()
        return out[0] if unbatched else out


class LinearExtrapolationForecaster:
    """Extend the last observed step linearly: ``w_m = w_n + (m - n) (w_n - w_{n-1})``.

    With a single snapshot (n = 0) it returns ``w_0``.

    Example:
        >>> LinearExtrapolationForecaster().forecast(torch.tensor([[0.], [1.]]), m=4)
        tensor([4.])
    """

    expected_dim = None

    def forecast(self, prefix: torch.Tensor, m: int, *, spec: ParamSpec | None = None) -> torch.Tensor:
        batch, unbatched = as_batch(prefix)
        check_prefix(batch, m)
        n = batch.shape[1] - 1
        if n == 0:
            out = batch[:, 0].clone()
        else:
            out = batch[:, -1] + (m - n) * (batch[:, -1] - batch[:, -2])
        return out[0] if unbatched else out
