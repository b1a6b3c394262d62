"""The zoo at tuned learning rates (issue 15): runs recorded the way users train.

Where :mod:`gfm_accel.lab.zoo` records epoch snapshots at fixed, low learning rates, this zoo
first finds each task's best learning rate and then records runs near it:

1. **Sweep** (per task, optimizer and schedule): the run's recipe at ``sweep_fraction`` of its
   budget (the schedule stretched over that shorter budget), on one seed (``sweep_seed``, not
   a recorded seed), at ``sweep_points`` learning rates a factor 2 apart centred on the task's
   default for that optimizer. The best lr has the lowest best validation loss (a diverged run
   scores +inf; ties go to the smaller lr). While the best lies on the grid's edge, one more
   point is added beyond it, at most ``max_widen`` times (the tuned protocol's rule).
2. **Record** the full budget at the best lr times each of ``multiples`` (0.5, 1, 2), under
   each schedule (``constant``; ``warmup_cosine``: 5 % linear warmup, cosine to 0), with each
   optimizer (``adam``, ``adamw`` with weight decay 0.01, ``sgdm``: SGD with momentum 0.9) and
   each seed. :class:`~gfm_accel.recorder.WeightRecorder` takes a snapshot every ``every``
   optimizer steps (``w_0`` included), so ``T = total_steps / every + 1``.

Families (:data:`ZOO_TASKS`; every model is small, a run takes seconds on one CPU thread):

======================  ============  =============================================  =====
task                    data          model                                          steps
======================  ============  =============================================  =====
``mlp_relu_digits``     digits        MLP 64-64-10, ReLU                             200
``mlp_tanh_digits``     digits        MLP 64-32-32-10, Tanh                          200
``preres8_digits``      digits        pre-activation residual CNN with BN, width 8   200
``preres16_digits``     digits        the same, width 16                             200
``gru_rows_digits``     digits        GRU reading the 8 rows (8 steps of 8 pixels)   200
``lstm_patch_mnist1d``  mnist1d       LSTM reading 4-sample patches (10 steps)       300
``tfm_rows_digits``     digits        post-norm Transformer encoder, row tokens      200
``chargpt_stdlib``      stdlib_text   causal char Transformer, 2 blocks of width 32  300
======================  ============  =============================================  =====

Exclusions (``tests/lab/test_zoo_tuned.py`` checks them by ``(data, arch)`` name against
:func:`benchmark_pairs`): no zoo task is one of the tuned benchmark's tasks: the nine held-out
tasks (``mlp``/``cnn1d``/``gru``/``vit`` on mnist1d, ``vit``/``cnn1d``/``lstm`` on digits),
``char_gpt`` (a 1.26M-parameter byte GPT on the top-level standard library,
``stdlib_corpus``), ``resnet_digits`` (a post-activation ResNet with 603k parameters) and the
fresh test tasks (:mod:`gfm_accel.lab.tasks.fresh`). Where a family must reuse data (digits is
the only offline 2-D image set), the architecture differs: pre-activation residual blocks at
widths 8 and 16 (about 5k and 20k parameters) instead of ``resnet_digits``'s post-activation
ResNet; recurrent nets reading rows or patches instead of one sample per step; a Transformer
over row tokens with post-norm and mean pooling instead of the patch ViT. The char model reads
the zoo's own 96-symbol text (five top-level modules, which are also inside ``char_gpt``'s
corpus: the text overlaps, the model, vocabulary and size do not).

Data cuts: digits and mnist1d come from :func:`gfm_accel.lab.datasets.load_split` (train /
guard / val); the text from :func:`gfm_accel.lab.datasets.char_tensors` (90 / 10).

File layout of a build folder::

    plan.json                                   the plan (a folder holds one plan)
    sweeps/<task>__<opt>__<schedule>.json       every sweep point and the chosen lr
    <task>__<opt>__<schedule>__x<mult>.safetensors   one trajectory file per group, N = seeds
    <task>__<opt>__<schedule>__x<mult>.json     the group's run records, seconds, sha256
    manifest.json                               runs, files, sha256, runtime, command, machine

Each trajectory file (:func:`gfm_accel.trajectories.save_trajectories`) holds ``weights``
``(N, T, D)``, ``loss`` (the mean training mini-batch loss of the ``every`` steps that led to
each snapshot, as a training log shows it; at ``t = 0`` the loss of the first batch at
``w_0``), ``val_loss`` and the extra tensors ``val_acc`` and ``lr_sum`` (float32 ``(N, T)``:
``lr_sum[i, t]`` is the sum of param group 0's learning rate over the optimizer steps between
snapshots ``t - 1`` and ``t``, ``lr_sum[:, 0] = 0``), and the metadata ``task``, ``data``,
``arch``, ``optimizer``, ``lr``, ``lr_multiple``, ``schedule``, ``warmup``, ``seeds`` (one per
trajectory), ``steps`` (the optimizer step of each snapshot), ``total_steps``, ``every``,
``spec`` and ``runs``. Diverged runs (a NaN/Inf loss or weight) stop early and are left out of
the file; the group's JSON names them.

The build is resumable (a group whose JSON exists is skipped; a sweep whose JSON exists is
reused) and can be split over processes with ``shard=(i, n)`` (sweep keys ``j`` with
``j % n == i``). The global RNG is never used: models are initialized under
``torch.random.fork_rng``, batches come from per-run ``torch.Generator`` objects.

Example:
    >>> plan = ZooPlan.quick()
    >>> plan.n_runs, plan.every, ZooPlan().n_runs
    (24, 5, 576)
    >>> ZooPlan.from_json(plan.to_json()) == plan
    True
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from .._config import JsonConfig
from ..recorder import WeightRecorder
from ..trajectories import save_trajectories
from .datasets import char_tensors, load_split
from .schedules import SCHEDULES, build_scheduler
from .tasks.fresh import FRESH_TASKS
from .tasks.workload import Batch, WorkloadConfig, shuffled_batches, spaced_window_batches, window_batches
from .zoo import ZOO_LRS, CharGPT, _mlp, make_optimizer

__all__ = [
    "ZooTask",
    "ZOO_TASKS",
    "PreActResNet",
    "SeqRNN",
    "RowTransformer",
    "ZooPlan",
    "RecordedRun",
    "record_run",
    "sweep_lr",
    "build_tuned_zoo",
    "write_manifest",
    "estimate_runtime",
    "benchmark_pairs",
    "add_arguments",
    "run",
]

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "gfm_accel.zoo_tuned"
DATA = ("digits", "mnist1d", "stdlib_text")
ARCHS = ("mlp", "preact_resnet", "gru_rows", "lstm_patch", "tfm_rows", "chargpt_small")


# --------------------------------------------------------------------------- models
class _PreActBlock(nn.Module):
    """BN-ReLU-conv twice, added to the (projected) input (He et al. 2016, identity mappings)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H/s, W/s)
        h = torch.relu(self.bn1(x))
        return self.conv2(torch.relu(self.bn2(self.conv1(h)))) + self.shortcut(h)


class PreActResNet(nn.Module):
    """A pre-activation residual CNN for 8x8 images: stem, a block at ``width``, a strided block at ``2 * width``.

    Example:
        >>> PreActResNet(8)(torch.zeros(2, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.blocks = nn.Sequential(_PreActBlock(width, width, 1), _PreActBlock(width, 2 * width, 2))
        self.bn = nn.BatchNorm2d(2 * width)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8, 8) or (B, 1, 8, 8) -> (B, classes)
        h = self.blocks(self.stem(x.reshape(len(x), 1, 8, 8)))
        return self.head(torch.relu(self.bn(h)).mean(dim=(2, 3)))


class SeqRNN(nn.Module):
    """A GRU or LSTM classifier reading its input as a sequence of ``step`` features (rows, patches).

    Example:
        >>> SeqRNN("lstm", step=4, hidden=8)(torch.zeros(2, 40)).shape
        torch.Size([2, 10])
    """

    def __init__(self, cell: str, step: int, hidden: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.step = step
        self.rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](step, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, ...) with a multiple of ``step`` values -> (B, classes)
        _, h = self.rnn(x.reshape(len(x), -1, self.step))
        h = h[0] if isinstance(h, tuple) else h  # the LSTM returns (h, c)
        return self.head(h[-1])


class RowTransformer(nn.Module):
    """A post-norm Transformer encoder over the 8 rows of an 8x8 image, mean-pooled (no class token).

    Example:
        >>> RowTransformer(dim=16, depth=1)(torch.zeros(2, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(8, dim)
        self.pos = nn.Parameter(torch.randn(1, 8, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=False)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8, 8) -> (B, classes)
        return self.head(self.blocks(self.embed(x.reshape(len(x), 8, 8)) + self.pos).mean(1))


# --------------------------------------------------------------------------- tasks
@dataclass
class ZooTask(WorkloadConfig, JsonConfig):
    """One zoo task: data, architecture and size, its budget and its lr grid centres.

    Attributes:
        name: the task name.
        data: ``"digits"``, ``"mnist1d"`` or ``"stdlib_text"``.
        arch: one of ``mlp``, ``preact_resnet``, ``gru_rows``, ``lstm_patch``, ``tfm_rows``,
            ``chargpt_small``.
        width, depth, act: the model's size (``act``: the MLP's ``relu`` or ``tanh``).
        lr: the sweep's centre for ``adam``/``adamw`` (``rmsprop``: half of it).
        sgd_lr: the sweep's centre for ``sgdm``/``sgd``.
        optimizer, weight_decay, total_steps, batch_size, schedule, warmup: the recipe fields of
            :class:`~gfm_accel.lab.tasks.workload.WorkloadConfig` (the zoo overrides optimizer,
            lr and schedule per run; weight decay comes from :func:`gfm_accel.lab.zoo.make_optimizer`).
        context: the char model's sequence length.
        val_size: validation examples (sequences for the char model) evaluated at each snapshot.

    Example:
        >>> t = ZOO_TASKS["gru_rows_digits"]
        >>> t.center_lr("adam"), t.center_lr("sgdm"), t.make_model().rnn.input_size
        (0.004, 0.1, 8)
    """

    name: str = "mlp_relu_digits"
    data: str = "digits"
    arch: str = "mlp"
    width: int = 64
    depth: int = 1
    act: str = "relu"
    lr: float = 2e-3
    sgd_lr: float = 0.05
    optimizer: str = "adam"
    weight_decay: float = 0.0
    total_steps: int = 200
    batch_size: int = 64
    schedule: str = "constant"
    warmup: float = 0.05
    context: int = 32
    val_size: int = 400

    def __post_init__(self) -> None:
        self.check_recipe()
        self.check_positive_ints("width", "depth", "context", "val_size")
        if self.data not in DATA:
            raise ValueError(f"ZooTask: unknown data {self.data!r}; choose from {', '.join(DATA)}")
        if self.arch not in ARCHS:
            raise ValueError(f"ZooTask: unknown arch {self.arch!r}; choose from {', '.join(ARCHS)}")
        if (self.data == "stdlib_text") != (self.arch == "chargpt_small"):
            raise ValueError(f"ZooTask: arch {self.arch!r} does not fit data {self.data!r}")
        if self.act not in ("relu", "tanh"):
            raise ValueError(f"ZooTask: act must be 'relu' or 'tanh', got {self.act!r}")
        if not (isinstance(self.sgd_lr, (int, float)) and self.sgd_lr > 0):
            raise ValueError(f"ZooTask: sgd_lr must be positive, got {self.sgd_lr!r}")

    def center_lr(self, optimizer: str) -> float:
        """The centre of ``optimizer``'s sweep grid."""
        if optimizer not in ZOO_LRS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(ZOO_LRS)}")
        if optimizer in ("sgd", "sgdm"):
            return float(self.sgd_lr)
        return float(self.lr) / (2.0 if optimizer == "rmsprop" else 1.0)

    def make_model(self) -> nn.Module:
        if self.arch == "mlp":
            return nn.Sequential(nn.Flatten(), _mlp(f"d{self.depth}-w{self.width}-{self.act}"))
        if self.arch == "preact_resnet":
            return PreActResNet(self.width)
        if self.arch == "gru_rows":
            return SeqRNN("gru", 8, self.width)
        if self.arch == "lstm_patch":
            return SeqRNN("lstm", 4, self.width)
        if self.arch == "tfm_rows":
            return RowTransformer(self.width, self.depth)
        return CharGPT(vocab=96, d=self.width, layers=self.depth, ctx=self.context)

    def _text(self) -> tuple[torch.Tensor, torch.Tensor]:
        return char_tensors(self.context)

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        """``val_size`` validation examples in one batch; the guard split (the zoo never reads it)."""
        if self.data == "stdlib_text":
            train, val = self._text()
            return (spaced_window_batches(val, 1, self.val_size, self.context),
                    spaced_window_batches(train, 1, self.val_size, self.context))
        s = load_split(self.data)
        return [(s.x_val[: self.val_size], s.y_val[: self.val_size])], [(s.x_guard, s.y_guard)]

    def train_batches(self, seed: int) -> Iterator[Batch]:
        if self.data == "stdlib_text":
            return window_batches(self._text()[0], self.batch_size, self.context, seed)
        s = load_split(self.data)
        return shuffled_batches(s.x_train, s.y_train, self.batch_size, seed)


def _task(name: str, data: str, arch: str, **kw: Any) -> ZooTask:
    return ZooTask(name=name, data=data, arch=arch, **kw)


#: The zoo's tasks by name (module docstring: the table and the exclusions).
ZOO_TASKS: dict[str, ZooTask] = {t.name: t for t in (
    _task("mlp_relu_digits", "digits", "mlp", width=64, depth=1, act="relu", lr=2e-3, sgd_lr=0.1),
    _task("mlp_tanh_digits", "digits", "mlp", width=32, depth=2, act="tanh", lr=2e-3, sgd_lr=0.1),
    _task("preres8_digits", "digits", "preact_resnet", width=8, lr=4e-3, sgd_lr=0.1),
    _task("preres16_digits", "digits", "preact_resnet", width=16, lr=4e-3, sgd_lr=0.1),
    _task("gru_rows_digits", "digits", "gru_rows", width=32, lr=4e-3, sgd_lr=0.1),
    _task("lstm_patch_mnist1d", "mnist1d", "lstm_patch", width=48, lr=4e-3, sgd_lr=0.1, total_steps=300),
    _task("tfm_rows_digits", "digits", "tfm_rows", width=32, depth=2, lr=2e-3, sgd_lr=0.05),
    _task("chargpt_stdlib", "stdlib_text", "chargpt_small", width=32, depth=2, lr=3e-3, sgd_lr=0.1,
          total_steps=300, batch_size=32, val_size=64),
)}


def benchmark_pairs() -> dict[str, tuple[str, str]]:
    """``(data, arch)`` of every task of the tuned benchmark, by task name.

    The nine held-out tasks (their :class:`~gfm_accel.lab.tasks.accel.AccelTask` fields), the
    two larger tasks and the fresh test tasks (their ``data`` and ``arch`` fields).
    """
    from .tasks.accel import ALL_TASKS

    pairs = {name: (t.dataset, t.arch) for name, t in ALL_TASKS.items()}
    pairs["char_gpt"] = ("stdlib_corpus", "gpt")  # tasks/char_gpt.py: GPT on datasets.stdlib_corpus()
    pairs["resnet_digits"] = ("digits", "resnet")  # tasks/resnet.py: post-activation ResNet, default data
    for name, cls in FRESH_TASKS.items():
        w = cls()
        pairs[name] = (w.data, w.arch)
    return pairs


# --------------------------------------------------------------------------- the plan
@dataclass
class ZooPlan(JsonConfig):
    """What a tuned-zoo build runs.

    Attributes:
        tasks: :data:`ZOO_TASKS` names.
        optimizers: :func:`gfm_accel.lab.zoo.make_optimizer` names.
        schedules: :data:`~gfm_accel.lab.schedules.SCHEDULES` names.
        multiples: factors of the swept best lr that are recorded.
        seeds: recorded seeds (one trajectory each per group).
        every: optimizer steps between snapshots.
        steps: every task's budget (``None``: each task's own); a multiple of ``every``.
        warmup: ``warmup_cosine``'s warmup fraction.
        sweep_points: the sweep grid's initial points (a factor 2 apart).
        sweep_fraction: the sweep's budget as a fraction of the run's (rounded to ``every``).
        sweep_seed: the sweep's one seed.
        max_widen: most grid widenings per sweep.

    Example:
        >>> ZooPlan(tasks=("mlp_relu_digits",), seeds=(0,), steps=20).n_runs
        18
    """

    tasks: tuple[str, ...] = tuple(ZOO_TASKS)
    optimizers: tuple[str, ...] = ("adam", "adamw", "sgdm")
    schedules: tuple[str, ...] = SCHEDULES
    multiples: tuple[float, ...] = (0.5, 1.0, 2.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    every: int = 5
    steps: int | None = None
    warmup: float = 0.05
    sweep_points: int = 5
    sweep_fraction: float = 0.5
    sweep_seed: int = 1000
    max_widen: int = 3

    def __post_init__(self) -> None:
        for name in ("tasks", "optimizers", "schedules", "multiples", "seeds"):
            v = tuple(getattr(self, name))
            setattr(self, name, v)
            if not v or len(set(v)) != len(v):
                raise ValueError(f"ZooPlan: {name} must be a non-empty sequence without repeats, got {v!r}")
        for group, known in (("tasks", ZOO_TASKS), ("optimizers", ZOO_LRS), ("schedules", SCHEDULES)):
            bad = [x for x in getattr(self, group) if x not in known]
            if bad:
                raise ValueError(f"ZooPlan: unknown {group} {bad}; choose from {sorted(known)}")
        if any(isinstance(m, bool) or not isinstance(m, (int, float)) or not m > 0 for m in self.multiples):
            raise ValueError(f"ZooPlan: multiples must be positive numbers, got {self.multiples!r}")
        self.multiples = tuple(float(m) for m in self.multiples)
        ints = (*self.seeds, self.sweep_seed)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in ints):
            raise ValueError(f"ZooPlan: seeds and sweep_seed must be integers >= 0, got {ints!r}")
        for name, low in (("every", 1), ("sweep_points", 1), ("max_widen", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"ZooPlan: {name} must be an integer >= {low}, got {v!r}")
        if not (isinstance(self.sweep_fraction, (int, float)) and 0 < self.sweep_fraction <= 1):
            raise ValueError(f"ZooPlan: sweep_fraction must be in (0, 1], got {self.sweep_fraction!r}")
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1):
            raise ValueError(f"ZooPlan: warmup must be in [0, 1), got {self.warmup!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"ZooPlan: steps must be a positive integer or None, got {self.steps!r}")
        for t in self.tasks:
            n = self.task(t).total_steps
            if n % self.every:
                raise ValueError(f"ZooPlan: task {t}'s budget of {n} steps is not a multiple of every={self.every}")

    @classmethod
    def quick(cls) -> "ZooPlan":
        """``--quick``: two tasks (an MLP and a GRU), adam and sgdm, both schedules, 3 multiples, seed 0, 40 steps.

        24 runs and 12 sweeps of 3 points (at most one widening): seconds on one CPU thread.
        """
        return cls(tasks=("mlp_relu_digits", "gru_rows_digits"), optimizers=("adam", "sgdm"), seeds=(0,), steps=40,
                   sweep_points=3, max_widen=1)

    def task(self, name: str) -> ZooTask:
        """Task ``name`` with this plan's budget and warmup."""
        t = ZOO_TASKS[name]
        return replace(t, total_steps=self.steps or t.total_steps, warmup=self.warmup)

    def sweep_steps(self, name: str) -> int:
        """The sweep budget of task ``name``: ``sweep_fraction`` of its steps, rounded to a multiple of ``every``."""
        n = self.task(name).total_steps * self.sweep_fraction
        return max(self.every, int(round(n / self.every)) * self.every)

    def sweep_keys(self) -> list[tuple[str, str, str]]:
        """Every ``(task, optimizer, schedule)`` that gets a sweep, in build order."""
        return [(t, o, s) for t in self.tasks for o in self.optimizers for s in self.schedules]

    @property
    def n_runs(self) -> int:
        """Recorded runs (sweeps not counted)."""
        return len(self.sweep_keys()) * len(self.multiples) * len(self.seeds)


def _stem(task: str, optimizer: str, schedule: str, multiple: float | None = None) -> str:
    return f"{task}__{optimizer}__{schedule}" + ("" if multiple is None else f"__x{multiple:g}")


# --------------------------------------------------------------------------- one run
@dataclass
class RecordedRun:
    """One recorded run.

    Attributes:
        weights: ``(T, D)`` float32 snapshots (``(1, D)``, the last one, when not all were kept).
        loss, val_loss, val_acc, lr_sum: ``(T,)`` per snapshot (module docstring).
        steps: the optimizer step of each snapshot.
        spec: the parameter layout.
        seconds: wall time of the training loop, evaluations included.
        finite: False when the run diverged (it then stopped early).
    """

    weights: torch.Tensor
    loss: torch.Tensor
    val_loss: torch.Tensor
    val_acc: torch.Tensor
    lr_sum: torch.Tensor
    steps: list[int]
    spec: Any
    seconds: float
    finite: bool

    @property
    def best_val_loss(self) -> float:
        """The lowest validation loss (+inf for a diverged run)."""
        return float(self.val_loss.min()) if self.finite else math.inf


def record_run(task: ZooTask, optimizer: str, lr: float, schedule: str, seed: int, *, every: int,
               keep_weights: bool = True) -> RecordedRun:
    """Train ``task`` for ``task.total_steps`` optimizer steps and snapshot it every ``every`` steps.

    Args:
        task: the task (its budget and warmup are used).
        optimizer: a :func:`gfm_accel.lab.zoo.make_optimizer` name.
        lr: the base learning rate.
        schedule: a :data:`~gfm_accel.lab.schedules.SCHEDULES` name (one scheduler step per optimizer step).
        seed: initializes the model (under ``fork_rng``) and seeds the batch generator.
        every: optimizer steps between snapshots; must divide the budget.
        keep_weights: keep every snapshot (else only the last: sweeps).

    Returns:
        The :class:`RecordedRun`.
    """
    total = task.total_steps
    if isinstance(every, bool) or not isinstance(every, int) or every < 1 or total % every:
        raise ValueError(f"every must be a positive integer dividing the budget of {total} steps, got {every!r}")
    t0 = time.perf_counter()
    run = task.build(seed)
    model = run.model
    opt = make_optimizer(optimizer, model.parameters(), lr)
    sched = build_scheduler(opt, schedule, total, task.warmup)
    rec = WeightRecorder(model, every=every, keep="all" if keep_weights else 1)
    ev = run.evaluate(model)
    val, acc, lr_sum, loss_log = [ev.loss], [ev.accuracy], [0.0], [math.nan]
    lr_acc, window, finite = 0.0, [], math.isfinite(ev.loss)
    for _ in range(total if finite else 0):
        loss = run.loss(model, next(run.batches))
        value = float(loss.detach())
        if not math.isfinite(value):
            finite = False
            break
        if math.isnan(loss_log[0]):
            loss_log[0] = value  # the first batch's loss at w_0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lr_acc += float(opt.param_groups[0]["lr"])  # the lr this step uses (the scheduler steps after it)
        opt.step()
        sched.step()
        window.append(value)
        if rec.on_step():
            ev = run.evaluate(model)
            val.append(ev.loss), acc.append(ev.accuracy), lr_sum.append(lr_acc), loss_log.append(sum(window) / len(window))
            lr_acc, window = 0.0, []
            if not math.isfinite(ev.loss):
                finite = False
                break
    weights = rec.weights()
    finite = finite and bool(torch.isfinite(weights).all())
    f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    return RecordedRun(weights, f32(loss_log), f32(val), f32(acc), f32(lr_sum), rec.steps if keep_weights else
                       list(range(0, every * len(val), every)), rec.spec, time.perf_counter() - t0, finite)


# --------------------------------------------------------------------------- sweep
def _write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: shards may write the same file
    tmp.write_text(json.dumps(obj, indent=1, default=float) + "\n")
    tmp.replace(path)


def sweep_lr(plan: ZooPlan, task: str, optimizer: str, schedule: str) -> dict[str, Any]:
    """The lr sweep of ``(task, optimizer, schedule)`` (module docstring: the rule).

    Returns:
        ``{"task", "optimizer", "schedule", "steps", "seed", "points": [{"lr", "best_val_loss"}]
        (ascending lr), "best_lr", "interior", "widened", "seconds"}``; a diverged point's loss is
        ``None`` (+inf).
    """
    t = replace(plan.task(task), total_steps=plan.sweep_steps(task))
    c = t.center_lr(optimizer)
    p = plan.sweep_points
    lrs = [c * 2.0 ** (i - (p - 1) / 2.0) for i in range(p)]
    scores: dict[float, float] = {}
    widened, seconds = 0, 0.0
    while True:
        for lr in lrs:
            if lr not in scores:
                r = record_run(t, optimizer, lr, schedule, plan.sweep_seed, every=plan.every, keep_weights=False)
                scores[lr], seconds = r.best_val_loss, seconds + r.seconds
        best = min(lrs, key=lambda lr: scores[lr])  # the first (smallest) lr among equals
        edge = "lower" if best == lrs[0] else "higher" if best == lrs[-1] else None
        if edge is None or widened >= plan.max_widen:
            break
        lrs = [lrs[0] / 2.0, *lrs] if edge == "lower" else [*lrs, lrs[-1] * 2.0]
        widened += 1
    return {"task": task, "optimizer": optimizer, "schedule": schedule, "steps": t.total_steps, "seed": plan.sweep_seed,
            "points": [{"lr": lr, "best_val_loss": scores[lr] if math.isfinite(scores[lr]) else None} for lr in lrs],
            "best_lr": best, "interior": edge is None, "widened": widened, "seconds": seconds}


# --------------------------------------------------------------------------- the build
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record_group(plan: ZooPlan, out: Path, sweep: dict[str, Any], multiple: float) -> dict[str, Any]:
    """Record one group (every seed at ``best_lr * multiple``), write its file and its JSON; returns the JSON."""
    name, optimizer, schedule = sweep["task"], sweep["optimizer"], sweep["schedule"]
    task = plan.task(name)
    lr = sweep["best_lr"] * multiple
    stem = _stem(name, optimizer, schedule, multiple)
    kept, records = [], []
    for seed in plan.seeds:
        r = record_run(task, optimizer, lr, schedule, seed, every=plan.every)
        records.append({"seed": seed, "seconds": r.seconds, "finite": r.finite})
        logger.info("zoo %s seed %d lr %.3g: val %.3f -> %.3f (%.1f s)%s", stem, seed, lr, float(r.val_loss[0]),
                    float(r.val_loss[-1]), r.seconds, "" if r.finite else " DIVERGED, dropped")
        if r.finite:
            kept.append((seed, r))
    group = {"task": name, "optimizer": optimizer, "schedule": schedule, "lr": lr, "lr_multiple": multiple,
             "best_lr": sweep["best_lr"], "records": records, "seconds": sum(x["seconds"] for x in records), "file": None}
    if kept:
        first = kept[0][1]
        runs = [{"task": name, "data": task.data, "arch": task.arch, "optimizer": optimizer, "lr": lr,
                 "lr_multiple": multiple, "schedule": schedule, "seed": s, "total_steps": task.total_steps} for s, _ in kept]
        path = save_trajectories(
            out / f"{stem}.safetensors",
            torch.stack([r.weights for _, r in kept]),
            loss=torch.stack([r.loss for _, r in kept]),
            val_loss=torch.stack([r.val_loss for _, r in kept]),
            extra={"lr_sum": torch.stack([r.lr_sum for _, r in kept]), "val_acc": torch.stack([r.val_acc for _, r in kept])},
            spec=first.spec, steps=first.steps, task=name, data=task.data, arch=task.arch, optimizer=optimizer, lr=lr,
            lr_multiple=multiple, schedule=schedule, warmup=task.warmup, seeds=[s for s, _ in kept],
            total_steps=task.total_steps, every=plan.every, unit=f"{plan.every} steps", runs=runs,
            source="gfm_accel.lab.zoo_tuned",
        )
        group.update(file=path.name, sha256=_sha256(path), bytes=path.stat().st_size, runs=len(kept),
                     T=int(first.weights.shape[0]), D=int(first.weights.shape[1]))
    _write_json(out / f"{stem}.json", group)
    return group


def _check_plan_file(out: Path, plan: ZooPlan) -> None:
    path = out / "plan.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != plan.to_dict():
            raise ValueError(f"{out} holds a zoo built with another plan ({path}); use another --out or the same plan")
    else:
        _write_json(path, plan.to_dict())


def build_tuned_zoo(plan: ZooPlan, out_dir: str | os.PathLike, *, shard: tuple[int, int] = (0, 1),
                    command: str | None = None) -> dict[str, Any]:
    """Run (or resume) the build of ``plan`` into ``out_dir`` and write ``manifest.json``.

    Args:
        plan: what to run.
        out_dir: the build folder (created); it must hold this plan or nothing.
        shard: ``(i, n)``: run only the sweep keys ``j`` with ``j % n == i`` (one process each;
            every process writes the manifest of what is finished when it ends).
        command: the command line recorded in the manifest.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ValueError: ``out_dir`` holds another plan, or a bad ``shard``.
    """
    i, n = shard
    if not (isinstance(n, int) and isinstance(i, int) and n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_plan_file(out, plan)
    t0 = time.perf_counter()
    for j, (task, optimizer, schedule) in enumerate(plan.sweep_keys()):
        if j % n != i:
            continue
        pending = [m for m in plan.multiples if not (out / f"{_stem(task, optimizer, schedule, m)}.json").exists()]
        if not pending:
            continue
        sweep_path = out / "sweeps" / f"{_stem(task, optimizer, schedule)}.json"
        if sweep_path.exists():
            sweep = json.loads(sweep_path.read_text())
        else:
            sweep = sweep_lr(plan, task, optimizer, schedule)
            _write_json(sweep_path, sweep)
            logger.info("zoo sweep %s: best lr %.3g (%s, widened %d)", sweep_path.stem, sweep["best_lr"],
                        "interior" if sweep["interior"] else "on the edge", sweep["widened"])
        for m in pending:
            _record_group(plan, out, sweep, m)
    return write_manifest(plan, out, command=command, wall_seconds=time.perf_counter() - t0)


def write_manifest(plan: ZooPlan, out: Path, *, command: str | None = None, wall_seconds: float = 0.0) -> dict[str, Any]:
    """Collect the finished sweeps and groups of ``plan`` in ``out`` into ``manifest.json`` (written atomically)."""
    from ..info import machine_line

    sweeps, groups = [], []
    for task, optimizer, schedule in plan.sweep_keys():
        p = out / "sweeps" / f"{_stem(task, optimizer, schedule)}.json"
        if p.exists():
            sweeps.append(json.loads(p.read_text()))
        for m in plan.multiples:
            g = out / f"{_stem(task, optimizer, schedule, m)}.json"
            if g.exists():
                groups.append(json.loads(g.read_text()))
    files = [{k: g[k] for k in ("file", "sha256", "bytes", "runs", "T", "D", "task", "optimizer", "schedule", "lr",
                                  "lr_multiple")} for g in groups if g["file"]]
    dropped = [{"group": _stem(g["task"], g["optimizer"], g["schedule"], g["lr_multiple"]), "seed": r["seed"]}
               for g in groups for r in g["records"] if not r["finite"]]
    sweep_s, record_s = sum(s["seconds"] for s in sweeps), sum(g["seconds"] for g in groups)
    manifest = {
        "format": MANIFEST_FORMAT, "version": 1, "plan": plan.to_dict(),
        "complete": len(groups) == len(plan.sweep_keys()) * len(plan.multiples),
        "runs": sum(f["runs"] for f in files), "runs_planned": plan.n_runs, "dropped": dropped,
        "files": files, "bytes": sum(f["bytes"] for f in files),
        "sweeps": [{k: s[k] for k in ("task", "optimizer", "schedule", "best_lr", "interior", "widened", "points")}
                   for s in sweeps],
        "runtime": {"sweep_seconds": sweep_s, "record_seconds": record_s, "total_seconds": sweep_s + record_s,
                    "last_invocation_wall_seconds": wall_seconds,
                    "note": "sums of the measured run times over every invocation that built this folder"},
        "command": command or " ".join(["gfm-accel", *sys.argv[1:]]),
        "machine": machine_line(), "threads": torch.get_num_threads(),
    }
    _write_json(out / "manifest.json", manifest)
    return manifest


def estimate_runtime(plan: ZooPlan, probe_steps: int | None = None) -> dict[str, Any]:
    """The full build's expected seconds, from one short timed run per task.

    Each task runs once (adam, its centre lr, ``constant``, the first seed) for ``probe_steps``
    (default ``4 * every``) with snapshots and evaluations as in the build; its seconds per
    step times the steps of the plan's runs and sweeps (every sweep assumed widened once) is
    the task's estimate. Runs that diverge and stop early make the real build shorter.

    Returns:
        ``{"per_task": {name: {"seconds_per_step", "runs", "sweep_runs", "seconds"}}, "total_seconds",
        "probe_steps", "threads"}``.
    """
    probe = probe_steps or 4 * plan.every
    per_task, total = {}, 0.0
    for name in plan.tasks:
        t = replace(plan.task(name), total_steps=probe)
        r = record_run(t, "adam", t.center_lr("adam"), "constant", plan.seeds[0], every=math.gcd(plan.every, probe))
        per_step = r.seconds / probe
        keys = len(plan.optimizers) * len(plan.schedules)
        runs = keys * len(plan.multiples) * len(plan.seeds)
        sweep_runs = keys * (plan.sweep_points + min(1, plan.max_widen))
        seconds = per_step * (runs * plan.task(name).total_steps + sweep_runs * plan.sweep_steps(name))
        per_task[name] = {"seconds_per_step": per_step, "runs": runs, "sweep_runs": sweep_runs, "seconds": seconds}
        total += seconds
    return {"per_task": per_task, "total_seconds": total, "probe_steps": probe, "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``gfm-accel zoo [--tuned] [--quick] [--estimate] --out DIR ...``."""
    p = parser
    p.add_argument("--out", type=Path, default=None, help="build folder (resumable: finished files are skipped)")
    p.add_argument("--tuned", action="store_true", help="the zoo at tuned learning rates (default: the fixed-lr zoo)")
    p.add_argument("--quick", action="store_true", help="a few tiny runs (tuned: ZooPlan.quick(); fixed: scale 'tiny')")
    p.add_argument("--estimate", action="store_true", help="tuned: print the build's expected runtime and exit")
    p.add_argument("--tasks", default=None, help=f"tuned: comma list from {','.join(ZOO_TASKS)}")
    p.add_argument("--seeds", default=None, help="tuned: comma list of recorded seeds")
    p.add_argument("--steps", type=int, default=None, help="tuned: every task's budget in optimizer steps")
    p.add_argument("--shard", default="0/1", help="tuned: I/N, run the I-th of N parts (one process each)")
    p.add_argument("--no-progress", action="store_true", help="fixed-lr zoo: no progress bar")


def _plan_from_args(args: argparse.Namespace) -> ZooPlan:
    plan = ZooPlan.quick() if args.quick else ZooPlan()
    if args.tasks:
        plan = replace(plan, tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()))
    if args.seeds:
        plan = replace(plan, seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()))
    if args.steps:
        plan = replace(plan, steps=args.steps)
    return plan


def run(args: argparse.Namespace) -> int:
    """Build (or estimate) the zoo ``args`` asks for; returns 0."""
    if not args.tuned:
        from .zoo import build_zoo

        if args.out is None:
            raise ValueError("--out DIR is required")
        files = build_zoo(args.out, scale="tiny" if args.quick else "default", progress=not args.no_progress)
        print(f"wrote {len(files)} trajectory files to {args.out}")
        return 0
    torch.set_num_threads(1)
    plan = _plan_from_args(args)
    if args.estimate:
        est = estimate_runtime(plan)
        for name, e in est["per_task"].items():
            print(f"{name:22s} {e['seconds_per_step'] * 1e3:7.2f} ms/step  {e['runs']} runs + {e['sweep_runs']} sweep runs"
                  f"  ~{e['seconds'] / 60:6.1f} min")
        print(f"total ~{est['total_seconds'] / 60:.1f} min for {plan.n_runs} runs on {est['threads']} thread(s)")
        return 0
    if args.out is None:
        raise ValueError("--out DIR is required")
    try:
        i, n = (int(x) for x in args.shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard must be I/N (e.g. 0/2), got {args.shard!r}") from None
    m = build_tuned_zoo(plan, args.out, shard=(i, n))
    print(f"{m['runs']} of {m['runs_planned']} runs in {len(m['files'])} files ({m['bytes'] / 2**20:.1f} MiB), "
          f"{m['runtime']['total_seconds'] / 60:.1f} min of runs; {'complete' if m['complete'] else 'INCOMPLETE'}: "
          f"{Path(args.out) / 'manifest.json'}")
    return 0
