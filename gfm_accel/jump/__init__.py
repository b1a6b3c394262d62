"""Live jumps: record a model's weights, forecast, and jump, guarded (framework-free core).

Example:
    >>> from gfm_accel.jump import GFMJump, JumpConfig
    >>> JumpConfig().mode
    'periodic'
"""

from .bn import has_batchnorm, refresh_batchnorm
from .config import JumpConfig, JumpRecord
from .core import STATE_FORMAT, GFMJump

__all__ = ["GFMJump", "JumpConfig", "JumpRecord", "STATE_FORMAT", "refresh_batchnorm", "has_batchnorm"]
