"""The lab's training loops for classification tasks.

* :func:`train_epoch`: one pass of mini-batch steps, the inner loop that the live runs and
  the zoo (:mod:`gfm_accel.lab.zoo`) share;
* :func:`run_classifier`: THE training loop of the lab's live runs (the acceleration
  benchmark's tasks, the demo): mini-batch cross-entropy on a fixed
  :class:`~gfm_accel.lab.datasets.Split`, optionally with a :class:`~gfm_accel.jump.GFMJump`
  whose guard evaluates the split's guard set; validation loss / accuracy and wall time per
  epoch in a :class:`RunLog`.
* :func:`train_classifier`: the trajectory recorder of the paper-style datasets
  (``gfm-accel generate cnn|transformer``): train for E epochs and record the flattened
  weights every epoch, with the train and validation metrics of each snapshot.
* :func:`evaluate_classifier`: mean cross-entropy and accuracy in eval mode.

Snapshot protocol of :func:`train_classifier` (per snapshot ``e = 0..E``; ``e = 0`` is the
initialization):

* weights: :func:`gfm_accel.params.flatten_params` of the model (float32, CPU);
* ``train_loss`` / ``train_acc`` / ``val_loss`` / ``val_acc``: measured on the full train
  and validation sets *at that snapshot*, in eval mode (dropout off, BatchNorm running
  statistics), so every number describes exactly the recorded weights. Costs one extra
  forward pass over the training set per epoch; ``eval_train=False`` instead records the
  mean mini-batch loss/accuracy of the epoch that led to the snapshot (and evaluates the
  init snapshot properly).

Determinism: the model is built and trained inside ``torch.random.fork_rng`` seeded with
``seed`` (init, dropout), and the mini-batch order comes from a separate generator seeded
with ``seed``; the caller's global RNG is untouched. Same seed, same numbers (on CPU).

Example:
    >>> import torch
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> run = train_classifier(lambda: torch.nn.Linear(4, 3), x, y, x, y, epochs=2, lr=0.1, batch_size=16)
    >>> tuple(run.weights.shape), tuple(run.val_acc.shape)
    ((3, 15), (3,))
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from .._config import JsonConfig
from ..params import ParamSpec, flatten_params
from .datasets import Split
from .optim import build_optimizer, optimizer_hparams

__all__ = [
    "ClassifierRun",
    "train_classifier",
    "evaluate_classifier",
    "RunLog",
    "train_epoch",
    "run_classifier",
    "epochs_to_reach",
]

log = logging.getLogger(__name__)


@dataclass
class ClassifierRun:
    """One training run.

    Attributes:
        weights: ``(E+1, D)`` float32 snapshots, ``weights[0]`` the initialization.
        train_loss, val_loss, train_acc, val_acc: ``(E+1,)`` per snapshot.
        spec: parameter layout of D.
        optimizer: optimizer name.
        hparams: resolved optimizer hyperparameters.
        seed: the run's seed.

    Example:
        >>> x, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
        >>> run = train_classifier(lambda: torch.nn.Linear(2, 2), x, y, x, y, epochs=1, seed=4)
        >>> run.spec.numel, run.seed, run.hparams
        (6, 4, {'lr': 0.01})
    """

    weights: torch.Tensor
    train_loss: torch.Tensor
    val_loss: torch.Tensor
    train_acc: torch.Tensor
    val_acc: torch.Tensor
    spec: ParamSpec
    optimizer: str
    hparams: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024, device: str | torch.device = "cpu"
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode.

    Restores the model's train/eval mode afterwards.
    """
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for lo in range(0, len(y), batch_size):
        xb, yb = x[lo : lo + batch_size].to(device), y[lo : lo + batch_size].to(device)
        logits = model(xb)
        total_loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(-1) == yb).sum())
    model.train(was_training)
    n = max(len(y), 1)
    return total_loss / n, correct / n


def train_classifier(
    model_factory: Callable[[], nn.Module],
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eval_train: bool = True,
    snapshot_every: int = 1,
) -> ClassifierRun:
    """Train ``model_factory()`` with cross-entropy and record a snapshot every epoch.

    Args:
        model_factory: builds a fresh model (called under the run's seed).
        train_x, train_y: ``(N, ...)`` inputs, ``(N,)`` int64 labels.
        val_x, val_y: validation tensors.
        optimizer: name from :mod:`gfm_accel.lab.optim`.
        lr: learning rate (``None``: the paper's value for that optimizer).
        optimizer_kwargs: further optimizer keywords (e.g. ``{"momentum": 0.9}``).
        epochs: E, passes over the training set.
        batch_size: mini-batch size (the last, smaller batch is kept).
        seed: seeds init, dropout and the shuffle.
        device: training device; snapshots are always kept on the CPU.
        eval_train: measure train loss/acc on the full set at each snapshot (see module).
        snapshot_every: record every k-th epoch (plus the init); T = E // k + 1.

    Returns:
        :class:`ClassifierRun`.
    """
    if epochs < 1 or batch_size < 1 or snapshot_every < 1:
        raise ValueError(f"epochs, batch_size and snapshot_every must be >= 1, got {epochs}, {batch_size}, {snapshot_every}")
    if len(train_x) != len(train_y) or len(val_x) != len(val_y):
        raise ValueError("inputs and labels must have the same length")
    # Keep the whole dataset on the training device once (CIFAR-10 is 0.6 GB as float32),
    # instead of copying every mini-batch.
    train_x, train_y = train_x.to(device), train_y.to(device)
    val_x, val_y = val_x.to(device), val_y.to(device)
    kwargs = dict(optimizer_kwargs or {})
    hp = optimizer_hparams(optimizer, lr, **kwargs)
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = model_factory().to(device)
        spec = ParamSpec.from_model(model)
        opt = build_optimizer(optimizer, model.parameters(), lr, **kwargs)
        shuffle = torch.Generator().manual_seed(seed)
        snaps = [flatten_params(model, spec)]
        tl, ta = evaluate_classifier(model, train_x, train_y, device=device)
        vl, va = evaluate_classifier(model, val_x, val_y, device=device)
        hist = {"train_loss": [tl], "train_acc": [ta], "val_loss": [vl], "val_acc": [va]}
        n = len(train_y)
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=shuffle).to(device)
            run_loss, run_correct = 0.0, 0
            for lo in range(0, n, batch_size):
                idx = perm[lo : lo + batch_size]
                xb, yb = train_x[idx], train_y[idx]
                opt.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
                loss.backward()
                opt.step()
                # Accumulate on the device: no host sync per step.
                run_loss = run_loss + loss.detach() * len(idx)
                run_correct = run_correct + (logits.detach().argmax(-1) == yb).sum()
            run_loss, run_correct = float(run_loss), int(run_correct)
            if not math.isfinite(run_loss):
                raise FloatingPointError(f"training diverged at epoch {epoch} (seed {seed}); lower the learning rate")
            if epoch % snapshot_every:
                continue
            snaps.append(flatten_params(model, spec))
            if eval_train:
                tl, ta = evaluate_classifier(model, train_x, train_y, device=device)
            else:
                tl, ta = run_loss / n, run_correct / n
            vl, va = evaluate_classifier(model, val_x, val_y, device=device)
            for k, v in (("train_loss", tl), ("train_acc", ta), ("val_loss", vl), ("val_acc", va)):
                hist[k].append(v)
            log.debug("seed %d epoch %d: train %.4f val %.4f acc %.3f", seed, epoch, tl, vl, va)
    return ClassifierRun(
        weights=torch.stack(snaps),
        spec=spec,
        optimizer=optimizer,
        hparams=hp,
        seed=seed,
        **{k: torch.tensor(v, dtype=torch.float32) for k, v in hist.items()},
    )


# --------------------------------------------------------------------------- live runs
@dataclass
class RunLog(JsonConfig):
    """Per-epoch record of one run; index ``e`` = after ``e`` epochs (0 = initialization).

    Attributes:
        task, seed, method: what ran (``method`` is ``"plain"`` or what the jump used).
        val_loss, val_acc: ``(B + 1,)`` lists, measured after the epoch's jump (if any).
        train_loss: ``(B + 1,)`` mean training loss of each epoch (index 0: NaN).
        wall: ``(B + 1,)`` cumulative seconds of training *including* every jump's
            overhead (snapshot, forecast, guard evaluations); the validation passes that
            only the benchmark makes are excluded.
        jump_seconds: total seconds spent inside the jump machinery.
        jumps: the :class:`~gfm_accel.jump.JumpRecord` dicts of every attempt.
        weights_d: the model's number of parameters D.
    """

    task: str
    seed: int
    method: str
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    jump_seconds: float = 0.0
    jumps: list[dict[str, Any]] = field(default_factory=list)
    weights_d: int = 0


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    after_step: Callable[[], None] | None = None,
) -> float:
    """One pass of mini-batch steps: the inner loop of every live run in the lab (tasks, demo, zoo).

    Args:
        model: the model (put in train mode here).
        optimizer: its optimizer.
        batches: ``(x (B, ...), y (B, ...))`` mini-batches, in order.
        loss_fn: ``loss_fn(model(x), y) -> scalar``; cross-entropy by default.
        after_step: called after every optimizer step (recording, step-unit jumps).

    Returns:
        The mean mini-batch loss, weighted by batch size (NaN for no batches).
    """
    model.train()
    total, seen = 0.0, 0
    for x, y in batches:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        total += float(loss.detach()) * len(y)
        seen += len(y)
    return total / seen if seen else float("nan")


def run_classifier(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    jump: Any = None,
    task: str = "",
    method: str = "plain",
    record_fn: Callable[[nn.Module, int], None] | None = None,
    step_fn: Callable[[nn.Module], None] | None = None,
) -> RunLog:
    """Train ``model`` on ``split`` for ``epochs`` epochs, optionally with a :class:`~gfm_accel.jump.GFMJump`.

    The mini-batch order comes from a generator seeded with ``1000 + seed`` (the global RNG
    is not used), so a plain run and a jump run from the same initialization see the same
    batches: a controlled pair.

    Args:
        model: the initialized model (``(B, *split.shape) -> (B, classes)`` logits).
        optimizer: its optimizer.
        split: the data; the guard set feeds the jump's guard, the val set the log.
        epochs: budget B.
        batch_size: mini-batch size (the last, smaller batch is kept).
        seed: batch-order seed.
        jump: an unattached ``GFMJump``; it is attached here with the guard loss as
            ``eval_fn`` and the planned total of ``epochs``.
        task, method: labels stored in the log.
        record_fn: called as ``record_fn(model, epoch)`` after initialization (epoch 0) and
            after every epoch (e.g. to write trajectories).
        step_fn: called as ``step_fn(model)`` after every optimizer step.

    Returns:
        The :class:`RunLog`.

    Raises:
        ValueError: ``epochs`` or ``batch_size`` is not a positive integer.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    log = RunLog(task, seed, method, weights_d=sum(p.numel() for p in model.parameters()))
    gen = torch.Generator().manual_seed(1000 + seed)
    n = len(split.x_train)
    if jump is not None:
        xg, yg = split.x_guard, split.y_guard
        t0 = time.perf_counter()
        total = jump.config.planned_total(epochs, math.ceil(n / batch_size))
        jump.attach(model, optimizer, eval_fn=lambda m: evaluate_classifier(m, xg, yg)[0], total=total)
        log.jump_seconds += time.perf_counter() - t0
    vl, va = evaluate_classifier(model, split.x_val, split.y_val)
    log.val_loss.append(vl), log.val_acc.append(va), log.train_loss.append(float("nan")), log.wall.append(0.0)
    if record_fn is not None:
        record_fn(model, 0)
    elapsed = log.jump_seconds
    jump_step_seconds = 0.0

    def after_step() -> None:
        nonlocal jump_step_seconds
        if step_fn is not None:
            step_fn(model)
        if jump is not None:
            tj = time.perf_counter()
            jump.on_step_end()  # records and jumps only with unit="step"
            jump_step_seconds += time.perf_counter() - tj

    for epoch in range(epochs):
        t0 = time.perf_counter()
        jump_step_seconds = 0.0
        perm = torch.randperm(n, generator=gen)
        batches = ((split.x_train[idx], split.y_train[idx]) for idx in perm.split(batch_size))
        train_loss = train_epoch(model, optimizer, batches, after_step=after_step)
        if jump is not None:
            tj = time.perf_counter()
            jump.on_epoch_end(epoch, loss=train_loss)
            log.jump_seconds += time.perf_counter() - tj + jump_step_seconds
        elapsed += time.perf_counter() - t0
        vl, va = evaluate_classifier(model, split.x_val, split.y_val)
        log.val_loss.append(vl), log.val_acc.append(va), log.train_loss.append(train_loss), log.wall.append(elapsed)
        if record_fn is not None:
            record_fn(model, epoch + 1)
    if jump is not None:
        log.jumps = [r.to_dict() for r in jump.history]
    return log


def epochs_to_reach(val_loss: list[float], target: float) -> int | None:
    """First epoch ``e`` (0 = initialization) with ``val_loss[e] <= target``; None if never.

    Example:
        >>> epochs_to_reach([2.0, 1.5, 1.0, 0.9], 1.0)
        2
    """
    for e, v in enumerate(val_loss):
        if math.isfinite(v) and v <= target + 1e-12:
            return e
    return None
