"""Benchmarks: the paper's tables and figures, and the live acceleration benchmark."""

from .common import BenchResult, write_result

__all__ = ["BenchResult", "write_result"]
