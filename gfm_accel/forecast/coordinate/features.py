"""Scale-free per-tensor normalization and per-coordinate inputs of the coordinate forecaster.

The coordinate GFM forecaster (:mod:`gfm_accel.forecast.coordinate`) runs one small network
on every scalar parameter. Everything it sees is expressed in a per-tensor frame that is

* **centred on the last observed snapshot** ``w_n`` (so the ODE starts at ``x = 0``), and
* **divided by a per-tensor scale** ``s`` of the observed movement:

  ``s = max(rms(w_n - w_0), floor_rel * rms(w_n), eps)`` for ``n >= 1`` and
  ``s = max(rms(w_0), eps)`` for ``n = 0`` (nothing has moved yet, so the size of the
  tensor itself is the only scale there is).

  The RMS is taken over the tensor's elements (one number per tensor and per window).
  ``floor_rel`` (default ``1e-3``) keeps nearly frozen tensors from being blown up into
  large normalized values; ``eps`` (``1e-12``) only matters for an all-zero tensor.

The map ``w -> x = (w - w_n) / s`` is invertible (``w = w_n + s x``) and scale-free: multiplying
a whole trajectory by ``c > 0`` multiplies ``w_n`` and ``s`` by ``c`` and leaves every ``x``
unchanged, so the forecast is multiplied by ``c`` as well (up to float rounding; the ``eps``
floor breaks this only for all-zero tensors, which stay zero anyway). Every per-tensor
statistic fed to the network is a ratio or a cosine, hence scale-free too.

Index conventions: a prefix is ``(B, n+1, D)`` holding ``w_0..w_n``; ``d_j = x_{n-j+1} - x_{n-j}``
is the j-th most recent normalized step (``d_1`` is the last one); missing steps (``j > n``)
are zero and flagged by the per-window availability bits.

Example:
    >>> from gfm_accel.params import ParamSpec
    >>> prefix = torch.tensor([[[0.0, 0.0], [1.0, 3.0]]])          # (B=1, n+1=2, D=2)
    >>> st = tensor_statistics(prefix, ParamSpec.flat(2))
    >>> round(st.scale.item(), 4)                                  # rms([1, 3])
    2.2361
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ...params import LAYER_KINDS, ParamSpec
from ..base import check_lr_profile

__all__ = [
    "NUM_TENSOR_STATS",
    "TensorStats",
    "tensor_statistics",
    "coordinate_inputs",
    "window_inputs",
    "tensor_ids_for_range",
    "num_lr_inputs",
    "lr_inputs",
    "lr_profile_inputs",
]

#: Number of scale-free statistics per tensor (see :func:`tensor_statistics`).
NUM_TENSOR_STATS = 4
_EPS = 1e-12


@dataclass
class TensorStats:
    """Per-tensor normalization and statistics of a batch of prefixes.

    Attributes:
        scale: ``(B, K)`` the normalization scale ``s`` of each of the K tensors.
        features: ``(B, K, NUM_TENSOR_STATS)`` scale-free statistics:
            ``log(s / rms(w_n))``, ``log(rms(w_n - w_{n-1}) / s)`` (0 when n = 0),
            ``cos(w_n - w_{n-1}, w_{n-1} - w_{n-2})`` (0 when n < 2), ``log(numel) / 10``.
        kinds: ``(K,)`` int64 index of each tensor's kind in :data:`LAYER_KINDS`.
        ends: ``(K,)`` int64 end offset of each tensor in the flat vector.

    Example:
        >>> st = tensor_statistics(torch.zeros(1, 3, 4) + torch.arange(3.).view(1, 3, 1),
        ...                        ParamSpec.flat(4))
        >>> st.scale.shape, st.features.shape
        (torch.Size([1, 1]), torch.Size([1, 1, 4]))
    """

    scale: Tensor
    features: Tensor
    kinds: Tensor
    ends: Tensor


def _rms(x: Tensor) -> Tensor:
    """RMS over the last axis: ``(..., d) -> (...)``."""
    return x.pow(2).mean(dim=-1).sqrt()


@torch.no_grad()
def tensor_statistics(
    prefix: Tensor, spec: ParamSpec, *, floor_rel: float = 1e-3, eps: float = _EPS
) -> TensorStats:
    """Per-tensor scale and scale-free statistics, computed tensor by tensor.

    Memory is bounded by one tensor's slice at a time (no ``(D,)`` temporaries beyond it).

    Args:
        prefix: ``(B, n+1, D)`` snapshots ``w_0..w_n``.
        spec: layout of D (its entries define the tensors).
        floor_rel: relative floor of the scale, in units of ``rms(w_n)``.
        eps: absolute floor of the scale.

    Returns:
        A :class:`TensorStats` over the ``K = len(spec)`` tensors.
    """
    if prefix.dim() != 3:
        raise ValueError(f"prefix must have shape (B, n+1, D), got {tuple(prefix.shape)}")
    if prefix.shape[-1] != spec.numel:
        raise ValueError(f"prefix has D={prefix.shape[-1]} but the parameter spec describes D={spec.numel}")
    b, n1, _ = prefix.shape
    n = n1 - 1
    k = len(spec)
    scale = torch.empty(b, k, dtype=torch.float32)
    feats = torch.zeros(b, k, NUM_TENSOR_STATS, dtype=torch.float32)
    for i, e in enumerate(spec.entries):
        sl = prefix[:, :, e.offset : e.end].float()
        w_n = sl[:, n]
        rms_n = _rms(w_n)
        if n >= 1:
            s = torch.maximum(_rms(w_n - sl[:, 0]), floor_rel * rms_n).clamp(min=eps)
            last = w_n - sl[:, n - 1]
            feats[:, i, 1] = torch.log(_rms(last).clamp(min=eps) / s).clamp(-12.0, 5.0) / 4.0
            if n >= 2:
                prev = sl[:, n - 1] - sl[:, n - 2]
                denom = (last.norm(dim=-1) * prev.norm(dim=-1)).clamp(min=eps * eps)
                feats[:, i, 2] = (last * prev).sum(dim=-1) / denom
        else:
            s = rms_n.clamp(min=eps)
        scale[:, i] = s
        feats[:, i, 0] = torch.log(s / rms_n.clamp(min=eps)).clamp(-12.0, 12.0) / 4.0
        feats[:, i, 3] = math.log(max(e.numel, 1)) / 10.0
    kinds = torch.tensor([LAYER_KINDS.index(e.kind) for e in spec.entries], dtype=torch.long)
    ends = torch.tensor([e.end for e in spec.entries], dtype=torch.long)
    return TensorStats(scale=scale, features=feats, kinds=kinds, ends=ends)


def tensor_ids_for_range(ends: Tensor, start: int, stop: int) -> Tensor:
    """Tensor index of coordinates ``start..stop-1``: ``(stop - start,)`` int64.

    Computed per chunk (``bucketize`` on the tensor end offsets), so no ``(D,)`` index is
    ever materialized.
    """
    return torch.bucketize(torch.arange(start, stop, dtype=torch.long), ends, right=True)


def coordinate_inputs(prefix: Tensor, scale: Tensor, *, history: int = 4, clip: float = 100.0) -> Tensor:
    """Per-coordinate normalized inputs from the coordinates' own prefixes.

    Args:
        prefix: ``(B, n+1, C)`` snapshots of C coordinates.
        scale: ``(B, C)`` each coordinate's tensor scale ``s``.
        history: number K of most recent normalized steps kept.
        clip: inputs are clamped to ``[-clip, clip]`` (heavy-tailed coordinates).

    Returns:
        ``(B, C, history + 1)``: ``d_1 .. d_K`` (zero where ``j > n``) then ``x_0 = (w_0 - w_n) / s``.

    Example:
        >>> p = torch.tensor([[[0.0], [2.0], [3.0]]])             # one coordinate, n = 2
        >>> coordinate_inputs(p, torch.ones(1, 1), history=3).tolist()
        [[[1.0, 2.0, 0.0, -3.0]]]
    """
    b, n1, c = prefix.shape
    n = n1 - 1
    out = prefix.new_zeros(b, c, history + 1)
    inv = 1.0 / scale
    for j in range(1, min(history, n) + 1):
        out[:, :, j - 1] = (prefix[:, n - j + 1] - prefix[:, n - j]) * inv
    out[:, :, history] = (prefix[:, 0] - prefix[:, n]) * inv
    return out.clamp_(-clip, clip)


def window_inputs(n: int, m: Tensor, *, history: int = 4) -> Tensor:
    """Per-window inputs describing the time geometry: ``(B, 2 + history)``.

    Columns: ``t_n = n / m``, ``log(m - n) / 5``, then ``1(n >= j)`` for ``j = 1..history``.

    Args:
        n: index of the last observed snapshot.
        m: ``(B,)`` target index (float or int tensor), ``m > n``.
        history: K, as in :func:`coordinate_inputs`.
    """
    m = m.float().reshape(-1)
    avail = torch.tensor([1.0 if n >= j else 0.0 for j in range(1, history + 1)]).expand(m.shape[0], history)
    return torch.cat([(n / m).unsqueeze(-1), (torch.log(m - n) / 5.0).unsqueeze(-1), avail], dim=-1)


#: Largest |log ratio| of the learning-rate inputs (ratios beyond e^8 are clipped).
_LR_LOG_CLIP = 8.0


def num_lr_inputs(history: int) -> int:
    """Number of learning-rate inputs per window (:func:`lr_inputs`): ``2 + history``."""
    return 2 + history


def lr_inputs(window: Tensor, horizon_sum: Tensor, horizon_last: Tensor, horizon_len: Tensor, *,
              history: int = 4) -> Tensor:
    """Scale-free learning-rate profile of B windows (``schedule_aware=True``): ``(B, 2 + history)``.

    ``L_i`` is the summed learning rate over the optimizer steps between snapshots ``i - 1``
    and ``i`` of the window frame; the window's intervals are ``i = 1..n``, the horizon's
    ``n+1..m``. With ``L_bar`` the mean of ``L_1..L_n``, the columns are

    * ``log(mean(L_{n+1..m}) / L_bar)``: how much ground the horizon covers per snapshot
      relative to the window (0 for a constant schedule, negative for a decaying one);
    * ``log(L_m / L_bar)``: the last horizon interval (how far the schedule has decayed at m);
    * ``log(L_{n-j+1} / L_bar)`` for ``j = 1..history``: the window's own shape (0 where ``j > n``),

    each clipped to ``[-8, 8]`` and divided by 4 like the other inputs. Only ratios enter, so
    multiplying every learning rate by ``c > 0`` changes nothing. Without a reference
    (``n = 0`` or ``L_bar = 0``) every column is 0, as for a constant schedule.

    Args:
        window: ``(B, n)`` ``L_1..L_n``.
        horizon_sum: ``(B,)`` ``L_{n+1} + .. + L_m``.
        horizon_last: ``(B,)`` ``L_m``.
        horizon_len: ``(B,)`` ``m - n``.
        history: as in :func:`coordinate_inputs`.

    Example:
        >>> lr_inputs(torch.ones(1, 2), torch.tensor([2.0]), torch.tensor([1.0]), torch.tensor([2.0]),
        ...           history=2).tolist()
        [[0.0, 0.0, 0.0, 0.0]]
    """
    window = window.double()
    b, n = window.shape
    out = torch.zeros(b, num_lr_inputs(history), dtype=torch.float64)
    if n == 0:
        return out.float()
    ref = window.mean(dim=-1)
    ok = ref > 0
    safe = torch.where(ok, ref, torch.ones_like(ref)).unsqueeze(-1)
    lo, hi = math.exp(-_LR_LOG_CLIP), math.exp(_LR_LOG_CLIP)
    k = min(history, n)
    ratios = torch.cat([
        (horizon_sum.double() / horizon_len.double()).unsqueeze(-1),
        horizon_last.double().unsqueeze(-1),
        window.flip(-1)[:, :k],  # L_n, L_{n-1}, ...
    ], dim=-1) / safe
    out[:, : 2 + k] = torch.log(ratios.clamp(lo, hi)) / 4.0
    out[~ok] = 0.0
    return out.float()


def lr_profile_inputs(lr_profile: Tensor, n: int, m: int, batch: int, *, history: int = 4) -> Tensor:
    """:func:`lr_inputs` from a window's summed learning rates at inference.

    Args:
        lr_profile: ``(m+1,)`` or ``(B, m+1)``: entry ``t`` is the summed base learning rate
            over the optimizer steps between snapshots ``t - 1`` and ``t`` of the window frame
            (entry 0 is unused), the layout of a trajectory file's ``"lr_sum"``; entries
            ``n+1..m`` are the future (e.g. from a copy of the scheduler).
        n, m: the window; batch: B.

    Raises:
        ValueError: wrong shape, or negative / non-finite entries
            (:func:`~gfm_accel.forecast.base.check_lr_profile`).
    """
    p = check_lr_profile(lr_profile, m, batch)
    horizon = p[:, n + 1 : m + 1]
    return lr_inputs(p[:, 1 : n + 1], horizon.sum(dim=-1), p[:, m], torch.full((batch,), float(m - n)),
                     history=history)
