"""Tiny models, data and forecasters shared by the jump tests (no mocks: real torch)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "digits",
    "mlp",
    "bn_mlp",
    "train_epoch",
    "eval_loss_fn",
    "NaNForecaster",
    "WrongSizeForecaster",
    "RaisingForecaster",
    "FarAwayForecaster",
    "FixedForecaster",
    "Quadratic",
    "ScriptedForecaster",
]

_DIGITS = None


def digits(n_train: int = 512, n_val: int = 256):
    """sklearn digits, standardized: ``(x_train, y_train, x_val, y_val)``."""
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.data, dtype=torch.float32) / 16.0
        y = torch.tensor(d.target, dtype=torch.long)
        g = torch.Generator().manual_seed(0)
        perm = torch.randperm(len(x), generator=g)
        _DIGITS = (x[perm], y[perm])
    x, y = _DIGITS
    return x[:n_train], y[:n_train], x[n_train : n_train + n_val], y[n_train : n_train + n_val]


def mlp(seed: int = 0, hidden: int = 32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def bn_mlp(seed: int = 0, hidden: int = 32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 10))


def train_epoch(model, opt, x, y, epoch: int, batch: int = 64) -> float:
    """One epoch with a data order fixed by ``epoch`` (so runs are reproducible across processes)."""
    model.train()
    g = torch.Generator().manual_seed(1000 + epoch)
    perm = torch.randperm(len(x), generator=g)
    total = 0.0
    for i in range(0, len(x), batch):
        idx = perm[i : i + batch]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total / len(x)


def eval_loss_fn(x, y):
    def fn(model):
        model.eval()
        return float(nn.functional.cross_entropy(model(x), y))

    return fn


class NaNForecaster:
    expected_dim = None

    def forecast(self, prefix, m, *, spec=None):
        out = prefix[-1].clone()
        out[3] = float("nan")
        return out


class WrongSizeForecaster:
    expected_dim = None

    def forecast(self, prefix, m, *, spec=None):
        return prefix[-1][:-1].clone()


class RaisingForecaster:
    expected_dim = None

    def forecast(self, prefix, m, *, spec=None):
        raise RuntimeError("boom")


class FarAwayForecaster:
    """A bad point: ``w_n`` plus large noise, so every alpha raises the loss."""

    expected_dim = None

    def __init__(self, scale: float = 50.0):
        self.scale = scale

    def forecast(self, prefix, m, *, spec=None):
        g = torch.Generator().manual_seed(7)
        return prefix[-1] + self.scale * torch.randn(prefix.shape[-1], generator=g)


class FixedForecaster:
    """Always returns the same vector (with a declared D)."""

    def __init__(self, vector: torch.Tensor, expected_dim: int | None = None):
        self.vector = vector
        self.expected_dim = expected_dim

    def forecast(self, prefix, m, *, spec=None):
        return self.vector.clone()


class Quadratic(nn.Module):
    """``loss = 0.5 * sum(c_i w_i^2)``, ``w`` of size 2: plain SGD gives ``w_{t+1} = (1 - lr c) w_t``."""

    def __init__(self, w0=(1.0, 2.0), c=(1.0, 0.5)):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w0))
        self.register_buffer("c", torch.tensor(c))

    def forward(self):
        return 0.5 * (self.c * self.w**2).sum()

    def sgd_step(self, opt) -> float:
        loss = self()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())


class ScriptedForecaster:
    """Delegates to ``inner``, except on the calls (1-based) in ``bad``: a far-away point every guard rejects."""

    expected_dim = None

    def __init__(self, inner, bad=()):
        self.inner, self.bad, self.calls = inner, set(bad), 0

    def forecast(self, prefix, m, *, spec=None):
        self.calls += 1
        if self.calls in self.bad:
            return prefix[-1] + 100.0
        return self.inner.forecast(prefix, m, spec=spec)
