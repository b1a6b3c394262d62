"""A tiny regression problem and a step loop shared by the method tests."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gfm_accel.lab.methods import Method


def data(seed: int = 0, n: int = 32, d: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)


def mlp(seed: int = 0, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 8)] + ([nn.BatchNorm1d(8)] if bn else []) + [nn.Tanh(), nn.Linear(8, 1)]
    return nn.Sequential(*layers)


def sgd(lr: float = 0.1, momentum: float = 0.0):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def adamw(lr: float = 0.01):
    return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def run(method: Method, model: nn.Module, steps: int, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0) -> list[torch.Tensor]:
    """``steps`` full-batch steps (batch ``i`` is a fixed slice, so a resumed run sees the same data).

    Returns the live flat weights after every step.
    """
    x, y = batch if batch is not None else data()
    out = []
    for i in range(start, start + steps):
        xb, yb = x[(i * 8) % len(x):][:8], y[(i * 8) % len(y):][:8]
        method.zero_grad()
        loss = (model(xb) - yb).pow(2).mean()
        loss.backward()
        method.step(loss.item())
        out.append(flat(model))
    return out


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def evaluated(method: Method) -> torch.Tensor:
    with method.evaluating() as m:
        return flat(m)


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
