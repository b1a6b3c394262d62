"""Training windows of the coordinate forecaster: which snapshots and coordinates a step sees.

With ``windows=True`` every step draws a trajectory set (in proportion to its size), an
``n`` from ``n_choices``, then per window a stride (snapshot subsampling), a horizon ``m - n``
and a start index, and finally a random subset of coordinates per window; so one forecaster
serves any ``(n, m)``. ``windows=False`` uses the paper's fixed ``(w_0..w_n -> w_m)``. Every
draw comes from the given ``torch.Generator`` (never the global RNG).

Opt-in inputs, computed here without drawing from the generator (so the default batches
are unchanged): with ``pooled >= 1`` the pooled statistics of :mod:`.pooled` over the
whole window (every coordinate of the window's tensors, not only the sampled ones); with
``pooled = 2`` also every coordinate's inputs, since the second round pools the field's
own activations (memory ``B x D x (6 (history + 1) + 2)`` floats per batch); with
``schedule_aware`` the window's learning-rate inputs (:func:`.features.lr_inputs`) from the
trajectory file's ``"lr_sum"`` ``(N, T)``: ``lr_sum[i, t]`` is the summed base learning rate
over the optimizer steps between snapshots ``t - 1`` and ``t`` (``lr_sum[:, 0]`` unused), so
a window with stride ``r`` sums ``r`` of them per interval.

Example:
    >>> from gfm_accel.trajectories import Trajectories
    >>> cfg = CoordinateConfig(coords_per_window=8)
    >>> sources = prepare_sources([Trajectories(weights=torch.randn(3, 20, 30))], cfg)
    >>> batch = sample_batch(cfg, sources, torch.Generator().manual_seed(0), 4)
    >>> batch.target.shape, batch.coord.shape
    (torch.Size([4, 8]), torch.Size([4, 8, 5]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from ...params import ParamSpec
from ...trajectories import Trajectories
from ..simple import line_through
from .config import CoordinateConfig
from .features import coordinate_inputs, lr_inputs, tensor_ids_for_range, tensor_statistics
from .pooled import CoordIndex, PoolLayout, accumulate, chunked, gather

__all__ = ["WindowBatch", "AllCoordinates", "WindowSource", "prepare_sources", "window_plan", "sample_batch"]

#: The trajectory-file tensor that ``schedule_aware`` training reads (``Trajectories.extra``).
LR_SUM = "lr_sum"


@dataclass
class AllCoordinates:
    """Every coordinate of B windows, for the second pooling round (``pooled = 2``).

    Attributes:
        layout: the source's :class:`~.pooled.PoolLayout`.
        index: slots of all D coordinates, ``(D,)``.
        pooled: ``(B, D, 6 (history + 1) + 2)`` their inputs and round-1 pooled inputs.
        sampled: ``(B, C)`` the flat indices of the sampled coordinates.
        sampled_index: their slots, ``(B, C)``.
    """

    layout: PoolLayout
    index: CoordIndex
    pooled: Tensor
    sampled: Tensor
    sampled_index: CoordIndex


@dataclass
class WindowBatch:
    """A training mini-batch of B windows x C sampled coordinates, already normalized.

    Attributes:
        prefix: ``(B, n+1, C)`` normalized prefix ``x_0..x_n`` (``x_n = 0``).
        target: ``(B, C)`` normalized target ``y = (w_m - w_n) / s`` (clipped).
        m: ``(B,)`` int64 target index of each window (in window snapshots).
        coord: ``(B, C, history + 1)`` coordinate inputs.
        tensor_stats: ``(B, K, NUM_TENSOR_STATS)``.
        kinds: ``(K,)`` layer kinds of the source model's tensors.
        tid: ``(B, C)`` tensor index of each sampled coordinate.
        line: ``(B, n+1, C)`` and ``(B, C)``: the least-squares line through the prefix at
            ``0..n`` and at ``m`` (``prior="line"``), else None.
        pooled: ``(B, C, 6 (history + 1) + 2)`` the coordinate inputs followed by their round-1
            pooled inputs (``pooled >= 1``; what the field's first layer reads), else None.
        everything: every coordinate, for round 2 (``pooled = 2``), else None.
        lr: ``(B, num_lr_inputs)`` learning-rate inputs (``schedule_aware``), else None.
    """

    prefix: Tensor
    target: Tensor
    m: Tensor
    coord: Tensor
    tensor_stats: Tensor
    kinds: Tensor
    tid: Tensor
    line: tuple[Tensor, Tensor] | None = None
    pooled: Tensor | None = None
    everything: AllCoordinates | None = None
    lr: Tensor | None = None


@dataclass
class WindowSource:
    """One trajectory set ready for sampling.

    Attributes:
        weights: ``(N, T, D)`` float32 snapshots.
        spec: layout of D.
        lr_cum: ``(N, T)`` float64 cumulative summed learning rate (``schedule_aware``), else None:
            ``lr_cum[i, b] - lr_cum[i, a]`` is the summed lr between snapshots a and b.
        layout: the pooling layout of ``spec`` (``pooled >= 1``), else None.
        offsets, numels: ``(K,)`` int64 start offset and size of each tensor (derived).
    """

    weights: Tensor
    spec: ParamSpec
    lr_cum: Tensor | None = None
    layout: PoolLayout | None = None
    offsets: Tensor = field(init=False)
    numels: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.offsets = torch.tensor([e.offset for e in self.spec.entries], dtype=torch.long)
        self.numels = torch.tensor([e.numel for e in self.spec.entries], dtype=torch.long)


def _lr_cumulative(tr: Trajectories, i: int) -> Tensor:
    """``(N, T)`` float64 cumulative ``"lr_sum"`` of trajectory set ``i``, checked."""
    where = f"trajectory set {i}" + (f" ({tr.path})" if tr.path is not None else "")
    lr_sum = tr.extra.get(LR_SUM)
    if lr_sum is None:
        raise ValueError(f"{where} has no {LR_SUM!r} tensor; schedule_aware=True training needs it: float32 "
                         f"(N, T), lr_sum[i, t] = summed base learning rate over the optimizer steps between "
                         f"snapshots t-1 and t (extra tensors present: {sorted(tr.extra)})")
    if tuple(lr_sum.shape) != (tr.N, tr.T) or not lr_sum.is_floating_point():
        raise ValueError(f"{where}: {LR_SUM!r} must be a float tensor of shape (N, T) = ({tr.N}, {tr.T}), got "
                         f"{lr_sum.dtype} {tuple(lr_sum.shape)}")
    lr_sum = lr_sum.double().clone()
    lr_sum[:, 0] = 0.0  # unused by the contract
    if not bool(torch.isfinite(lr_sum).all()) or bool((lr_sum < 0).any()):
        raise ValueError(f"{where}: {LR_SUM!r} must hold finite, non-negative summed learning rates")
    return lr_sum.cumsum(dim=1)


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def prepare_sources(data: Sequence[Trajectories], config: CoordinateConfig) -> list[WindowSource]:
    """Check the trajectory sets against ``config`` and wrap them for sampling.

    Raises:
        ValueError: no data, a spec that does not describe D, too few snapshots, or (with
            ``schedule_aware``) a missing or malformed ``"lr_sum"``.
    """
    if not data:
        raise ValueError("fit needs at least one Trajectories object")
    out = []
    for i, tr in enumerate(data):
        spec = tr.spec if tr.spec is not None else ParamSpec.flat(tr.D)
        if spec.numel != tr.D:
            raise ValueError(f"trajectory set {i}: spec describes D={spec.numel} but weights have D={tr.D}")
        need = 2 if config.windows else int(config.m) + 1
        if tr.T < need:
            raise ValueError(f"trajectory set {i} has T={tr.T} snapshots; training needs at least {need}"
                             + ("" if config.windows else f" (m={config.m})"))
        out.append(WindowSource(weights=tr.weights.float(), spec=spec,
                                lr_cum=_lr_cumulative(tr, i) if config.schedule_aware else None,
                                layout=PoolLayout.from_spec(spec) if config.pooled else None))
    return out


def window_plan(config: CoordinateConfig, t_len: int, gen: torch.Generator) -> tuple[int, int, int]:
    """Pick ``(n, stride, horizon)`` that fit in ``t_len`` snapshots."""
    last = t_len - 1
    ns = [n for n in config.n_choices if n + 1 <= last]
    if not ns:
        ns = [max(0, last - 1)]
    for _ in range(64):
        n = ns[_randint(gen, 0, len(ns) - 1)]
        r = config.strides[_randint(gen, 0, len(config.strides) - 1)]
        hmax = last // r - n
        if hmax < 1:
            continue
        if config.horizons is None:
            h = int(math.exp(float(torch.rand((), generator=gen)) * math.log(hmax + 1)))
            h = min(max(h, 1), hmax)
        else:
            fits = [h for h in config.horizons if h <= hmax]
            if not fits:
                continue
            h = fits[_randint(gen, 0, len(fits) - 1)]
        return n, r, h
    n = ns[0]
    return n, 1, last - n


def _window_indices(config: CoordinateConfig, t_len: int, gen: torch.Generator,
                    batch_size: int) -> tuple[int, Tensor, Tensor]:
    """``(n, snapshot indices (B, n+2), m (B,))``: B windows, all with the same n."""
    if not config.windows:
        n = config.n
        idx = torch.tensor(list(range(n + 1)) + [config.m]).expand(batch_size, -1)
        return n, idx, torch.full((batch_size,), config.m, dtype=torch.long)
    n, _, _ = window_plan(config, t_len, gen)
    rows, ms = [], []
    for _ in range(batch_size):
        # Same n for the batch; stride and horizon per window.
        for _ in range(64):
            _, r, h = window_plan(config, t_len, gen)
            if (n + h) * r <= t_len - 1:
                break
        else:
            r, h = 1, t_len - 1 - n
        m = n + h
        start = _randint(gen, 0, t_len - 1 - m * r)
        rows.append(torch.tensor([start + r * i for i in range(n + 1)] + [start + r * m]))
        ms.append(m)
    return n, torch.stack(rows), torch.tensor(ms, dtype=torch.long)


def sample_batch(
    config: CoordinateConfig, sources: Sequence[WindowSource], gen: torch.Generator, batch_size: int
) -> WindowBatch:
    """Draw one mini-batch of windows (all with the same n) and coordinates.

    Args:
        config: the forecaster's options (window and coordinate sampling, clip, history, prior).
        sources: prepared trajectory sets (:func:`prepare_sources`).
        gen: random generator (seed it per rank for DDP sharding).
        batch_size: number of windows B.

    Returns:
        A :class:`WindowBatch` of B windows x ``coords_per_window`` coordinates.
    """
    cfg = config
    sizes = torch.tensor([float(s.weights.shape[0]) for s in sources])
    src = sources[int(torch.multinomial(sizes, 1, generator=gen))]
    n_traj, t_len, d = src.weights.shape
    n, idx, m_t = _window_indices(cfg, t_len, gen, batch_size)
    traj = torch.randint(0, n_traj, (batch_size,), generator=gen)
    win = src.weights[traj.unsqueeze(-1), idx]  # (B, n+2, D)
    stats = tensor_statistics(win[:, : n + 1], src.spec, floor_rel=cfg.floor_rel)

    c = cfg.coords_per_window
    n_bal = int(round(c * cfg.tensor_balanced))
    coords = torch.randint(0, d, (batch_size, c - n_bal), generator=gen)
    if n_bal:
        k = torch.randint(0, len(src.spec), (batch_size, n_bal), generator=gen)
        u = torch.rand(batch_size, n_bal, generator=gen)
        within = (u * src.numels[k]).long().clamp(max=src.numels[k] - 1)
        coords = torch.cat([coords, src.offsets[k] + within], dim=1)
    tid = torch.bucketize(coords, stats.ends, right=True)
    cols = torch.gather(win, 2, coords.unsqueeze(1).expand(-1, n + 2, -1))  # (B, n+2, C)
    scale = torch.gather(stats.scale, 1, tid)  # (B, C)
    w_n = cols[:, n]
    norm = (cols - w_n.unsqueeze(1)) / scale.unsqueeze(1)
    prefix = norm[:, : n + 1].clamp(-cfg.clip, cfg.clip)
    coord = coordinate_inputs(cols[:, : n + 1], scale, history=cfg.history, clip=cfg.clip)
    pooled, everything = None, None
    if cfg.pooled:
        pooled, everything = _pooled_inputs(cfg, src, win[:, : n + 1], stats.scale, coords, tid, coord)
    return WindowBatch(
        prefix=prefix,
        target=norm[:, n + 1].clamp(-cfg.clip, cfg.clip),
        m=m_t,
        coord=coord,
        tensor_stats=stats.features,
        kinds=stats.kinds,
        tid=tid,
        line=line_through(prefix, m_t, fitted=True) if cfg.prior == "line" else None,
        pooled=pooled,
        everything=everything,
        lr=_window_lr(cfg, src, traj, idx, n, m_t) if cfg.schedule_aware else None,
    )


def _window_lr(cfg: CoordinateConfig, src: WindowSource, traj: Tensor, idx: Tensor, n: int, m_t: Tensor) -> Tensor:
    """``(B, num_lr_inputs)`` learning-rate inputs of B windows (snapshot indices ``idx`` ``(B, n+2)``)."""
    cum = src.lr_cum[traj]  # (B, T)
    start = idx[:, :1]
    stride = torch.div(idx[:, n + 1 :] - start, m_t.unsqueeze(-1), rounding_mode="floor")  # target = start + r m

    def cum_at(i: Tensor) -> Tensor:  # (B, j) window snapshot indices -> (B, j) cumulative lr
        return torch.gather(cum, 1, start + stride * i)

    marks = cum_at(torch.arange(n + 1).expand(len(traj), -1))  # (B, n+1)
    end = cum_at(m_t.unsqueeze(-1))[:, 0]
    last = cum_at(m_t.unsqueeze(-1) - 1)[:, 0]
    return lr_inputs(marks[:, 1:] - marks[:, :-1], end - marks[:, n], end - last, (m_t - n).double(),
                     history=cfg.history)


def _pooled_inputs(cfg: CoordinateConfig, src: WindowSource, prefix: Tensor, scale: Tensor, coords: Tensor,
                   tid: Tensor, coord: Tensor) -> tuple[Tensor, AllCoordinates | None]:
    """Round-1 pooled inputs of the sampled coordinates (and every coordinate, for round 2).

    Args:
        prefix: ``(B, n+1, D)`` the windows' prefixes; scale: ``(B, K)`` their tensor scales.
        coords, tid: ``(B, C)`` sampled coordinates and their tensors; coord: their inputs.
    """
    layout = src.layout
    b, _, d = prefix.shape
    f = cfg.history + 1

    def inputs(a: int, z: int, tids: Tensor) -> Tensor:
        return coordinate_inputs(prefix[:, :, a:z], scale[:, tids], history=cfg.history, clip=cfg.clip)

    with torch.no_grad():  # data, not parameters
        stats = accumulate(layout, chunked(layout, d, cfg.chunk_size, lambda a, z, i: inputs(a, z, i.tid)), b, f)
    sampled = layout.index(coords, tid)
    pooled = gather(stats, sampled, coord, lead=True)
    if cfg.pooled < 2:
        return pooled, None
    every = layout.index_range(0, d)
    coord_all = inputs(0, d, tensor_ids_for_range(layout.ends, 0, d))
    return pooled, AllCoordinates(layout=layout, index=every, pooled=gather(stats, every, coord_all, lead=True),
                                  sampled=coords, sampled_index=sampled)
