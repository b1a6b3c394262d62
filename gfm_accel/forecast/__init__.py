"""Forecasters: the contract, training-free references and the GFM forecaster."""

from .base import Forecaster, as_batch, check_prefix
from .simple import LastValueForecaster, LinearExtrapolationForecaster

__all__ = ["Forecaster", "as_batch", "check_prefix", "LastValueForecaster", "LinearExtrapolationForecaster"]
