"""Building a field's ``nn.Module`` without touching the global RNG.

A field is built either to be trained (random initialisation from a given seed, under a
forked RNG so the caller's torch RNG is left as it was) or to receive saved weights right
after (no initialisation at all: built on the ``meta`` device, then given empty storage).
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch
from torch import nn

__all__ = ["build_module"]

M = TypeVar("M", bound=nn.Module)


def build_module(factory: Callable[[], M], seed: int | None) -> M:
    """Build ``factory()`` with a seeded initialisation, or none when ``seed`` is None.

    Args:
        factory: builds the module (its constructor draws the initial weights).
        seed: seed of the initialisation; ``None`` = do not initialise: the parameters hold
            arbitrary values until ``load_state_dict`` fills them (used when loading a file).

    Returns:
        The module on the CPU. Neither way draws from the global torch RNG.

    Example:
        >>> state = torch.random.get_rng_state()
        >>> a = build_module(lambda: nn.Linear(2, 2), seed=0)
        >>> b = build_module(lambda: nn.Linear(2, 2), seed=None)
        >>> torch.equal(state, torch.random.get_rng_state())
        True
    """
    if seed is None:
        with torch.device("meta"):
            module = factory()
        return module.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()
