"""gfm_accel: Gradient Flow Matching training accelerator for PyTorch.

Record a live model's weights, forecast where they are heading with a flow-matching
vector field, and jump the model there, guarded.

Public names are loaded lazily (PEP 562) so ``import gfm_accel`` stays light and never
imports transformers or lightning.

Example:
    >>> import torch, gfm_accel
    >>> model = torch.nn.Linear(2, 1)
    >>> gfm_accel.flatten_params(model).shape
    torch.Size([3])
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ParamSpec": "gfm_accel.params",
    "ParamEntry": "gfm_accel.params",
    "ParamLayoutError": "gfm_accel.params",
    "flatten_params": "gfm_accel.params",
    "assign_params": "gfm_accel.params",
    "Trajectories": "gfm_accel.trajectories",
    "TrajectoryFormatError": "gfm_accel.trajectories",
    "save_trajectories": "gfm_accel.trajectories",
    "load_trajectories": "gfm_accel.trajectories",
    "WeightRecorder": "gfm_accel.recorder",
    "Forecaster": "gfm_accel.forecast.base",
    "LastValueForecaster": "gfm_accel.forecast.simple",
    "LinearExtrapolationForecaster": "gfm_accel.forecast.simple",
    "LineFitForecaster": "gfm_accel.forecast.simple",
    "GFMForecaster": "gfm_accel.forecast.forecaster",
    "GFMJump": "gfm_accel.jump",
    "pretrained_forecaster": "gfm_accel.pretrained",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gfm_accel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
