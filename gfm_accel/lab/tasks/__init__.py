"""Task (workload) definitions of the lab's benchmarks.

``workload`` holds what every tuned-benchmark workload hands to the runner; ``char_gpt`` and
``resnet`` are the two larger tasks of the tuned protocol. Import them by module
(``from gfm_accel.lab.tasks.char_gpt import CharGPT``).
"""

__all__: list[str] = []
