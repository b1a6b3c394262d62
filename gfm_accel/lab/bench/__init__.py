"""Benchmark runners: the paper's tables and figures, the live acceleration benchmark, and the
tuned protocol's pieces (``stats``: its numbers; ``curves``: one measured run)."""

from .common import BenchResult, write_result

__all__ = ["BenchResult", "write_result"]
