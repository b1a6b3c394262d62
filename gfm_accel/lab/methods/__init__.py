"""Competitor training algorithms for the tuned benchmark, behind one interface (:class:`Method`).

Each method wraps (or replaces) the user's base optimizer and schedule and comes from its own
library: ``plain`` (the tuned baseline), ``ema`` (``torch.optim.swa_utils``), ``lookahead``
(``pytorch_optimizer``), ``schedulefree`` (``schedulefree``), ``outer_nesterov`` (a few lines
here). :class:`Jump` puts a :class:`~gfm_accel.jump.GFMJump` with any forecaster behind the same
interface (the benchmark's ``gfm``, ``linefit`` and ``wnn``).

Example:
    >>> sorted(METHODS)
    ['ema', 'lookahead', 'outer_nesterov', 'plain', 'schedulefree']
    >>> build_method("lookahead", k=5, alpha=0.5)
    Lookahead(alpha=0.5, k=5)
    >>> len(METHODS["ema"].grid())
    3
"""

from __future__ import annotations

import inspect
from typing import Any

from .base import Method, OptimizerFactory, Plain, require_package
from .ema import EMA
from .jump import Jump
from .lookahead import Lookahead
from .outer_nesterov import OuterNesterov
from .schedulefree import ScheduleFree

__all__ = [
    "Method",
    "OptimizerFactory",
    "Plain",
    "EMA",
    "Lookahead",
    "ScheduleFree",
    "OuterNesterov",
    "Jump",
    "METHODS",
    "build_method",
    "require_package",
]

#: Method name -> class, for the methods that need no forecaster.
METHODS: dict[str, type[Method]] = {cls.NAME: cls for cls in (Plain, EMA, Lookahead, ScheduleFree, OuterNesterov)}


def build_method(name: str, **hparams: Any) -> Method:
    """A fresh, unattached method by name.

    Args:
        name: a key of :data:`METHODS`.
        **hparams: its hyperparameters (defaults: the method's recommended settings).

    Returns:
        The :class:`Method` (attach it to one run).

    Raises:
        ValueError: an unknown name or hyperparameter.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ValueError(f"unknown {name} hyperparameter(s) {unknown}; valid: {valid or 'none'}")
    return cls(**hparams)
