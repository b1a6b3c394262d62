"""The offline lab: datasets, tasks, competitor methods, schedules and benchmark runners.

The runtime (what a training script imports) never imports this package. Its subpackages
are imported by name (``gfm_accel.lab.methods``, ``gfm_accel.lab.tasks``, ...).
"""

__all__: list[str] = []
