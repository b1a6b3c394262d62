"""Task (workload) definitions of the lab's benchmarks: data + model + recipe + budget.

* :mod:`gfm_accel.lab.tasks.accel`: the held-out tasks of ``gfm-accel bench accel``;
* :mod:`gfm_accel.lab.tasks.workload`: what every tuned-protocol workload hands the runner;
* :mod:`gfm_accel.lab.tasks.heldout`: the held-out accel tasks as tuned-protocol workloads;
* :mod:`gfm_accel.lab.tasks.char_gpt`, :mod:`gfm_accel.lab.tasks.resnet`: the two larger tasks;
* :mod:`gfm_accel.lab.tasks.fresh`: the fresh test tasks of the forecaster issue (set ``fresh``).

Import them by module (``from gfm_accel.lab.tasks.char_gpt import CharGPT``).
"""

__all__: list[str] = []
