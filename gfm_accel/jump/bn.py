"""BatchNorm running-statistics refresh after a jump.

After a jump the running mean/variance still describe the old weights' activations.
:func:`refresh_batchnorm` recomputes them from a few training batches, like
``torch.optim.swa_utils.update_bn`` but bounded to ``num_batches`` and restoring the
model's train/eval mode and each layer's momentum.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable

import torch
from torch import nn

from .guard import to_device

__all__ = ["has_batchnorm", "refresh_batchnorm"]


def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def has_batchnorm(model: nn.Module) -> bool:
    """True when ``model`` holds a BatchNorm layer that tracks running statistics."""
    return bool(_bn_layers(model))


@torch.no_grad()
def refresh_batchnorm(model: nn.Module, loader: Iterable, num_batches: int) -> int:
    """Recompute BatchNorm running statistics as a cumulative average over a few batches.

    Batches may be a tensor (the input), a tuple/list (its first item is the input) or a
    dict (passed as keyword arguments, as Hugging Face models take them).

    Args:
        model: the model (a ``DistributedDataParallel`` wrapper is unwrapped).
        loader: iterable of batches (a fresh iterator is taken each call).
        num_batches: at most this many batches are used.

    Returns:
        The number of batches used (0 when the model has no BatchNorm or the loader is empty).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        >>> refresh_batchnorm(net, [torch.randn(8, 2)] * 3, num_batches=2)
        2
    """
    module = getattr(model, "module", model) if isinstance(model, nn.parallel.DistributedDataParallel) else model
    layers = _bn_layers(module)
    if not layers or num_batches <= 0:
        return 0
    device = next(itertools.chain(module.parameters(), module.buffers())).device
    was_training = module.training
    momenta = {bn: bn.momentum for bn in layers}
    # Stage: keep the old statistics so that an empty loader changes nothing.
    saved = {bn: (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in layers}
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the batches seen
    used = 0
    try:
        module.train()
        for batch in itertools.islice(iter(loader), num_batches):
            batch = to_device(batch, device)
            if isinstance(batch, dict):
                module(**batch)
            elif isinstance(batch, (list, tuple)):
                module(batch[0])
            else:
                module(batch)
            used += 1
    finally:
        for bn in layers:
            bn.momentum = momenta[bn]
        module.train(was_training)
        if used == 0:
            for bn, (mean, var, count) in saved.items():
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(count)
    return used
