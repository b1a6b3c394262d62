"""What a tuned-benchmark task (an AlgoPerf-style *workload*) hands to the runner.

A workload is a validated dataclass holding its default recipe (optimizer name, lr, weight
decay, schedule, warmup, budget in optimizer steps, batch size); ``build(seed)`` returns a
:class:`WorkloadRun` with everything one seeded run needs: the initialized model, an endless
iterator of training batches, the training loss, the evaluation on the split the targets are
measured on, and a separate guard loss (a split the targets never see).

Determinism: the model is initialized inside ``torch.random.fork_rng`` (the global RNG state
is left as it was) and batches come from the run's own ``torch.Generator``, so a seed gives
the same run whatever else the process does.

The batch generators the workloads share are here, each written once:
:func:`shuffled_batches` (epochs of a fresh permutation of ``(x, y)``), and for byte/token
streams :func:`text_windows` (next-token windows at given offsets), :func:`window_batches`
(windows at offsets drawn from a generator: training) and :func:`spaced_window_batches`
(windows at evenly spaced offsets: fixed evaluation batches).

Example:
    >>> stream = torch.arange(10)
    >>> x, y = text_windows(stream, torch.tensor([0, 5]), context=3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]])
    >>> [b[0].tolist() for b in spaced_window_batches(stream, n=1, batch_size=2, context=3)]
    [[[0, 1, 2], [6, 7, 8]]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..schedules import SCHEDULES

__all__ = [
    "Batch",
    "Evaluation",
    "WorkloadRun",
    "WorkloadConfig",
    "cross_entropy",
    "evaluate_batches",
    "seeded_init",
    "num_parameters",
    "shuffled_batches",
    "text_windows",
    "window_batches",
    "spaced_window_batches",
]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Evaluation:
    """Mean cross-entropy and accuracy over a fixed set of batches.

    Attributes:
        loss: mean cross-entropy per predicted element (image or token).
        accuracy: fraction of elements whose arg-max class is the label.
    """

    loss: float
    accuracy: float


@dataclass
class WorkloadRun:
    """One seeded run of a workload.

    Attributes:
        model: the initialized model (CPU, train mode).
        batches: endless ``(inputs, labels)`` training batches, deterministic per seed.
        loss: ``loss(model, batch) -> scalar tensor``, the training loss (moves the batch to
            the model's device).
        evaluate: ``evaluate(model) -> Evaluation`` on the target (validation) split.
        guard: ``guard(model) -> float``, the mean loss on the guard split (for jump guards;
            disjoint from the validation split).
        bn_batches: a few fixed training inputs, for methods that recompute BatchNorm statistics.
    """

    model: nn.Module
    batches: Iterator[Batch]
    loss: Callable[[nn.Module, Batch], torch.Tensor]
    evaluate: Callable[[nn.Module], Evaluation]
    guard: Callable[[nn.Module], float]
    bn_batches: list[torch.Tensor]


@dataclass
class WorkloadConfig:
    """The recipe fields every workload shares (validated by :meth:`check_recipe`), and ``build``.

    A workload subclasses this as a dataclass with these fields and implements
    :meth:`make_model`, :meth:`eval_sets` and :meth:`train_batches` (and
    :meth:`bn_inputs` when its model has BatchNorm); :meth:`build` does the rest.

    Attributes:
        optimizer: the base optimizer's name in the lab's optimizer registry
            (``"adamw"``, ``"sgdm"``: SGD with momentum 0.9, ...).
        lr: its default learning rate (the centre of the tuning grid).
        weight_decay: its weight decay.
        total_steps: the budget in optimizer steps.
        batch_size: training batch size.
        schedule: a :data:`~gfm_accel.lab.schedules.SCHEDULES` name.
        warmup: the schedule's warmup fraction of ``total_steps``.
    """

    def check_recipe(self) -> None:
        name = type(self).__name__
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"{name}: lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"{name}: weight_decay must be >= 0, got {self.weight_decay!r}")
        self.check_positive_ints("total_steps", "batch_size")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"{name}: unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if not (isinstance(self.warmup, (int, float)) and 0.0 <= self.warmup < 1.0):
            raise ValueError(f"{name}: warmup must be a fraction in [0, 1), got {self.warmup!r}")

    def check_positive_ints(self, *names: str) -> None:
        """Raise a ``ValueError`` naming the first of ``names`` that is not a positive integer."""
        for field_name in names:
            v = getattr(self, field_name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{type(self).__name__}: {field_name} must be a positive integer, got {v!r}")

    def make_model(self) -> nn.Module:
        """A freshly initialized model (may draw from the global RNG: :meth:`build` forks it)."""
        raise NotImplementedError

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        """The fixed ``(validation, guard)`` batches."""
        raise NotImplementedError

    def train_batches(self, seed: int) -> Iterator[Batch]:
        """Endless training batches drawn from a ``torch.Generator`` seeded with ``seed``."""
        raise NotImplementedError

    def init_model(self, seed: int) -> nn.Module:
        """The model of run ``seed``: :meth:`make_model` under :func:`seeded_init` (override to seed otherwise)."""
        return seeded_init(seed, self.make_model)

    def bn_inputs(self) -> list[torch.Tensor]:
        """Fixed training inputs for BatchNorm recomputation (none by default)."""
        return []

    def build(self, seed: int) -> WorkloadRun:
        """One seeded run: model, endless training batches, val evaluation, guard loss.

        Args:
            seed: initializes the model (:meth:`init_model`, under ``fork_rng``) and seeds the
                batch generator.

        Returns:
            The :class:`WorkloadRun`.
        """
        val, guard = self.eval_sets()
        return WorkloadRun(
            model=self.init_model(seed),
            batches=self.train_batches(seed),
            loss=cross_entropy,
            evaluate=lambda m: evaluate_batches(m, val),
            guard=lambda m: evaluate_batches(m, guard).loss,
            bn_batches=self.bn_inputs(),
        )


def cross_entropy(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of ``model(inputs)`` against ``labels``.

    Args:
        model: returns logits ``(B, C)`` for labels ``(B,)``, or ``(B, T, C)`` for ``(B, T)``.
        batch: ``(inputs, labels)``; moved to the model's device.

    Returns:
        The scalar loss.
    """
    device = next(model.parameters()).device
    x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate_batches(model: nn.Module, batches: Sequence[Batch]) -> Evaluation:
    """:class:`Evaluation` of ``model`` over fixed batches (eval mode; the mode is restored).

    Args:
        model: as in :func:`cross_entropy`.
        batches: the split's fixed batches.

    Returns:
        The element-weighted mean cross-entropy and accuracy.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    try:
        for x, y in batches:
            logits = model(x.to(device))
            logits, y = logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1)
            total += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
    finally:
        model.train(was_training)
    return Evaluation(total / count, correct / count)


def seeded_init(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)`` inside ``fork_rng``: the global RNG is left untouched.

    Args:
        seed: the run seed.
        build: makes the (randomly initialized) model.

    Returns:
        The model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def num_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def shuffled_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                     transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
                     ) -> Iterator[Batch]:
    """Endless epochs of ``(x, y)``, each a fresh permutation from a generator seeded ``seed``.

    The last partial batch of an epoch is dropped, so every batch has ``min(batch_size, N)``
    examples. The generator is drawn lazily: one ``randperm`` at the start of each epoch, then
    (with ``transform``) whatever ``transform`` draws from it for each batch, in yield order.

    Args:
        x: ``(N, ...)`` inputs.
        y: ``(N,)`` labels.
        batch_size: examples per batch.
        seed: the generator's seed.
        transform: optional ``transform(x_batch, generator) -> x_batch`` (data augmentation),
            given the same generator.

    Yields:
        ``(x[idx], y[idx])`` batches.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    size = min(batch_size, n)
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - size + 1, size):
            idx = perm[i : i + size]
            xb = x[idx]
            yield (transform(xb, g) if transform is not None else xb), y[idx]


def text_windows(stream: torch.Tensor, offsets: torch.Tensor, context: int) -> Batch:
    """Next-token windows of ``context + 1`` tokens of ``stream`` starting at ``offsets``.

    Args:
        stream: ``(L,)`` token ids (uint8 or int64).
        offsets: ``(B,)`` start positions, each at most ``L - context - 1``.
        context: the input length ``T``.

    Returns:
        ``(inputs (B, T), labels (B, T))`` int64, the labels the inputs shifted by one.
    """
    idx = offsets[:, None] + torch.arange(context + 1)
    seq = stream[idx].long()
    return seq[:, :-1], seq[:, 1:]


def window_batches(stream: torch.Tensor, batch_size: int, context: int, seed: int) -> Iterator[Batch]:
    """Endless next-token batches: ``batch_size`` windows at offsets from a generator seeded ``seed``.

    Each batch draws ``torch.randint(0, L - context - 1, (batch_size,))`` offsets (so the last
    possible start is never drawn) and cuts :func:`text_windows` there.

    Args:
        stream: ``(L,)`` token ids (uint8 or int64).
        batch_size: windows per batch ``B``.
        context: their input length ``T``.
        seed: the generator's seed.

    Yields:
        ``(inputs (B, T), labels (B, T))`` int64, the labels shifted by one.
    """
    g = torch.Generator().manual_seed(seed)
    high = len(stream) - context - 1
    while True:
        yield text_windows(stream, torch.randint(0, high, (batch_size,), generator=g), context)


def spaced_window_batches(stream: torch.Tensor, n: int, batch_size: int, context: int) -> list[Batch]:
    """``n`` fixed batches of :func:`text_windows` at ``n * batch_size`` evenly spaced offsets (no RNG).

    Args:
        stream: ``(L,)`` token ids.
        n: batches.
        batch_size: windows per batch ``B``.
        context: their input length ``T``.

    Returns:
        ``n`` batches ``(inputs (B, T), labels (B, T))`` covering the stream from its start to its end.
    """
    offsets = torch.linspace(0, len(stream) - context - 1, n * batch_size).long()
    return [text_windows(stream, o, context) for o in offsets.split(batch_size)]
