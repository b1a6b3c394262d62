"""Schedule-Free AdamW / SGD, from the ``schedulefree`` package (Defazio et al., "The Road
Less Scheduled", arXiv 2405.15682).

Schedule-Free replaces the base optimizer and its schedule: the user's AdamW/Adam becomes
``AdamWScheduleFree`` (same betas, eps, weight decay), SGD becomes ``SGDScheduleFree`` (its
momentum, 0.9 when the base has none, since the library needs one in ``(0, 1)``). The lr is
``lr_scale`` times the base optimizer's (the method's own lr grid), the library's linear
warmup runs over ``round(warmup * T)`` steps (the recipe's warmup fraction, unless the
method's ``warmup`` is given), and no lr scheduler is built.

The library keeps the weights at the gradient point ``y`` in ``optimizer.train()`` mode and
at the averaged ``x`` sequence in ``optimizer.eval()`` mode; ``x`` is what gets evaluated.
:meth:`ScheduleFree.evaluating` switches to ``eval()``, and, for a model with BatchNorm,
recomputes the running statistics at ``x`` from ``bn_batches`` with
``torch.optim.swa_utils.update_bn`` (the library's README asks for such a pass, since the
statistics were gathered at ``y``). On exit it switches back to ``train()`` and writes the
saved ``y`` weights and BatchNorm buffers back bit for bit (``train()``'s own interpolation
back to ``y`` is exact only up to rounding, which would make a run depend on how often it is
evaluated). :meth:`Method.state_dict` is taken in ``train()`` mode, matching the live ``y``
weights that the loop saves beside it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ...jump import has_batchnorm
from ..schedules import warmup_steps
from .base import Method, OptimizerFactory, require_package

__all__ = ["ScheduleFree"]


class ScheduleFree(Method):
    """Schedule-Free AdamW/SGD in place of the base optimizer and its schedule.

    Args:
        lr_scale: the Schedule-Free lr as a multiple of the base optimizer's lr.
        warmup: warmup fraction of ``T`` (``None``: the recipe's ``warmup``).

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> sf = ScheduleFree(lr_scale=2.0).attach(model, lambda p: torch.optim.AdamW(p, lr=1e-3), total_steps=5)
        >>> type(sf.optimizer).__name__, sf.optimizer.param_groups[0]["lr"], sf.scheduler
        ('AdamWScheduleFree', 0.002, None)
    """

    NAME = "schedulefree"
    GRID = {"lr_scale": (0.5, 1.0, 2.0, 4.0)}

    def __init__(self, lr_scale: float = 1.0, warmup: float | None = None) -> None:
        if not (isinstance(lr_scale, (int, float)) and lr_scale > 0):
            raise ValueError(f"schedulefree lr_scale must be > 0, got {lr_scale!r}")
        if warmup is not None and not (isinstance(warmup, (int, float)) and 0.0 <= warmup < 1.0):
            raise ValueError(f"schedulefree warmup must be a fraction in [0, 1) or None, got {warmup!r}")
        super().__init__(lr_scale=float(lr_scale), warmup=warmup)

    def _make_optimizer(
        self, model: nn.Module, make_optimizer: OptimizerFactory, total_steps: int, schedule: str, warmup: float
    ) -> torch.optim.Optimizer:
        require_package("schedulefree", "schedulefree")
        import schedulefree

        if has_batchnorm(model) and not self.bn_batches:
            raise ValueError(
                "schedulefree: the model has BatchNorm, so evaluating x needs bn_batches= (training inputs) "
                "to recompute its running statistics"
            )
        base = make_optimizer(model.parameters())
        frac = warmup if self.hparams["warmup"] is None else self.hparams["warmup"]
        common = {"warmup_steps": warmup_steps(total_steps, frac)}
        groups = [
            {"params": g["params"], "lr": g["lr"] * self.hparams["lr_scale"], "weight_decay": g.get("weight_decay", 0.0)}
            for g in base.param_groups
        ]
        d = base.defaults
        if isinstance(base, (torch.optim.Adam, torch.optim.AdamW)):
            opt = schedulefree.AdamWScheduleFree(groups, betas=tuple(d["betas"]), eps=d["eps"], **common)
        elif isinstance(base, torch.optim.SGD):
            opt = schedulefree.SGDScheduleFree(groups, momentum=d.get("momentum") or 0.9, **common)
        else:
            raise ValueError(
                f"schedulefree has AdamW and SGD variants; no counterpart for {type(base).__name__}"
            )
        opt.train()
        return opt

    def _make_scheduler(self, optimizer, schedule, total_steps, warmup):  # type: ignore[override]
        return None  # schedule-free: the library's own warmup, no decay

    @contextlib.contextmanager
    def _eval_model(self) -> Iterator[nn.Module]:
        model, opt = self.model, self.optimizer
        params = [p for g in opt.param_groups for p in g["params"]]
        with torch.no_grad():
            saved = [p.detach().clone() for p in params]
            buffers = [b.detach().clone() for b in model.buffers()]
        opt.eval()
        try:
            if has_batchnorm(model):
                from torch.optim.swa_utils import update_bn

                update_bn(self.bn_batches, model)
            yield model
        finally:
            opt.train()
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
                for b, s in zip(model.buffers(), buffers):
                    b.copy_(s)
