"""Leave the global random number generators as they were: torch (CPU and CUDA), numpy, Python.

The library never consumes global RNG state: a run with :class:`~gfm_accel.jump.GFMJump`
attached draws the same random numbers (data order, dropout, initialisation) as the same
run without it, up to the first accepted jump. Everything the jump core does that might
draw (iterating a loader to fix the guard's batches, a user's ``eval_fn``, a forecaster,
a BatchNorm refresh) runs inside :func:`keep_global_rng`.

Example:
    >>> import torch
    >>> a = torch.get_rng_state()
    >>> with keep_global_rng():
    ...     _ = torch.rand(3)
    >>> torch.equal(a, torch.get_rng_state())
    True
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import torch

__all__ = ["keep_global_rng"]


@contextlib.contextmanager
def keep_global_rng() -> Iterator[None]:
    """Restore torch's CPU (and initialised CUDA), numpy's and Python's global RNG state on exit."""
    py_state = random.getstate()
    np_random = _numpy_random()
    np_state = np_random.get_state() if np_random is not None else None
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if cuda else [], enabled=True):
        try:
            yield
        finally:
            random.setstate(py_state)
            if np_random is not None:
                np_random.set_state(np_state)


def _numpy_random():
    try:
        import numpy
    except ImportError:  # numpy is optional for the runtime
        return None
    return numpy.random
