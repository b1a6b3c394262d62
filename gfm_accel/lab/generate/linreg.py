"""Linear-regression trajectories (paper Sec. 5.1, App. B), generated as one batch.

Each trajectory is a different regression task ``y = a x + b + eps`` fitted by a two-
parameter model ``w = (slope, intercept)``; the file holds ``(N, T, 2)`` with
``T = steps + 1`` (``w_0`` included).

Choices where the paper is silent or ambiguous (all exposed in :class:`RegressionConfig`):

* **Task coefficients**: ``a ~ N(2.0, 0.1^2)``, ``b ~ N(1.0, 0.1^2)``. Sec. 5.1 writes
  ``N(2.0, 0.01)``: we read the second argument as the variance (std 0.1), which App. B's
  "std 0.1" confirms.
* **Noise**: ``eps ~ N(0, sigma^2)`` with ``sigma = sqrt(0.1) ~= 0.316``. App. C writes
  ``eps ~ N(0, 0.1)`` for the same task data ("the same task data as in linear
  regression", Sec. 5.2); read with the same convention as the coefficients (variance),
  that is ``sigma^2 = 0.1``. Flag ``--noise-std``.
* **Full batch**: each of the 199 "training steps" (App. B) is one full-batch gradient step
  on the task's 100 points, so ``w_i`` are exactly the iterates of the optimizer and the
  recorded ``loss`` is the objective. ``batch_size`` switches to mini-batches (a fresh
  random subset per step, drawn without replacement within the step).
* **Initialization** (Table 3): ``normal``: both parameters ``~ N(0, init_scale^2)``,
  ``init_scale = 1`` (Sec. 5.2: "standard normal"). ``xavier_normal`` / ``xavier_uniform``:
  the model is read as one linear map ``R^2 -> R`` acting on ``[x, 1]`` (fan_in 2,
  fan_out 1), so ``std = sqrt(2/3)`` and bound ``sqrt(6/3)``, applied to slope and
  intercept alike. (Reading slope alone as a 1x1 layer would make xavier_normal identical
  to normal, which Table 3 contradicts.)
* **Randomness**: everything (tasks, points, noise, inits, mini-batches) is drawn up front
  from one ``torch.Generator`` seeded with ``seed``, in a fixed order, independent of the
  optimizer. So for a given seed every optimizer sees the same tasks and initial weights,
  and the batched and one-at-a-time trainers consume identical data.

Example:
    >>> cfg = RegressionConfig(n_trajectories=4, steps=9)
    >>> data = sample_regression_tasks(cfg, seed=0)
    >>> run = train_linreg_batched(data, "adam")
    >>> tuple(run.weights.shape), bool(run.loss[:, -1].mean() < run.loss[:, 0].mean())
    ((4, 10, 2), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..._config import JsonConfig
from ..optim import build_optimizer, optimizer_hparams

__all__ = [
    "INITS",
    "RegressionConfig",
    "RegressionTasks",
    "TrajectoryBatch",
    "sample_regression_tasks",
    "linreg_init",
    "linreg_loss",
    "train_linreg_batched",
    "train_linreg_sequential",
]

#: Initialization schemes (paper Table 3).
INITS: tuple[str, ...] = ("normal", "xavier_normal", "xavier_uniform")


@dataclass
class RegressionConfig(JsonConfig):
    """Task and protocol parameters shared by the linreg and MLP datasets.

    Attributes:
        n_trajectories: N, trajectories per file (tasks per seed).
        n_points: data points per task.
        steps: number of updates (linreg) or epochs (MLP); ``T = steps + 1``.
        a_mean, a_std, b_mean, b_std: task coefficient distributions.
        noise_std: std of the additive Gaussian noise.
        x_low, x_high: input range.
        batch_size: mini-batch size; ``None`` = full batch.
        init: one of :data:`INITS`.
        init_scale: std of the ``normal`` init.

    Example:
        >>> RegressionConfig.from_json(RegressionConfig(n_trajectories=3).to_json()).n_trajectories
        3
    """

    n_trajectories: int = 50
    n_points: int = 100
    steps: int = 199
    a_mean: float = 2.0
    a_std: float = 0.1
    b_mean: float = 1.0
    b_std: float = 0.1
    noise_std: float = math.sqrt(0.1)
    x_low: float = -1.0
    x_high: float = 1.0
    batch_size: int | None = None
    init: str = "normal"
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("n_trajectories", "n_points", "steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("a_std", "b_std", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.x_low < self.x_high:
            raise ValueError(f"x_low ({self.x_low}) must be < x_high ({self.x_high})")
        if self.batch_size is not None and not (1 <= self.batch_size <= self.n_points):
            raise ValueError(f"batch_size must be in [1, n_points={self.n_points}] or None, got {self.batch_size}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose from {', '.join(INITS)}")
        if not self.init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {self.init_scale}")


@dataclass
class RegressionTasks:
    """N regression tasks with their data, drawn from one seed.

    Attributes:
        x: ``(N, P)`` inputs.
        y: ``(N, P)`` targets.
        a: ``(N,)`` true slopes.
        b: ``(N,)`` true intercepts.
        w0: ``(N, D)`` initial weights.
        batch_index: ``(N, steps, P)`` per-step (or per-epoch) permutations, or None.
        config: the config used.
        seed: the seed used.

    Example:
        >>> t = sample_regression_tasks(RegressionConfig(n_trajectories=3, batch_size=10, steps=5), seed=0)
        >>> tuple(t.x.shape), tuple(t.w0.shape), tuple(t.batch_index.shape)
        ((3, 100), (3, 2), (3, 5, 100))
    """

    x: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    w0: torch.Tensor
    batch_index: torch.Tensor | None
    config: RegressionConfig
    seed: int

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass
class TrajectoryBatch:
    """Trajectories produced by a generator.

    Attributes:
        weights: ``(N, T, D)`` float32.
        loss: ``(N, T)`` task loss at each snapshot.
        optimizer: optimizer name.
        hparams: resolved optimizer hyperparameters.

    Example:
        >>> run = train_linreg_batched(sample_regression_tasks(RegressionConfig(n_trajectories=2, steps=4), 0), "adagrad")
        >>> tuple(run.loss.shape), run.hparams
        ((2, 5), {'lr': 0.1})
    """

    weights: torch.Tensor
    loss: torch.Tensor
    optimizer: str
    hparams: dict[str, Any]


def linreg_init(n: int, init: str, init_scale: float, generator: torch.Generator) -> torch.Tensor:
    """Initial ``(slope, intercept)`` for ``n`` runs, shape ``(n, 2)`` (see module notes)."""
    if init == "normal":
        return torch.randn(n, 2, generator=generator) * init_scale
    fan_in, fan_out = 2, 1  # one linear map R^2 -> R on [x, 1]
    if init == "xavier_normal":
        return torch.randn(n, 2, generator=generator) * math.sqrt(2.0 / (fan_in + fan_out))
    if init == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return (torch.rand(n, 2, generator=generator) * 2 - 1) * bound
    raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITS)}")


def sample_regression_tasks(
    config: RegressionConfig, seed: int, *, init_fn=None
) -> RegressionTasks:
    """Draw N tasks, their data, initial weights and mini-batch indices from ``seed``.

    Draw order (fixed, so files are reproducible): a, b, x, noise, w0, batch indices.

    Args:
        config: task parameters.
        seed: generator seed.
        init_fn: ``(n, init, init_scale, generator) -> (n, D)`` initial weights; defaults to
            :func:`linreg_init`.

    Returns:
        :class:`RegressionTasks`; ``batch_index`` is ``(N, steps, P)`` permutations when
        ``config.batch_size`` is set, else ``None``.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    c = config
    g = torch.Generator().manual_seed(seed)
    n, p = c.n_trajectories, c.n_points
    a = c.a_mean + c.a_std * torch.randn(n, generator=g)
    b = c.b_mean + c.b_std * torch.randn(n, generator=g)
    x = c.x_low + (c.x_high - c.x_low) * torch.rand(n, p, generator=g)
    y = a[:, None] * x + b[:, None] + c.noise_std * torch.randn(n, p, generator=g)
    w0 = (init_fn or linreg_init)(n, c.init, c.init_scale, g)
    batch_index = None
    if c.batch_size is not None:
        # One permutation of the P points per trajectory and step (epoch for the MLP).
        batch_index = torch.rand(n, c.steps, p, generator=g).argsort(dim=-1)
    return RegressionTasks(x=x, y=y, a=a, b=b, w0=w0, batch_index=batch_index, config=c, seed=seed)


def linreg_loss(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Full-data MSE of each snapshot.

    Args:
        weights: ``(N, T, 2)`` (slope, intercept).
        x, y: ``(N, P)``.

    Returns:
        ``(N, T)``.
    """
    pred = weights[..., 0:1] * x[:, None, :] + weights[..., 1:2]
    return ((pred - y[:, None, :]) ** 2).mean(dim=-1)


def train_linreg_batched(
    tasks: RegressionTasks, optimizer: str, lr: float | None = None, **hparams: Any
) -> TrajectoryBatch:
    """Train all N tasks at once: one ``(N, 2)`` parameter, loss = sum of the N MSEs.

    Exact for every optimizer in :mod:`gfm_accel.lab.optim` (all elementwise).

    Returns:
        :class:`TrajectoryBatch` with weights ``(N, steps + 1, 2)``.
    """
    c = tasks.config
    hp = optimizer_hparams(optimizer, lr, **hparams)
    w = tasks.w0.clone().requires_grad_(True)
    opt = build_optimizer(optimizer, [w], lr, **hparams)
    out = torch.empty(tasks.n, c.steps + 1, 2)
    out[:, 0] = tasks.w0
    x, y = tasks.x, tasks.y
    for s in range(c.steps):
        if tasks.batch_index is not None:
            idx = tasks.batch_index[:, s, : c.batch_size]
            xb, yb = x.gather(1, idx), y.gather(1, idx)
        else:
            xb, yb = x, y
        opt.zero_grad(set_to_none=True)
        pred = w[:, 0:1] * xb + w[:, 1:2]
        loss = ((pred - yb) ** 2).mean(dim=1).sum()
        loss.backward()
        opt.step()
        out[:, s + 1] = w.detach()
    return TrajectoryBatch(weights=out, loss=linreg_loss(out, x, y), optimizer=optimizer, hparams=hp)


def train_linreg_sequential(
    tasks: RegressionTasks, optimizer: str, lr: float | None = None, *, indices=None, **hparams: Any
) -> TrajectoryBatch:
    """Reference loop: train the tasks one at a time, each with its own optimizer.

    Args:
        indices: optional subset of trajectories to train (benchmarks time a subset).

    Returns:
        :class:`TrajectoryBatch` for the selected trajectories.
    """
    c = tasks.config
    hp = optimizer_hparams(optimizer, lr, **hparams)
    rows = list(range(tasks.n)) if indices is None else list(indices)
    out = torch.empty(len(rows), c.steps + 1, 2)
    for k, i in enumerate(rows):
        w = tasks.w0[i].clone().requires_grad_(True)
        opt = build_optimizer(optimizer, [w], lr, **hparams)
        out[k, 0] = tasks.w0[i]
        for s in range(c.steps):
            if tasks.batch_index is not None:
                idx = tasks.batch_index[i, s, : c.batch_size]
                xb, yb = tasks.x[i, idx], tasks.y[i, idx]
            else:
                xb, yb = tasks.x[i], tasks.y[i]
            opt.zero_grad(set_to_none=True)
            loss = ((w[0] * xb + w[1] - yb) ** 2).mean()
            loss.backward()
            opt.step()
            out[k, s + 1] = w.detach()
    loss = linreg_loss(out, tasks.x[rows], tasks.y[rows])
    return TrajectoryBatch(weights=out, loss=loss, optimizer=optimizer, hparams=hp)
