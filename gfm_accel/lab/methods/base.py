"""The one interface of a training algorithm in the tuned benchmark (an AlgoPerf-style "submission").

A :class:`Method` takes the user's recipe (a base-optimizer factory with the tuned learning
rate, a schedule name, a step budget) and owns everything a step-counted loop needs:

- :meth:`Method.attach` builds the optimizer the loop steps (the base one, a wrapper around
  it, or the method's own) and the lr scheduler;
- :meth:`Method.zero_grad` / :meth:`Method.step` replace ``optimizer.zero_grad()`` /
  ``optimizer.step(); scheduler.step()``, and run the method's hook after every step;
- :meth:`Method.evaluating` is a context manager giving the model to *evaluate* (the EMA
  weights, Lookahead's slow weights, Schedule-Free's x-sequence, ...) in ``eval()`` mode, and
  puts everything back for training on exit;
- :meth:`Method.state_dict` / :meth:`Method.load_state_dict` (optimizer, scheduler, step and
  the method's own state; the live model's weights are the loop's to save);
- :attr:`Method.GRID`: the method's own small hyperparameter grid, expanded by :meth:`Method.grid`.

A method never draws from the global RNG (torch, numpy, python ``random``).

Example:
    >>> import torch
    >>> from gfm_accel.lab.methods import build_method
    >>> model = torch.nn.Linear(3, 1)
    >>> method = build_method("ema", decay=0.9).attach(
    ...     model, lambda params: torch.optim.SGD(params, lr=0.1), total_steps=4)
    >>> x, y = torch.ones(8, 3), torch.zeros(8, 1)
    >>> for _ in range(4):
    ...     method.zero_grad(); (model(x) - y).pow(2).mean().backward(); method.step()
    >>> with method.evaluating() as m:
    ...     m is model
    False
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..schedules import build_scheduler

__all__ = ["Method", "Plain", "OptimizerFactory", "require_package"]

#: ``factory(params) -> optimizer``: the user's base optimizer with its tuned lr.
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def require_package(module: str, package: str) -> None:
    """Raise a clear ``ImportError`` naming the extra when ``module`` cannot be imported.

    Args:
        module: the import name (``"schedulefree"``).
        package: the pip name (``"schedulefree"``, ``"pytorch-optimizer"``).
    """
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"this method needs the {package} package: pip install {package} (or 'gfm_accel[bench]')")


class Method:
    """Base class: the plain base optimizer with its schedule; subclasses override the hooks.

    Subclasses override only what differs: :meth:`_make_optimizer` (wrap or replace the
    base optimizer), :meth:`_after_step`, :meth:`_eval_model` (a context manager), and
    :meth:`_extra_state` / :meth:`_load_extra_state`.

    Args:
        **hparams: the method's validated hyperparameters, as its subclass ``__init__``
            received them (its keyword arguments, with defaults filled in).

    Attributes:
        NAME: the method's name in the benchmark.
        GRID: ``{hyperparameter: candidate values}``; :meth:`grid` is their product.
        model, optimizer, scheduler: set by :meth:`attach`.
        steps: optimizer steps taken so far.
        hparams: the hyperparameters (a JSON-ready dict).
    """

    NAME: ClassVar[str] = "plain"
    GRID: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, **hparams: Any) -> None:
        self.hparams: dict[str, Any] = dict(hparams)
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.steps = 0
        self.total_steps = 0

    # ------------------------------------------------------------------ grid
    @classmethod
    def grid(cls) -> list[dict[str, Any]]:
        """Every hyperparameter combination of :attr:`GRID` (``[{}]`` when it is empty)."""
        keys = sorted(cls.GRID)
        return [dict(zip(keys, values)) for values in itertools.product(*(cls.GRID[k] for k in keys))]

    # ------------------------------------------------------------------ setup
    def attach(
        self,
        model: nn.Module,
        make_optimizer: OptimizerFactory,
        *,
        total_steps: int,
        schedule: str = "constant",
        warmup: float = 0.0,
        guard_fn: Callable[[nn.Module], float] | None = None,
        bn_batches: Sequence[Any] | None = None,
    ) -> "Method":
        """Bind to ``model`` and build the optimizer and scheduler the loop will step.

        Args:
            model: the model being trained (weights as initialized by the workload).
            make_optimizer: ``make_optimizer(params) -> Optimizer``, the user's base
                optimizer with its tuned lr (read from its param groups).
            total_steps: the budget ``T`` in optimizer steps.
            schedule: a :data:`~gfm_accel.lab.schedules.SCHEDULES` name.
            warmup: the schedule's warmup fraction of ``T``.
            guard_fn: ``guard_fn(model) -> float``, a loss on the guard split (only the
                jump methods use it; never the split the targets are measured on).
            bn_batches: model inputs (training batches) for methods that must recompute
                BatchNorm statistics before evaluating.

        Returns:
            ``self``.

        Raises:
            ValueError: a bad budget or schedule, or a method-specific misuse.
        """
        if self.model is not None:
            raise RuntimeError(f"this {self.NAME} method is already attached; build a new one per run")
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        self.model, self.total_steps = model, total_steps
        self.guard_fn, self.bn_batches = guard_fn, bn_batches
        self.optimizer = self._make_optimizer(model, make_optimizer, total_steps, schedule, warmup)
        self.scheduler = self._make_scheduler(self.optimizer, schedule, total_steps, warmup)
        self._setup()
        return self

    def _make_optimizer(
        self, model: nn.Module, make_optimizer: OptimizerFactory, total_steps: int, schedule: str, warmup: float
    ) -> torch.optim.Optimizer:
        return make_optimizer(model.parameters())

    def _make_scheduler(
        self, optimizer: torch.optim.Optimizer, schedule: str, total_steps: int, warmup: float
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        return build_scheduler(optimizer, schedule, total_steps, warmup)

    def _setup(self) -> None:
        """Called at the end of :meth:`attach` (model, optimizer, scheduler are set)."""

    # ------------------------------------------------------------------ loop verbs
    def _require(self) -> None:
        if self.model is None or self.optimizer is None:
            raise RuntimeError(f"{self.NAME}: call attach(model, make_optimizer, total_steps=...) first")

    def zero_grad(self) -> None:
        """``optimizer.zero_grad(set_to_none=True)``."""
        self._require()
        self.optimizer.zero_grad(set_to_none=True)

    def step(self, loss: float | None = None) -> None:
        """One optimizer step, the scheduler step, then the method's hook.

        Args:
            loss: the step's training loss (passed to hooks that record it).
        """
        self._require()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.steps += 1
        self._after_step(loss)

    def _after_step(self, loss: float | None) -> None:
        """Hook after every optimizer (and scheduler) step; :attr:`steps` is already counted."""

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[nn.Module]:
        """The model to evaluate, in ``eval()`` mode; on exit training resumes exactly as before.

        Yields:
            The module whose validation loss is the method's (the live model for ``plain``).
        """
        self._require()
        with self._eval_model() as module:
            was_training = module.training
            module.eval()
            try:
                yield module
            finally:
                module.train(was_training)

    @contextlib.contextmanager
    def _eval_model(self) -> Iterator[nn.Module]:
        yield self.model

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, scheduler, step count and the method's own state (not the live model's weights)."""
        self._require()
        return {
            "method": self.NAME,
            "hparams": dict(self.hparams),
            "steps": self.steps,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into an attached method (same model layout and hparams).

        Raises:
            ValueError: the state is another method's or has other hyperparameters.
        """
        self._require()
        if state.get("method") != self.NAME or state.get("hparams") != self.hparams:
            raise ValueError(
                f"state of method {state.get('method')!r} {state.get('hparams')} does not match "
                f"{self.NAME!r} {self.hparams}"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.steps = int(state["steps"])
        self._load_extra_state(state["extra"])

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.hparams.items()))
        return f"{type(self).__name__}({args})"


class Plain(Method):
    """The user's base optimizer and schedule, unchanged: the tuned baseline.

    Example:
        >>> import torch
        >>> m = Plain().attach(torch.nn.Linear(2, 1), lambda p: torch.optim.SGD(p, lr=0.1), total_steps=3)
        >>> type(m.optimizer).__name__, Plain.grid()
        ('SGD', [{}])
    """

    NAME = "plain"
