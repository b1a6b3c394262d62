"""The guard: exact backup and restore, the candidate search, and fixed-batch loss functions.

A jump is judged on a held-out loss ``eval_fn(model) -> float``. :func:`search` writes the
candidates ``w_n + a * delta`` in order and keeps the first whose loss satisfies
:func:`accepts`; :class:`Backup` holds the exact previous parameters and buffers so that a
rejected jump is undone bit for bit. :func:`batches_eval_fn` builds an ``eval_fn`` over a
fixed list of batches (taken once with :func:`fixed_batches`), so the before/after losses
of every jump are measured on the same data; the framework adapters use it.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> batches = [(torch.ones(4, 2), torch.zeros(4, 1))]
    >>> fn = batches_eval_fn(batches, lambda model, batch, i: (model(batch[0]) - batch[1]).pow(2).mean())
    >>> isinstance(fn(net), float)
    True
    >>> accepts(1.0, 1.005, tolerance=0.01), accepts(1.0, 1.02, tolerance=0.01)
    (True, False)
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from . import dist
from .outcome import Outcome
from .rng import keep_global_rng

__all__ = [
    "Backup",
    "SearchResult",
    "accepts",
    "search",
    "evaluate",
    "check_eval_fn",
    "fixed_batches",
    "batches_eval_fn",
    "to_device",
    "model_device",
]

EvalFn = Callable[[nn.Module], float]


class Backup:
    """An exact copy of parameters and buffers, in their own dtype and device.

    Args:
        params: the parameters a jump writes.
        buffers: the buffers it may change (BatchNorm statistics after a refresh).

    Example:
        >>> lin = torch.nn.Linear(2, 2)
        >>> before = lin.weight.clone()
        >>> b = Backup(list(lin.parameters()), list(lin.buffers()))
        >>> with torch.no_grad(): _ = lin.weight.add_(1.0)
        >>> b.restore(); torch.equal(lin.weight, before)
        True
    """

    def __init__(self, params: Sequence[torch.Tensor], buffers: Sequence[torch.Tensor] = ()) -> None:
        self.params = list(params)
        self.buffers = list(buffers)
        self._params = [p.detach().clone() for p in self.params]
        self._buffers = [b.detach().clone() for b in self.buffers]

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the saved values back in place (``copy_``: optimizers keep their tensors)."""
        for p, b in zip(self.params, self._params):
            p.copy_(b)
        for buf, b in zip(self.buffers, self._buffers):
            buf.copy_(b)


def accepts(loss_before: float, loss_after: float, tolerance: float) -> bool:
    """The guard's rule: ``loss_after <= loss_before + tolerance * |loss_before|``, both finite."""
    return (
        math.isfinite(loss_after)
        and math.isfinite(loss_before)
        and loss_after <= loss_before + tolerance * abs(loss_before)
    )


@dataclass
class SearchResult:
    """What :func:`search` tried and found.

    Attributes:
        outcome: ``ACCEPTED``, ``ACCEPTED_NO_GUARD``, ``REJECTED`` or ``REJECTED_BAD_BEFORE``.
        alpha: the accepted fraction, or None.
        alphas_tried: fractions written, in order.
        losses_after: the guard loss of each tried fraction (empty without a guard).
    """

    outcome: Outcome
    alpha: float | None = None
    alphas_tried: list[float] = field(default_factory=list)
    losses_after: list[float] = field(default_factory=list)


def search(
    alphas: Iterable[float],
    write: Callable[[float], None],
    evaluate_fn: Callable[[], float] | None,
    loss_before: float | None,
    tolerance: float,
) -> SearchResult:
    """Try candidates in order and stop at the first the guard accepts.

    Args:
        alphas: jump fractions, in the order to try them.
        write: ``write(a)`` puts candidate ``a`` into the model (and refreshes what it must).
        evaluate_fn: the guard loss of the model as it is now; None = no guard (the first
            candidate is kept).
        loss_before: the guard loss before the jump (ignored without a guard).
        tolerance: the relative rise :func:`accepts` allows (negative: a required relative drop).

    Returns:
        A :class:`SearchResult`. The model holds the accepted candidate, or the last one
        tried when none was accepted (the caller restores its :class:`Backup`).
    """
    result = SearchResult(Outcome.REJECTED)
    for a in alphas:
        result.alphas_tried.append(a)
        write(a)
        if evaluate_fn is None:
            result.outcome, result.alpha = Outcome.ACCEPTED_NO_GUARD, a
            return result
        after = evaluate_fn()
        result.losses_after.append(after)
        if accepts(loss_before, after, tolerance):
            result.outcome, result.alpha = Outcome.ACCEPTED, a
            return result
    if loss_before is not None and not math.isfinite(loss_before):
        result.outcome = Outcome.REJECTED_BAD_BEFORE
    return result


def evaluate(eval_fn: EvalFn, model: nn.Module, device: torch.device) -> float:
    """``eval_fn(model)`` under ``torch.no_grad()``, the train/eval mode and the global RNG restored,
    averaged over ranks.

    Raises:
        TypeError: ``eval_fn`` returned something that is not a number (or a one-element tensor).
    """
    was_training = model.training
    try:
        with torch.no_grad(), keep_global_rng():
            value = eval_fn(model)
    finally:
        model.train(was_training)
    return dist.all_reduce_mean(_as_float(value), device)


def check_eval_fn(eval_fn: EvalFn, model: nn.Module, device: torch.device) -> float:
    """Call the guard's ``eval_fn`` once, at attach, so a bad set-up fails before training.

    The model's buffers are restored afterwards (an ``eval_fn`` that forgets ``model.eval()``
    would otherwise move BatchNorm statistics).

    Returns:
        The loss of the model as it is.

    Raises:
        ValueError: ``eval_fn`` does not return a finite number.
    """
    keep = Backup([], list(model.buffers()))
    try:
        value = evaluate(eval_fn, model, device)
    except TypeError as exc:
        raise ValueError(f"GFMJump: the guard's eval_fn(model) must return a float loss: {exc}") from exc
    finally:
        keep.restore()
    if not math.isfinite(value):
        raise ValueError(
            f"GFMJump: the guard's eval_fn(model) returned {value} on the model at attach; it must return a "
            f"finite loss on held-out batches"
        )
    return value


def _as_float(value: Any) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise TypeError(f"expected a number, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().item())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def fixed_batches(loader: Iterable, k: int) -> list[Any]:
    """The first ``k`` batches of ``loader``, taken once (the global RNG is left as it was:
    starting a ``DataLoader`` iterator draws a seed from it)."""
    with keep_global_rng():
        return list(itertools.islice(iter(loader), k))


def batches_eval_fn(
    batches: Sequence[Any], loss_of: Callable[[nn.Module, Any, int], Any]
) -> EvalFn:
    """``eval_fn(model) -> float``: the mean of ``loss_of(model, batch, i)`` over fixed batches.

    Args:
        batches: held-out batches; each is moved to the model's device (:func:`to_device`)
            before ``loss_of`` sees it.
        loss_of: the loss of one batch (a number or a one-element tensor).

    Returns:
        A function that evaluates in eval mode under ``torch.no_grad()`` and restores the
        model's train/eval mode.

    Raises:
        ValueError: ``batches`` is empty.
    """
    if not batches:
        raise ValueError("the guard needs at least one held-out batch, got none")
    batches = list(batches)

    @torch.no_grad()
    def eval_fn(model: nn.Module) -> float:
        was_training = model.training
        device = model_device(model)
        model.eval()
        try:
            total = 0.0
            for i, batch in enumerate(batches):
                total += _as_float(loss_of(model, to_device(batch, device), i))
            return total / len(batches)
        finally:
            model.train(was_training)

    return eval_fn


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for an empty model)."""
    for p in itertools.chain(model.parameters(), model.buffers()):
        return p.device
    return torch.device("cpu")


def to_device(obj: Any, device: torch.device) -> Any:
    """Move the tensors of a (nested) batch: tensors, mappings, lists and tuples."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
