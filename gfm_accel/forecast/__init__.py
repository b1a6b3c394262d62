"""Forecasters: the contract, training-free references and the GFM forecaster."""

from .base import Forecaster, as_batch, check_lr_profile, check_prefix
from .coordinate import CoordinateBackend, CoordinateConfig
from .dense import DenseBackend, DenseConfig, DenseField
from .forecaster import ForecasterBackend, GFMConfig, GFMForecaster
from .simple import LastValueForecaster, LineFitForecaster, LinearExtrapolationForecaster

__all__ = [
    "Forecaster",
    "as_batch",
    "check_prefix",
    "check_lr_profile",
    "LastValueForecaster",
    "LinearExtrapolationForecaster",
    "LineFitForecaster",
    "GFMForecaster",
    "GFMConfig",
    "ForecasterBackend",
    "DenseBackend",
    "DenseConfig",
    "DenseField",
    "CoordinateBackend",
    "CoordinateConfig",
]
