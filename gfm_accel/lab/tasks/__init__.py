"""Task definitions of the lab's benchmarks: each task is data + model + optimizer + budget.

:mod:`gfm_accel.lab.tasks.accel` holds the held-out tasks of ``gfm-accel bench accel``.
"""

__all__: list[str] = []
