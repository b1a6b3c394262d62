"""The nine held-out accel tasks as tuned-protocol workloads (one adapter over :mod:`.accel`).

:class:`HeldoutWorkload` takes an :class:`~gfm_accel.lab.tasks.accel.AccelTask` by name and
hands the tuned runner what :class:`~gfm_accel.lab.tasks.workload.WorkloadConfig` asks for,
with the fixed protocol's own pieces: the model (:func:`~gfm_accel.lab.tasks.accel.build_model`),
the data cut (:func:`gfm_accel.lab.datasets.load_split`: train / guard / val, fixed), the
optimizer name, lr and weight decay.

- Budget in optimizer steps: the task's epochs times ``ceil(N_train / batch_size)`` (the
  fixed protocol keeps the last, smaller batch; here every batch is full, drawn from a fresh
  permutation per epoch, so the step count is the same and each step costs the same).
- Validation (the targets' split): the ``val`` split in fixed batches; guard (the jump
  guard): the ``guard`` split, which is cut apart from ``val`` and never overlaps it.
- Schedule: the recipe's default is ``constant`` (the tasks were defined without one); the
  tuned grid also runs ``warmup_cosine`` with ``warmup`` (5 %) of the budget.

Example:
    >>> w = HeldoutWorkload("vit_digits")
    >>> w.optimizer, w.lr, w.total_steps, w.steps_per_epoch
    ('adamw', 0.002, 200, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from ..._config import JsonConfig
from ..datasets import Split, load_split
from .accel import ALL_TASKS, TASKS, TEST_TASKS, VALIDATION_TASKS, AccelTask, build_model
from .workload import Batch, WorkloadConfig, seeded_init

__all__ = ["HeldoutWorkload", "HELDOUT_NAMES", "EVAL_BATCH"]

#: The nine held-out tasks in table order: the main set, then validation, then test.
HELDOUT_NAMES: tuple[str, ...] = (*TASKS, *VALIDATION_TASKS, *TEST_TASKS)

#: Batch size of the fixed validation and guard batches.
EVAL_BATCH = 1000


@dataclass
class HeldoutWorkload(WorkloadConfig, JsonConfig):
    """One held-out accel task as a workload.

    Attributes:
        task: an :data:`~gfm_accel.lab.tasks.accel.ALL_TASKS` name.
        optimizer, lr, weight_decay, batch_size: ``None``: the task's own (filled in).
        total_steps: ``None``: the task's epochs in optimizer steps; or a smaller budget.
        schedule, warmup: the default schedule (``constant``) and the warmup fraction that
            ``warmup_cosine`` uses.
        limit: keep at most this many training samples (tests).
    """

    task: str = "mlp_mnist1d"
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    total_steps: int | None = None
    batch_size: int | None = None
    schedule: str = "constant"
    warmup: float = 0.05
    limit: int | None = None
    name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.task not in ALL_TASKS:
            raise ValueError(f"HeldoutWorkload: unknown task {self.task!r}; choose from {sorted(ALL_TASKS)}")
        t = self.spec
        self.name = t.name
        self.optimizer = t.optimizer if self.optimizer is None else self.optimizer
        self.lr = t.lr if self.lr is None else self.lr
        self.weight_decay = t.weight_decay if self.weight_decay is None else self.weight_decay
        self.batch_size = t.batch_size if self.batch_size is None else self.batch_size
        if self.total_steps is None:
            self.total_steps = t.epochs * self.steps_per_epoch
        self.check_recipe()

    @property
    def spec(self) -> AccelTask:
        """The fixed protocol's task definition."""
        return ALL_TASKS[self.task]

    def split(self) -> Split:
        """The task's train / guard / val data (cached by :func:`load_split`)."""
        return load_split(self.spec.dataset, self.limit)

    @property
    def steps_per_epoch(self) -> int:
        """``ceil(N_train / batch_size)``: the fixed protocol's optimizer steps per epoch."""
        return math.ceil(len(self.split().x_train) / (self.batch_size or self.spec.batch_size))

    def init_model(self, seed: int) -> nn.Module:
        """The fixed protocol's model for ``seed`` (:func:`build_model` seeds itself; the global RNG is forked)."""
        return seeded_init(seed, lambda: build_model(self.spec, self.split(), seed))

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        """The ``val`` and ``guard`` splits in fixed batches of :data:`EVAL_BATCH`."""
        s = self.split()
        return (list(zip(s.x_val.split(EVAL_BATCH), s.y_val.split(EVAL_BATCH))),
                list(zip(s.x_guard.split(EVAL_BATCH), s.y_guard.split(EVAL_BATCH))))

    def train_batches(self, seed: int) -> Iterator[Batch]:
        """Full batches from a fresh permutation per epoch (generator seeded ``1000 + seed``, as the fixed protocol)."""
        s = self.split()
        g = torch.Generator().manual_seed(1000 + seed)
        n = len(s.x_train)
        size = min(self.batch_size, n)
        while True:
            perm = torch.randperm(n, generator=g)
            # the permutation's tail tops up the last batch, so every epoch has steps_per_epoch full batches
            perm = torch.cat([perm, perm[: (-n) % size]])
            for i in range(0, len(perm), size):
                idx = perm[i : i + size]
                yield s.x_train[idx], s.y_train[idx]
