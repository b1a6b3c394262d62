"""Baselines for weight forecasting (Sec. 5, App. A, Table 5) behind one interface.

Every baseline is fitted on training trajectories ``(N, T, D)`` to map ``w_0..w_n`` to
``w_m`` and predicts ``(B, n+1, D) -> (B, D)``; it is also a
:class:`~gfm_accel.forecast.base.Forecaster`. Build one by name with
:func:`make_baseline`; :data:`BASELINES` lists them all.

Example:
    >>> import torch
    >>> from gfm_accel.lab.baselines import make_baseline
    >>> w = torch.randn(6, 8, 2)
    >>> make_baseline("ridge").fit(w, n=2, m=7).forecast(w[0, :3], m=7).shape
    torch.Size([2])
"""

from __future__ import annotations

from . import base as _base
from .base import *  # noqa: F401,F403  (base.__all__: the interface and its helpers)
from .neural import DLinear, Introspection, LFD2, LSTMBaseline, TorchBaseline, TransformerBaseline, introspection_indices
from .reference import LastValue, Ridge, RidgeCoord, TrainMean, coordinate_window, ridge_dual, ridge_solve
from .coord import CoordinateNetBaseline, IntrospectionCoord, LFD2Coord, WNN, introspection_features, wnn_features

__all__ = [
    "BASELINES",
    "PAPER_BASELINES",
    "REFERENCE_BASELINES",
    "COORDINATE_VARIANTS",
    "make_baseline",
    *_base.__all__,
    "TorchBaseline",
    "coordinate_window",
    "ridge_solve",
    "ridge_dual",
    "introspection_indices",
    "wnn_features",
    "introspection_features",
    "CoordinateNetBaseline",
    "IntrospectionCoord",
    "LFD2Coord",
    "Introspection",
    "DLinear",
    "LFD2",
    "WNN",
    "LSTMBaseline",
    "TransformerBaseline",
    "LastValue",
    "TrainMean",
    "Ridge",
    "RidgeCoord",
]

#: name -> class: the paper's models (Table 1 order), the references, the per-coordinate variants.
BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls
    for cls in (
        Introspection,
        DLinear,
        LFD2,
        WNN,
        LSTMBaseline,
        TransformerBaseline,
        LastValue,
        TrainMean,
        Ridge,
        RidgeCoord,
        IntrospectionCoord,
        LFD2Coord,
    )
}

#: The six baselines of the paper's Table 1, in its row order.
PAPER_BASELINES: tuple[str, ...] = ("introspection", "dlinear", "lfd2", "wnn", "lstm", "transformer")

#: Per-coordinate readings of the paper's Introspection and LFD-2 (serve any D).
COORDINATE_VARIANTS: tuple[str, ...] = ("introspection_coord", "lfd2_coord")

#: The simple references (no or closed-form training).
REFERENCE_BASELINES: tuple[str, ...] = ("last", "mean", "ridge", "ridge_coord")


def make_baseline(name: str, **kwargs) -> Baseline:
    """Build a baseline by registry name.

    Args:
        name: one of :data:`BASELINES` (case-insensitive, ``-`` accepted for ``_``).
        **kwargs: passed to the class (e.g. ``alpha`` for ``ridge``, ``hidden`` for ``lstm``).

    Returns:
        An unfitted baseline.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    key = str(name).strip().lower().replace("-", "_")
    cls = BASELINES.get(key)
    if cls is None:
        raise ValueError(f"unknown baseline {name!r}; known baselines: {', '.join(BASELINES)}")
    return cls(**kwargs)
