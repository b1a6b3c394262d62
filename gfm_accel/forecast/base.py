"""The forecaster contract every consumer (GFMJump, benchmarks, CLI) relies on.

Index convention (the paper's): a prefix holds snapshots ``w_0 .. w_n`` taken at equal
intervals (epochs, or every k steps); ``m > n`` is the index of the snapshot to forecast
in the same units. For a sliding window the caller re-indexes the window so that its
first snapshot is ``w_0``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..params import ParamSpec

__all__ = ["Forecaster", "as_batch", "check_prefix", "check_lr_profile"]


@runtime_checkable
class Forecaster(Protocol):
    """Anything with ``forecast(prefix, m, spec=None)``.

    ``expected_dim`` is the D the forecaster was built for, or ``None`` when it is
    model-agnostic (it serves any D). A forecaster that reads a learning-rate profile also
    has ``schedule_aware = True`` and takes ``forecast(..., lr_profile=...)`` (the layout of
    :func:`check_lr_profile`); ``GFMJump(lr_profile=True)`` requires both.
    """

    expected_dim: int | None

    def forecast(self, prefix: torch.Tensor, m: int, *, spec: ParamSpec | None = None) -> torch.Tensor:
        """Forecast ``w_m``.

        Args:
            prefix: ``(n+1, D)`` or ``(B, n+1, D)`` observed snapshots ``w_0..w_n``.
            m: index of the target snapshot, ``m > n``.
            spec: parameter layout of D (per-tensor statistics, layer kinds); optional.

        Returns:
            ``(D,)`` or ``(B, D)``, matching the prefix's batching.
        """
        ...


def as_batch(prefix: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Return ``(prefix as (B, n+1, D) float32, was_unbatched)``."""
    if not torch.is_tensor(prefix):
        raise TypeError(f"prefix must be a tensor, got {type(prefix).__name__}")
    if prefix.dim() == 2:
        return prefix.unsqueeze(0).float(), True
    if prefix.dim() == 3:
        return prefix.float(), False
    raise ValueError(f"prefix must have shape (n+1, D) or (B, n+1, D), got {tuple(prefix.shape)}")


def check_prefix(prefix: torch.Tensor, m: int, expected_dim: int | None = None) -> None:
    """Validate a batched ``(B, n+1, D)`` prefix against ``m`` and an expected D."""
    n = prefix.shape[1] - 1
    if m <= n:
        raise ValueError(f"m={m} must be larger than n={n} (the prefix holds w_0..w_{n})")
    if expected_dim is not None and prefix.shape[-1] != expected_dim:
        raise ValueError(
            f"this forecaster was trained for D={expected_dim} parameters, but the prefix has D={prefix.shape[-1]}"
        )
    # Checked in chunks: a full isfinite() mask of a (5, 10M) prefix costs ~335 MB.
    flat = prefix.reshape(-1)
    step = 1 << 20
    for a in range(0, flat.numel(), step):
        if not bool(torch.isfinite(flat[a : a + step]).all()):
            raise ValueError("prefix holds NaN/Inf values")


def check_lr_profile(lr_profile: torch.Tensor, m: int, batch: int) -> torch.Tensor:
    """Validate a learning-rate profile and return it as ``(B, m+1)`` float64 (CPU).

    Args:
        lr_profile: ``(m+1,)`` or ``(B, m+1)``: entry ``t`` is the summed base learning rate
            (optimizer group 0) over the optimizer steps between snapshots ``t - 1`` and
            ``t`` of the window frame (entry 0 is unused; ``1..n`` the window, ``n+1..m``
            the horizon), the layout of a trajectory file's ``"lr_sum"``.
        m: the target index; batch: B.

    Raises:
        ValueError: a wrong shape (the message names the expected one), or negative /
            non-finite entries.

    Example:
        >>> check_lr_profile(torch.ones(4), 3, 2).shape
        torch.Size([2, 4])
    """
    p = torch.as_tensor(lr_profile).detach().cpu().double()
    given = tuple(p.shape)
    if p.dim() == 1:
        p = p.unsqueeze(0).expand(batch, -1)
    if p.dim() != 2 or p.shape[0] != batch or p.shape[1] != m + 1:
        raise ValueError(f"lr_profile must have shape (m+1,) or (B, m+1) = ({m + 1},) or ({batch}, {m + 1}): "
                         f"one summed learning rate per snapshot interval of the window frame; "
                         f"got {given}")
    body = p[:, 1:]
    if not bool(torch.isfinite(body).all()) or bool((body < 0).any()):
        raise ValueError("lr_profile must hold finite, non-negative summed learning rates")
    return p
