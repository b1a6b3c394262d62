"""The offline lab: trajectory-dataset generators, baselines, tasks, benchmarks, the zoo and the demo.

Nothing in the runtime (what a training script imports) imports this package. Layout:

* :mod:`gfm_accel.lab.datasets`: the one loading module for offline data (sklearn digits,
  mnist1d, CIFAR-10 through torchvision, Python standard-library text);
* :mod:`gfm_accel.lab.optim`: the one optimizer registry;
* :mod:`gfm_accel.lab.training`: the one training loop for classification tasks;
* :mod:`gfm_accel.lab.forecasters`: forecasters by name (``gfm``, ``linear``, ``linefit``, ...);
* :mod:`gfm_accel.lab.generate`: the paper's trajectory datasets (``gfm-accel generate``);
* :mod:`gfm_accel.lab.baselines`: the paper's competitor forecasters;
* :mod:`gfm_accel.lab.tasks`: task definitions (data + model + optimizer);
* :mod:`gfm_accel.lab.bench`: the benchmark runners (``gfm-accel bench``);
* :mod:`gfm_accel.lab.zoo` and :mod:`gfm_accel.lab.demo`.
"""

__all__: list[str] = []
