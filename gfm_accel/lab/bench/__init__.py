"""Benchmark runners and their statistics (``gfm_accel.lab.bench.stats``: the tuned protocol's numbers)."""

__all__: list[str] = []
