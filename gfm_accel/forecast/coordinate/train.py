"""Training of the coordinate forecaster: the loss of a window batch and the (DDP) loop.

Example:
    >>> from gfm_accel.trajectories import Trajectories
    >>> cfg = CoordinateConfig(hidden=8, steps_per_epoch=2)
    >>> net, losses = train_field(cfg, [Trajectories(weights=torch.randn(3, 20, 30))], epochs=2, progress=False)
    >>> len(losses)
    2
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..._progress import Progress
from ...flow.loss import GFMLoss, gfm_loss
from ...trajectories import Trajectories
from .config import CoordinateConfig
from .features import window_inputs
from .field import CoordinateField, new_field
from .pooled import accumulate, gather
from .windows import WindowBatch, prepare_sources, sample_batch

__all__ = ["window_loss", "train_field"]

logger = logging.getLogger(__name__)


def window_loss(
    net: CoordinateField, config: CoordinateConfig, batch: WindowBatch, gen: torch.Generator | None = None
) -> GFMLoss:
    """The GFM objective on a window batch, in the normalized frame (differentiable).

    :func:`gfm_accel.flow.loss.gfm_loss` (Algorithm 1: ``(beta Z + gamma (1 - Z)) ||v - u_t||^2
    + zeta ||w_hat_m - w_m||^2``, averaged over coordinates) with per-window weights: with
    ``loss_weighting="relative"`` each window's terms are divided by ``E_c[y^2]``, the window's
    last-value error in the normalized frame. Each window draws its own ``t ~ U[0, 1]``
    (from ``gen``); every coordinate of a window shares it.

    Args:
        net: the field.
        config: its options (path, loss weights, prior, loss weighting, history).
        batch: B windows x C coordinates (:func:`~.windows.sample_batch`).
        gen: generator of the time samples.

    Returns:
        A :class:`~gfm_accel.flow.loss.GFMLoss` (weighted means over the B windows).
    """
    cfg = config
    b, n1, _ = batch.prefix.shape
    n = n1 - 1
    t_n = n / batch.m.float()
    tctx = net.tensor_context(batch.tensor_stats, batch.kinds, window_inputs(n, batch.m.float(), history=cfg.history),
                              batch.lr)
    if batch.everything is None:
        base = net.context(batch.coord if batch.pooled is None else batch.pooled, tctx, batch.tid)
    else:  # pooled=2: the second round pools the static activations of every coordinate
        ev = batch.everything
        static_all = net.context(ev.pooled, tctx, ev.index.tid)  # (B, D, H)
        act_all = net.pool_activation(static_all)
        stats = accumulate(ev.layout, [(ev.index, act_all)], b, static_all.shape[-1])
        pick = ev.sampled.unsqueeze(-1).expand(-1, -1, static_all.shape[-1])
        static, act = torch.gather(static_all, 1, pick), torch.gather(act_all, 1, pick)
        base = net.second_round(static, gather(stats, ev.sampled_index, act))

    def field_fn(x: Tensor, t: Tensor) -> Tensor:
        return net.velocity(base, x, t, t_n)

    t = torch.rand(b, generator=gen)
    prefix, target = batch.prefix, batch.target
    if batch.line is not None:  # prior="line": the flow of the residual to the line
        fit, at_m = batch.line
        detrended = prefix - fit
        prefix = detrended - detrended[:, n : n + 1]
        target = target - at_m
    weights = None
    if cfg.loss_weighting == "relative":
        # Each window's loss in units of its last-value error E_c[y^2]: windows with long
        # horizons (large y) would otherwise dominate, and heavy-tailed windows make
        # the absolute loss very noisy.
        weights = 1.0 / batch.target.pow(2).mean(dim=-1).clamp(min=1e-2)
    return gfm_loss(field_fn, prefix, target, batch.m, t, path=cfg.path, beta=cfg.beta, gamma=cfg.gamma,
                    zeta=cfg.zeta, weights=weights)


def _average_gradients(params: list[nn.Parameter], dist: Any, world_size: int) -> None:
    """Average the gradients over ranks with one all_reduce of a flat buffer."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        k = p.numel()
        p.grad = flat[offset : offset + k].view_as(p).clone()
        offset += k


def _process_group(rank: int, world_size: int) -> Any:
    """``torch.distributed`` when training on several ranks, else None (after checking the pair)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if world_size == 1:
        return None
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(f"world_size={world_size} needs an initialized torch.distributed process group")
    return dist


def train_field(
    config: CoordinateConfig,
    data: Sequence[Trajectories],
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[CoordinateField, list[float]]:
    """Train a fresh field on every trajectory of ``data``.

    One epoch is ``steps_per_epoch`` optimizer steps, by default one window per trajectory in
    expectation (windows are sampled, so there is no exact pass). Adam with a cosine decay of
    the learning rate to 10 % and gradient-norm clipping at 1. ``config.m = None`` is resolved
    here to ``T - 1`` of the shortest trajectory set.

    Args:
        config: the forecaster's options (epochs, batch size and lr are its defaults).
        data: trajectory sets (different D and layouts may be mixed).
        epochs: number of epochs (default ``config.epochs``).
        batch_size: windows per step (default ``config.batch_size``).
        lr: Adam learning rate (default ``config.lr``).
        seed: seed of the window sampler and of the network initialization.
        progress: show progress with the loss (:mod:`gfm_accel._progress`; rank 0 only).
        rank, world_size: data-parallel training (e.g. under ``torchrun``; needs an initialized
            ``torch.distributed`` process group when ``world_size > 1``). Each rank samples
            its own windows (generator seeded with ``seed + 1000 * rank``), the gradient is
            averaged over ranks with one ``all_reduce`` of the flattened gradient (the net
            is ~2k weights, so this is cheaper and simpler than wrapping it in
            ``DistributedDataParallel``), and an epoch has ``1 / world_size`` as many steps.
            Every rank ends with the same weights and the same loss history; only rank 0
            shows progress. Writing files is the caller's job (rank 0).

    Returns:
        ``(field in eval mode, mean training loss of each epoch)``.
    """
    cfg = config
    epochs = cfg.epochs if epochs is None else int(epochs)
    batch_size = cfg.batch_size if batch_size is None else int(batch_size)
    lr = cfg.lr if lr is None else float(lr)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if cfg.m is None:
        cfg.m = min(tr.T for tr in data) - 1
        if cfg.m <= cfg.n:
            raise ValueError(f"the training data has T={cfg.m + 1} snapshots, too few for n={cfg.n}")
    dist = _process_group(rank, world_size)
    sources = prepare_sources(data, cfg)
    n_total = sum(s.weights.shape[0] for s in sources)
    per_epoch = cfg.steps_per_epoch or max(1, math.ceil(n_total / (batch_size * world_size)))
    net = new_field(cfg, seed)  # seeded init; the global RNG is left untouched
    params = list(net.parameters())
    if dist is not None:
        for p in params:  # same start on every rank (already equal by seed; made certain)
            dist.broadcast(p.data, src=0)
    gen = torch.Generator().manual_seed(seed + 1000 * rank)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    history: list[float] = []
    net.train()
    with Progress(total, desc="coordinate GFM", unit="step", enabled=progress and rank == 0) as bar:
        for epoch in range(epochs):
            acc = 0.0
            for step in range(per_epoch):
                batch = sample_batch(cfg, sources, gen, batch_size)
                out = window_loss(net, cfg, batch, gen)
                opt.zero_grad(set_to_none=True)
                out.total.backward()
                if dist is not None:
                    _average_gradients(params, dist, world_size)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                acc += float(out.total.detach())
                if step < per_epoch - 1:
                    bar.update(1)
            mean = acc / per_epoch
            if dist is not None:  # every rank reports the same, all-rank mean
                buf = torch.tensor([mean], dtype=torch.float64)
                dist.all_reduce(buf)
                mean = float(buf) / world_size
            history.append(mean)
            bar.update(1, loss=mean)
            logger.debug("coordinate GFM epoch %d: loss %.6g", epoch, mean)
    net.eval()
    return net, history
