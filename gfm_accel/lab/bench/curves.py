"""One step-counted training run of a workload with a method, measured as a validation curve.

This is the loop of the tuned protocol: the runner calls :func:`run_curve` once per
(task, method, hyperparameters, seed) and hands the records to :mod:`.stats`.

Timing: ``seconds`` counts everything the method costs in training (forward, backward, the
optimizer and scheduler steps, the method's hook: EMA updates, outer steps, jumps with
their guard evaluations), and excludes the benchmark's own validation passes. On CUDA the
device is synchronized before the clock is read.

Example:
    >>> import torch
    >>> from gfm_accel.lab.methods import build_method
    >>> from gfm_accel.lab.tasks.resnet import ResNetTask
    >>> task = ResNetTask(width=8, blocks=(1,), total_steps=4, batch_size=16)
    >>> curve = run_curve(task.build(0), build_method("ema", decay=0.9),
    ...                   lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), total_steps=4, eval_every=2)
    >>> [r[0] for r in curve.records]
    [0, 2, 4]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..methods.base import Method, OptimizerFactory
from ..tasks.workload import Evaluation, WorkloadRun

__all__ = ["RunCurve", "run_curve"]


@dataclass
class RunCurve:
    """The measured run.

    Attributes:
        records: ``(step, seconds, val_loss)`` after ``step`` optimizer steps (step 0: init).
        accuracy: the validation accuracy at each record.
        train_loss: the mean training loss of the steps since the previous record (NaN at 0).
        final: the validation :class:`~gfm_accel.lab.tasks.workload.Evaluation` at the budget.
        method: the method's name; hparams: its hyperparameters.
    """

    records: list[tuple[int, float, float]] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    final: Evaluation | None = None
    method: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (records as lists)."""
        d = asdict(self)
        d["records"] = [list(r) for r in self.records]
        return d


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_curve(
    run: WorkloadRun,
    method: Method,
    make_optimizer: OptimizerFactory,
    *,
    total_steps: int,
    schedule: str = "constant",
    warmup: float = 0.0,
    eval_every: int = 10,
    device: str | torch.device | None = None,
) -> RunCurve:
    """Train ``run.model`` for ``total_steps`` with ``method`` and record its validation curve.

    Args:
        run: a freshly built workload run (``workload.build(seed)``).
        method: a fresh, unattached method.
        make_optimizer: the base optimizer factory (the tuned lr).
        total_steps: the budget in optimizer steps.
        schedule, warmup: the lr schedule.
        eval_every: validate every this many steps (and at the budget).
        device: where to train (default: CPU; the model is moved there before attaching).

    Returns:
        The :class:`RunCurve` (the evaluated model is the method's: EMA weights, x-sequence, ...).
    """
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    run.model.to(dev)
    bn = [b.to(dev) for b in run.bn_batches]
    method.attach(run.model, make_optimizer, total_steps=total_steps, schedule=schedule, warmup=warmup,
                  guard_fn=run.guard, bn_batches=bn or None)
    curve = RunCurve(method=method.NAME, hparams=dict(method.hparams))

    def record(step: int, seconds: float, train_loss: float) -> Evaluation:
        with method.evaluating() as m:
            ev = run.evaluate(m)
        curve.records.append((step, seconds, ev.loss))
        curve.accuracy.append(ev.accuracy)
        curve.train_loss.append(train_loss)
        return ev

    ev = record(0, 0.0, float("nan"))
    elapsed, losses = 0.0, []
    _sync(dev)
    for step in range(1, total_steps + 1):
        t0 = time.perf_counter()
        method.zero_grad()
        loss = run.loss(run.model, next(run.batches))
        loss.backward()
        method.step(None)
        losses.append(loss.detach())
        if step % eval_every == 0 or step == total_steps:
            _sync(dev)
            elapsed += time.perf_counter() - t0
            ev = record(step, elapsed, float(torch.stack(losses).mean()))
            losses = []
        else:
            elapsed += time.perf_counter() - t0
    curve.final = ev
    return curve
