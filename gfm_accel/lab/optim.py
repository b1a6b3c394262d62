"""The lab's one optimizer registry: optimizers by name, with the paper's hyperparameters (App. B / C).

One set of names serves the whole lab (the generators, the zoo, the tasks of the
benchmarks): ``sgd``, ``sgdm`` (SGD with momentum 0.9), ``adam``, ``adamw``, ``rmsprop``
and ``adagrad``. :data:`PAPER_OPTIMIZERS` are the five the paper uses, in the column order
of its tables.

The paper's defaults (App. B): learning rate 0.01 for SGD, Adam, AdamW and RMSprop,
0.1 for Adagrad; RMSprop smoothing ``alpha = 0.99`` and weight decay 0.01; Adam-type
betas ``(0.9, 0.999)``. AdamW's decoupled weight decay is not given by the paper; we use
PyTorch's default 0.01 and record it in every file's metadata.

Every optimizer here is *elementwise*: the update of a coordinate depends only on that
coordinate's gradient history (weight decay included). That is what makes the batched
generators exact: N independent runs stacked in one parameter tensor, with the sum of
their losses as the objective, get exactly the N individual updates.

Example:
    >>> import torch
    >>> w = torch.zeros(3, requires_grad=True)
    >>> opt = build_optimizer("rmsprop", [w])
    >>> opt.defaults["alpha"], opt.defaults["weight_decay"], opt.defaults["lr"]
    (0.99, 0.01, 0.01)
    >>> optimizer_hparams("adagrad")
    {'lr': 0.1}
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

__all__ = ["OPTIMIZERS", "PAPER_OPTIMIZERS", "PAPER_HPARAMS", "optimizer_hparams", "build_optimizer", "parse_optimizers"]

#: Optimizer name -> torch class.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "sgdm": torch.optim.SGD,  # SGD with momentum 0.9 (the zoo, the acceleration tasks)
}

#: The paper's hyperparameters (App. B), JSON-friendly (betas as lists).
PAPER_HPARAMS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01},
    "adam": {"lr": 0.01, "betas": [0.9, 0.999]},
    "adamw": {"lr": 0.01, "betas": [0.9, 0.999], "weight_decay": 0.01},
    "rmsprop": {"lr": 0.01, "alpha": 0.99, "weight_decay": 0.01},
    "adagrad": {"lr": 0.1},
}

#: The paper's five optimizers, in the column order of its tables.
PAPER_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw", "rmsprop", "adagrad")

#: Defaults of every name: the paper's, plus SGD with momentum 0.9 (not in the paper; the
#: zoo and the acceleration tasks use it) at the paper's SGD learning rate.
_DEFAULTS: dict[str, dict[str, Any]] = {**PAPER_HPARAMS, "sgdm": {"lr": 0.01, "momentum": 0.9}}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return name.lower()


def optimizer_hparams(name: str, lr: float | None = None, **overrides: Any) -> dict[str, Any]:
    """The resolved hyperparameters of optimizer ``name`` (paper defaults + overrides).

    Callers that must not inherit a paper default (e.g. RMSprop's weight decay 0.01) pass
    the value explicitly: ``optimizer_hparams("rmsprop", 1e-3, weight_decay=0.0)``.

    Args:
        name: one of :data:`OPTIMIZERS` (case-insensitive).
        lr: learning rate; ``None`` keeps the paper's value.
        **overrides: any other keyword of the torch optimizer (e.g. ``momentum=0.9``).

    Returns:
        A JSON-serialisable dict (tuples become lists), as recorded in file metadata.

    Raises:
        ValueError: unknown optimizer or a non-positive learning rate.
    """
    name = _check_name(name)
    out = dict(_DEFAULTS[name])
    if lr is not None:
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        out["lr"] = float(lr)
    for k, v in overrides.items():
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def build_optimizer(
    name: str, params: Iterable[torch.Tensor], lr: float | None = None, **overrides: Any
) -> torch.optim.Optimizer:
    """Build a torch optimizer by name with the paper's hyperparameters.

    Args:
        name: ``sgd``, ``sgdm``, ``adam``, ``adamw``, ``rmsprop`` or ``adagrad``.
        params: tensors (or param groups) to optimize.
        lr: learning rate; ``None`` keeps the paper's value.
        **overrides: further optimizer keywords.

    Returns:
        The optimizer.
    """
    hp = optimizer_hparams(name, lr, **overrides)
    if "betas" in hp:
        hp["betas"] = tuple(hp["betas"])
    return OPTIMIZERS[_check_name(name)](params, **hp)


def parse_optimizers(spec: str | Iterable[str]) -> list[str]:
    """Parse ``"sgd,adam"`` (or a list) into validated, de-duplicated names.

    Raises:
        ValueError: empty list or an unknown name.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        item = _check_name(item)
        if item not in names:
            names.append(item)
    if not names:
        raise ValueError(f"no optimizer given; choose from {', '.join(OPTIMIZERS)}")
    return names
