"""Live jumps: record a model's weights, forecast, and jump, guarded (framework-free core).

* :mod:`~gfm_accel.jump.core`: :class:`GFMJump`, the object a training loop calls;
* :mod:`~gfm_accel.jump.schedule`: counters, when a jump is due, its target ``m``;
* :mod:`~gfm_accel.jump.guard`: exact backup and restore, the candidate search, fixed-batch losses;
* :mod:`~gfm_accel.jump.forecasting`: the forecast step (rank 0 forecasts, every rank gets it);
* :mod:`~gfm_accel.jump.momentum`: ``outer_momentum``'s velocity (the last accepted displacement);
* :mod:`~gfm_accel.jump.outcome`: :class:`Outcome`, what became of an attempt;
* :mod:`~gfm_accel.jump.config`: :class:`JumpConfig`, :class:`JumpRecord`.

Example:
    >>> from gfm_accel.jump import GFMJump, JumpConfig
    >>> JumpConfig().mode
    'periodic'
"""

from .bn import has_batchnorm, refresh_batchnorm
from .config import JumpConfig, JumpRecord
from .core import STATE_FORMAT, GFMJump
from .outcome import Outcome
from .schedule import JumpSchedule, target_m

__all__ = [
    "GFMJump",
    "JumpConfig",
    "JumpRecord",
    "JumpSchedule",
    "Outcome",
    "STATE_FORMAT",
    "target_m",
    "refresh_batchnorm",
    "has_batchnorm",
]
