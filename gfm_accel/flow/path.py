"""Probability paths over a weight trajectory: time reparameterization, Eq. 5, Algorithm 1.

Index conventions (the paper's, Sec. 4.1): a trajectory holds snapshots ``w_0 .. w_m``
at equal intervals; snapshot ``i`` sits at time ``t = i / m``. The observed prefix is
``w_0 .. w_n`` (``n < m``), so the observed region is ``t in [0, n/m]`` and the
forecast region is ``t in [n/m, 1]``. ``t_n = n / m`` is where inference starts.

Two paths are offered (``path=``), because Algorithm 1 is internally inconsistent:

* ``"paper"`` (default): Algorithm 1, lines 2-4, literally.

  - inside the prefix (``Z = 1(t < n/m) = 1``): ``w(t)`` is the linear interpolation of
    Eq. 5, ``w(t) = (1 - omega) w_k + omega w_{k+1}`` with ``k = floor(t m)`` and
    ``omega = t m - k``; the target is the one-step difference ``w_{k+1} - w_k``
    (a displacement per *step*, i.e. a velocity per unit of t divided by m);
  - beyond it (``Z = 0``): ``w(t) = t w_m + (1 - t) w_0`` (the straight line from ``w_0``
    to ``w_m``) with target ``w_m - w_n``.

  The two regions therefore use different time scales (per step vs per unit t), the
  beyond-prefix path does not pass through ``w_n`` although inference starts there, and
  the target ``w_m - w_n`` is not the velocity of that path (``w_m - w_0``). Integrating a
  perfectly fitted target from ``t_n`` to 1 gives ``w_n + (1 - t_n)(w_m - w_n)``, which
  undershoots ``w_m`` by ``t_n (w_m - w_n)`` (2 % at n=4, m=199); the midpoint
  consistency term (``zeta``) compensates for this in training.
* ``"from_last"``: a consistent variant. Inside the prefix the points are the same, but the
  target is a velocity per unit t, ``m (w_{k+1} - w_k)``. Beyond the prefix the path is
  the straight line from ``w_n`` at ``t_n`` to ``w_m`` at 1,
  ``w(t) = w_n + (t - t_n) / (1 - t_n) (w_m - w_n)``, with velocity
  ``(w_m - w_n) / (1 - t_n)``; integrating it exactly from ``w_n`` lands on ``w_m``.

``m`` may be a Python int or a ``(B,)`` integer tensor (per-sample horizons); ``n`` is fixed
by the prefix shape ``(B, n+1, D)``.

Example:
    >>> prefix = torch.tensor([[[0.0], [1.0], [3.0]]])      # (B=1, n+1=3, D=1)
    >>> s = sample_path(prefix, torch.tensor([[10.0]]), m=4, t=torch.tensor([0.375]))
    >>> s.z.item(), s.w_t.item(), s.target.item()            # k=1, omega=0.5
    (1.0, 2.0, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["PATHS", "PathSample", "time_of", "interpolate", "sample_path", "midpoint_forecast"]

#: Accepted values of ``path=``.
PATHS: tuple[str, ...] = ("paper", "from_last")

Field = Callable[[Tensor, Tensor], Tensor]


def time_of(i: int | float | Tensor, m: int | Tensor) -> float | Tensor:
    """Reparameterized time of snapshot ``i``: ``t = i / m`` (Sec. 4.1).

    Args:
        i: snapshot index (scalar or tensor).
        m: horizon, the index of the last snapshot (scalar or tensor broadcastable with i).

    Returns:
        A float when both are Python numbers, else a float tensor.

    Example:
        >>> time_of(4, 199) == 4 / 199
        True
    """
    if torch.is_tensor(i) or torch.is_tensor(m):
        return torch.as_tensor(i, dtype=torch.float32) / torch.as_tensor(m, dtype=torch.float32)
    if m <= 0:
        raise ValueError(f"m must be positive, got {m}")
    return float(i) / float(m)


def _m_tensor(m: int | Tensor, batch: int, device: torch.device) -> Tensor:
    """``m`` as a float ``(B,)`` tensor, validated."""
    if torch.is_tensor(m):
        m_t = m.to(device=device, dtype=torch.float32).reshape(-1)
        if m_t.numel() == 1:
            m_t = m_t.expand(batch)
        if m_t.shape != (batch,):
            raise ValueError(f"m must be an int or a ({batch},) tensor, got shape {tuple(m.shape)}")
    else:
        m_t = torch.full((batch,), float(m), device=device)
    if bool((m_t <= 0).any()):
        raise ValueError("m must be positive")
    return m_t


def _check_prefix(prefix: Tensor) -> None:
    if not torch.is_tensor(prefix) or prefix.dim() != 3:
        shape = tuple(prefix.shape) if torch.is_tensor(prefix) else type(prefix).__name__
        raise ValueError(f"prefix must be a (B, n+1, D) tensor, got {shape}")


def _segment(prefix: Tensor, t: Tensor, m_t: Tensor, last: int) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``(w_k, w_{k+1}, omega)`` for ``k = floor(t m)`` clamped to ``[0, last]``.

    ``k + 1`` is clamped to ``n`` as well, so at ``t = n/m`` exactly the result is ``w_n``.
    """
    n = prefix.shape[1] - 1
    tm = t * m_t
    k = torch.floor(tm).clamp(0, last)
    omega = (tm - k).clamp(0.0, 1.0)
    k = k.long()
    k1 = (k + 1).clamp(max=n)
    idx = torch.arange(prefix.shape[0], device=prefix.device)
    return prefix[idx, k], prefix[idx, k1], omega


def interpolate(prefix: Tensor, t: Tensor, m: int | Tensor) -> Tensor:
    """Linear interpolation of the observed trajectory at time ``t`` (Eq. 5).

    ``w(t) = (1 - omega) w_k + omega w_{k+1}`` with ``k = floor(t m)``,
    ``omega = t m - k``. Valid for ``t in [0, n/m]``; larger t are clamped to ``w_n``.

    Args:
        prefix: ``(B, n+1, D)`` snapshots ``w_0..w_n``.
        t: ``(B,)`` times.
        m: horizon, int or ``(B,)`` integer tensor.

    Returns:
        ``(B, D)`` interpolated weights.
    """
    _check_prefix(prefix)
    b, n1, _ = prefix.shape
    t = t.to(prefix.dtype).reshape(b)
    m_t = _m_tensor(m, b, prefix.device).to(prefix.dtype)
    lo, hi, omega = _segment(prefix, t, m_t, n1 - 1)
    return lo + omega.unsqueeze(-1) * (hi - lo)


@dataclass
class PathSample:
    """One draw from the training path of Algorithm 1.

    Attributes:
        t: ``(B,)`` sampled times in [0, 1].
        w_t: ``(B, D)`` the point on the path at t.
        target: ``(B, D)`` the target velocity at ``(w_t, t)``.
        z: ``(B,)`` float, 1.0 inside the observed prefix (``t < n/m``), else 0.0.
        weight: ``(B,)`` per-sample loss weight ``beta z + gamma (1 - z)``.

    Example:
        >>> s = sample_path(torch.zeros(2, 1, 3), torch.ones(2, 3), 9, torch.tensor([0.1, 0.9]))
        >>> s.z.tolist(), s.w_t.shape
        ([0.0, 0.0], torch.Size([2, 3]))
    """

    t: Tensor
    w_t: Tensor
    target: Tensor
    z: Tensor
    weight: Tensor


def sample_path(
    prefix: Tensor,
    w_m: Tensor,
    m: int | Tensor,
    t: Tensor,
    *,
    path: str = "paper",
    beta: float = 1.0,
    gamma: float = 1.0,
) -> PathSample:
    """Points and target velocities on the training path at given times (Algorithm 1, l. 2-4).

    Args:
        prefix: ``(B, n+1, D)`` observed snapshots ``w_0..w_n``.
        w_m: ``(B, D)`` the target snapshot.
        m: horizon, int or ``(B,)`` integer tensor (per-sample horizons); must exceed n.
        t: ``(B,)`` times in [0, 1] (the caller samples them, e.g. ``torch.rand(B)``).
        path: ``"paper"`` or ``"from_last"`` (see the module docstring).
        beta: weight of the prefix (``Z = 1``) term.
        gamma: weight of the extrapolation (``Z = 0``) term.

    Returns:
        A :class:`PathSample`. With ``n = 0`` every ``z`` is 0 (only ``w_0`` is observed).
    """
    _check_prefix(prefix)
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; expected one of {PATHS}")
    b, n1, d = prefix.shape
    n = n1 - 1
    if w_m.shape != (b, d):
        raise ValueError(f"w_m must have shape ({b}, {d}) to match the prefix, got {tuple(w_m.shape)}")
    dtype = prefix.dtype
    t = t.to(device=prefix.device, dtype=dtype).reshape(b)
    m_t = _m_tensor(m, b, prefix.device).to(dtype)
    if bool((m_t <= n).any()):
        raise ValueError(f"m must be larger than n={n} for every sample")
    t_n = n / m_t
    z = (t < t_n).to(dtype)
    zc = z.unsqueeze(-1)

    # Inside the prefix: k = floor(t m) is at most n-1 there (clamp guards rounding at t ~ n/m).
    lo, hi, omega = _segment(prefix, t, m_t, max(n - 1, 0))
    w_in = lo + omega.unsqueeze(-1) * (hi - lo)
    step_diff = hi - lo
    w_0, w_n = prefix[:, 0], prefix[:, n]
    tc = t.unsqueeze(-1)
    if path == "paper":
        target_in = step_diff
        w_out = tc * w_m + (1.0 - tc) * w_0
        target_out = w_m - w_n
    else:
        target_in = step_diff * m_t.unsqueeze(-1)
        span = (1.0 - t_n).unsqueeze(-1)
        target_out = (w_m - w_n) / span
        w_out = w_n + (tc - t_n.unsqueeze(-1)) * target_out
    w_t = zc * w_in + (1.0 - zc) * w_out
    target = zc * target_in + (1.0 - zc) * target_out
    weight = beta * z + gamma * (1.0 - z)
    return PathSample(t=t, w_t=w_t, target=target, z=z, weight=weight)


def midpoint_forecast(field: Field, w_n: Tensor, t_n: Tensor) -> Tensor:
    """One explicit-midpoint step from ``(w_n, t_n)`` to ``t = 1`` (Algorithm 1, lines 6-7).

    ``dt = 1 - t_n``; ``w_mid = w_n + dt/2 v(w_n, t_n)``;
    ``w_hat_m = w_n + dt v(w_mid, t_n + dt/2)``.

    Args:
        field: ``field(w (B, D), t (B,)) -> (B, D)``.
        w_n: ``(B, D)`` last observed weights.
        t_n: ``(B,)`` their times (``n / m``); a float is broadcast.

    Returns:
        ``(B, D)`` the one-step forecast ``w_hat_m``.
    """
    b = w_n.shape[0]
    t_n = torch.as_tensor(t_n, dtype=w_n.dtype, device=w_n.device).reshape(-1).expand(b)
    dt = 1.0 - t_n
    w_mid = w_n + (0.5 * dt).unsqueeze(-1) * field(w_n, t_n)
    return w_n + dt.unsqueeze(-1) * field(w_mid, t_n + 0.5 * dt)
