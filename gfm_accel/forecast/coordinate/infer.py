"""Inference of the coordinate forecaster: chunk by chunk over the coordinates.

Example:
    >>> cfg = CoordinateConfig(hidden=8)
    >>> forecast(new_field(cfg), cfg, torch.randn(1, 5, 30), m=20).final.shape
    torch.Size([1, 30])
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...flow.solver import ODEResult, integrate
from ...params import ParamSpec
from ..base import as_batch
from ..simple import line_through
from .config import CoordinateConfig
from .features import coordinate_inputs, lr_profile_inputs, tensor_ids_for_range, tensor_statistics, window_inputs
from .field import CoordinateField, new_field
from .pooled import PoolLayout, accumulate, chunked, gather

__all__ = ["forecast"]


@torch.no_grad()
def forecast(
    net: CoordinateField,
    config: CoordinateConfig,
    prefix: Tensor,
    m: int,
    spec: ParamSpec | None = None,
    *,
    return_states: bool = False,
    lr_profile: Tensor | None = None,
) -> ODEResult:
    """Forecast ``w_m`` from ``w_0..w_n``, chunk by chunk over the coordinates.

    Args:
        net: the trained field (put in eval mode).
        config: its options (solver, step, tau, chunk size, clip, history, prior).
        prefix: ``(B, n+1, D)`` or ``(n+1, D)``; any n >= 0 (the window frame is ``t_i = i/m``).
            Finite values are assumed (``GFMForecaster.forecast`` checks them).
        m: target index, ``m > n``.
        spec: layout of D (tensors and layer kinds); default one flat tensor.
        return_states: also return the ODE states (memory ``S x B x D``; small D only). With
            ``prior="line"`` they are the residual flow (``w_n`` plus the correction); the line's
            ``L(m)`` is added to ``final`` only.
        lr_profile: ``(m+1,)`` or ``(B, m+1)`` summed learning rate per snapshot interval of
            the window frame (see :func:`.features.lr_profile_inputs`), read by
            ``schedule_aware`` fields; None = a constant schedule. Other fields ignore it.

    With ``pooled >= 1`` the pooled statistics are computed first, chunk by chunk (round 1:
    the coordinate inputs; round 2: also the static activations), then gathered per chunk
    in the forecasting pass; see :mod:`.pooled`.

    Returns:
        An :class:`~gfm_accel.flow.solver.ODEResult` whose ``final`` is ``(B, D)`` float32 on
        the prefix's device (the work is done on the CPU). ``steps`` is the largest step
        count over chunks; ``stopped_early`` is True when
        any chunk met the ``tau`` criterion.
    """
    cfg = config
    batch, _ = as_batch(prefix)
    device = batch.device
    batch = batch.cpu()  # computed on the CPU (snapshots live there); the result goes back to `device`
    # The facade (GFMForecaster) has validated the prefix already (check_prefix, including
    # NaN/Inf); a full isfinite pass would cost ~335 MB and 0.7 s more on 10M parameters.
    if m <= batch.shape[1] - 1:
        raise ValueError(f"m={m} must be larger than n={batch.shape[1] - 1} (the prefix holds w_0..w_n)")
    b, n1, d = batch.shape
    n = n1 - 1
    spec = spec if spec is not None else ParamSpec.flat(d)
    if spec.numel != d:
        raise ValueError(f"the parameter spec describes D={spec.numel} but the prefix has D={d}")
    net.eval()
    stats = tensor_statistics(batch, spec, floor_rel=cfg.floor_rel)
    m_t = torch.full((b,), float(m))
    t_n = n / m_t
    lr = None
    if cfg.schedule_aware and lr_profile is not None:
        lr = lr_profile_inputs(lr_profile, n, m, b, history=cfg.history)
    tctx = net.tensor_context(stats.features, stats.kinds, window_inputs(n, m_t, history=cfg.history), lr)
    out = torch.empty(b, d, dtype=torch.float32)
    chunk = max(1, cfg.chunk_size // b)
    steps, stopped = 0, False
    all_states: list[Tensor] = []
    times = None

    def coord_of(a: int, z: int, tid: Tensor) -> Tensor:
        return coordinate_inputs(batch[:, :, a:z], stats.scale[:, tid], history=cfg.history, clip=cfg.clip)

    layout = pool1 = pool2 = None
    if cfg.pooled:
        layout = PoolLayout.from_spec(spec)
        f = cfg.history + 1
        pool1 = accumulate(layout, chunked(layout, d, chunk, lambda a, z, idx: coord_of(a, z, idx.tid)), b, f)
        if cfg.pooled >= 2:
            def activation(a: int, z: int, idx) -> Tensor:
                coord = coord_of(a, z, idx.tid)
                return net.pool_activation(net.context(gather(pool1, idx, coord, lead=True), tctx, idx.tid))

            pool2 = accumulate(layout, chunked(layout, d, chunk, activation), b, cfg.hidden)
    for a in range(0, d, chunk):
        z = min(d, a + chunk)
        tid = tensor_ids_for_range(stats.ends, a, z)
        cols = batch[:, :, a:z]
        scale = stats.scale[:, tid]
        coord = coord_of(a, z, tid)
        if layout is None:
            base = net.context(coord, tctx, tid)
        else:
            idx = layout.index_range(a, z)
            base = net.context(gather(pool1, idx, coord, lead=True), tctx, tid)
            if pool2 is not None:
                base = net.second_round(base, gather(pool2, idx, net.pool_activation(base)))
        w_n = cols[:, n].contiguous()

        def field_fn(w: Tensor, t: Tensor, base=base, w_n=w_n, scale=scale) -> Tensor:
            return scale * net.velocity(base, (w - w_n) / scale, t, t_n)

        res = integrate(field_fn, w_n, n / m, 1.0, method=cfg.solver, step=cfg.step, num_steps=cfg.num_steps,
                        tau=cfg.tau, return_states=return_states)
        out[:, a:z] = res.final
        if cfg.prior == "line":
            norm = ((cols - w_n.unsqueeze(1)) / scale.unsqueeze(1)).clamp(-cfg.clip, cfg.clip)
            out[:, a:z] += scale * line_through(norm, m_t)
        steps = max(steps, res.steps)
        stopped = stopped or res.stopped_early
        if return_states:
            all_states.append(res.states)
            if times is None or res.times.shape[0] > times.shape[0]:
                times = res.times
    states = None
    if return_states:
        s_max = max(s.shape[0] for s in all_states)
        # A chunk that stopped early keeps its last state for the remaining times.
        padded = [torch.cat([s, s[-1:].expand(s_max - s.shape[0], -1, -1)]) for s in all_states]
        states = torch.cat(padded, dim=-1)
    if device.type != "cpu":
        out = out.to(device)
        states = None if states is None else states.to(device)
    return ODEResult(final=out, times=times, states=states, steps=steps, stopped_early=stopped)
