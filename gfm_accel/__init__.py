"""gfm_accel: Gradient Flow Matching training accelerator for PyTorch.

Record a live model's weights, forecast where they are heading with a flow-matching
vector field, and jump the model there, guarded.

Public names are loaded lazily (PEP 562) so ``import gfm_accel`` stays light and never
imports transformers or lightning.

Two layers (``docs/architecture.md``): the runtime that a training script imports (this
package minus ``gfm_accel.lab``) and the offline lab (``gfm_accel.lab``: dataset
generators, baselines, tasks, benchmarks, the zoo, the demo). The runtime never imports
the lab.

Example:
    >>> import gfm_accel
    >>> gfm_accel.JumpConfig().unit
    'step'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it. Only what a training script needs; the rest
#: (parameter layout, trajectory files, flow math, configs of the fields) lives in its
#: submodule: gfm_accel.params, gfm_accel.trajectories, gfm_accel.flow, gfm_accel.forecast.
_EXPORTS: dict[str, str] = {
    "GFMJump": "gfm_accel.jump",
    "JumpConfig": "gfm_accel.jump",
    "JumpRecord": "gfm_accel.jump",
    "WeightRecorder": "gfm_accel.recorder",
    "GFMForecaster": "gfm_accel.forecast.forecaster",
    "pretrained_forecaster": "gfm_accel.pretrained",
    "Forecaster": "gfm_accel.forecast.base",
    "LastValueForecaster": "gfm_accel.forecast.simple",
    "LinearExtrapolationForecaster": "gfm_accel.forecast.simple",
    "LineFitForecaster": "gfm_accel.forecast.simple",
    "FileFormatError": "gfm_accel._io",
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
