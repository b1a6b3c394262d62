"""Exactly-15-parameter MLP trajectories (paper Sec. 5.2, App. C), generated as one batch.

Architectures (App. C: "hidden sizes [2, 2, 1]" and "[4, 1]", both "exactly 15
parameters"): the hidden-size list includes a final width-1 hidden layer, followed by a
1 -> 1 output layer. That is the only reading of the names that gives 15 parameters:

* ``mlp3`` (arch id 0): ``1 -> 2 -> 2 -> 1 -> 1``: 4 + 6 + 3 + 2 = 15 parameters;
* ``mlp2`` (arch id 1): ``1 -> 4 -> 1 -> 1``: 8 + 5 + 2 = 15 parameters.

An activation follows every hidden layer, not the output. The paper does not name it; we
default to **tanh** (flag ``--activation relu``): with ReLU, the width-1 hidden layer is dead
(negative for every x) for many standard-normal inits, so those runs only learn the output
bias. Measured on seed 0, N = 50, 199 epochs: median final task MSE 1.2-1.3 with ReLU for
SGD/Adam/AdamW/Adagrad (0.18 RMSprop) versus 0.12-0.22 with tanh (noise floor 0.1).

**Canonical flat order** (D = 15) is ``nn.Sequential`` order, i.e. what
:func:`gfm_accel.params.flatten_params` gives for :func:`make_mlp`: for each Linear layer
in turn, its weight ``(out, in)`` row-major, then its bias ``(out,)``.

Protocol: the task data of :mod:`gfm_accel.lab.generate.linreg` (same coefficients, noise and
points), mini-batch 64 with a fresh per-trajectory shuffle each epoch (so 2 updates per
epoch on 100 points: 64 + 36), ``steps = 199`` epochs, one snapshot per epoch plus ``w_0``
(T = 200), and the full-data task MSE at every snapshot (Figure 3). Per file the first
``n_first`` trajectories (default 60 %, i.e. 30 of 50) use ``mlp3`` and the rest ``mlp2``.

Learning rate: App. C says 0.01 (Adagrad 0.1) for all 5 optimizers, Sec. 5.2 says 0.001
for 4 of them. We default to App. C (the detailed protocol, which also covers Adagrad;
with 0.001 the 398 updates barely move the weights); ``--lr 0.001`` gives Sec. 5.2.

Initialization: ``normal`` draws every weight and bias from ``N(0, init_scale^2)``
(Sec. 5.2: "standard normal"); ``xavier_normal``/``xavier_uniform`` apply Glorot scaling
per layer (fan_in, fan_out of that layer) to weights, and zero biases (the PyTorch habit).

Example:
    >>> cfg = RegressionConfig(n_trajectories=5, steps=3, batch_size=64)
    >>> run = train_mlp_batched(sample_mlp_tasks(cfg, seed=0, n_first=3), "sgd")
    >>> tuple(run.weights.shape)
    (5, 4, 15)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .linreg import RegressionConfig, RegressionTasks, TrajectoryBatch, sample_regression_tasks
from ..optim import build_optimizer, optimizer_hparams

__all__ = [
    "MLP_ARCHS",
    "ACTIVATIONS",
    "MLPTasks",
    "mlp_layer_sizes",
    "make_mlp",
    "mlp_init",
    "mlp_forward",
    "mlp_loss",
    "sample_mlp_tasks",
    "train_mlp_batched",
    "train_mlp_sequential",
]

#: arch id -> (name, hidden sizes). Both have 15 parameters on a 1-d input.
MLP_ARCHS: dict[int, tuple[str, tuple[int, ...]]] = {0: ("mlp3", (2, 2, 1)), 1: ("mlp2", (4, 1))}
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
MLP_DIM = 15


def mlp_layer_sizes(hidden: tuple[int, ...]) -> list[tuple[int, int]]:
    """``[(in, out), ...]`` of each Linear layer for a 1 -> hidden... -> 1 MLP."""
    dims = [1, *hidden, 1]
    return list(zip(dims[:-1], dims[1:]))


def make_mlp(arch_id: int, activation: str = "tanh") -> nn.Sequential:
    """The ``nn.Sequential`` whose ``flatten_params`` order defines the canonical layout."""
    _, hidden = MLP_ARCHS[arch_id]
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers: list[nn.Module] = []
    sizes = mlp_layer_sizes(hidden)
    for k, (i, o) in enumerate(sizes):
        layers.append(nn.Linear(i, o))
        if k < len(sizes) - 1:
            layers.append(act())
    return nn.Sequential(*layers)


def _unflatten(flat: torch.Tensor, hidden: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Split ``(N, 15)`` into per-layer ``(W (N, out, in), b (N, out))`` (canonical order)."""
    out, off = [], 0
    for i, o in mlp_layer_sizes(hidden):
        w = flat[:, off : off + i * o].reshape(-1, o, i)
        off += i * o
        b = flat[:, off : off + o]
        off += o
        out.append((w, b))
    return out


def mlp_init(arch_ids: torch.Tensor, init: str, init_scale: float, generator: torch.Generator) -> torch.Tensor:
    """Initial flat weights ``(N, 15)`` in canonical order (see module notes)."""
    n = int(arch_ids.shape[0])
    if init == "normal":
        return torch.randn(n, MLP_DIM, generator=generator) * init_scale
    if init not in ("xavier_normal", "xavier_uniform"):
        raise ValueError(f"unknown init {init!r}; choose from normal, xavier_normal, xavier_uniform")
    base = torch.randn(n, MLP_DIM, generator=generator) if init == "xavier_normal" else (
        torch.rand(n, MLP_DIM, generator=generator) * 2 - 1
    )
    out = torch.zeros(n, MLP_DIM)
    for aid, (_, hidden) in MLP_ARCHS.items():
        scale = torch.zeros(MLP_DIM)
        off = 0
        for i, o in mlp_layer_sizes(hidden):
            gain = math.sqrt(2.0 / (i + o)) if init == "xavier_normal" else math.sqrt(6.0 / (i + o))
            scale[off : off + i * o] = gain
            off += i * o + o  # biases stay zero
        rows = arch_ids == aid
        out[rows] = base[rows] * scale
    return out


@dataclass
class MLPTasks:
    """Regression tasks plus the architecture of each trajectory.

    Attributes:
        tasks: the shared :class:`~gfm_accel.lab.generate.linreg.RegressionTasks` (``w0`` is ``(N, 15)``).
        arch_id: ``(N,)`` int64 keys of :data:`MLP_ARCHS`.
        activation: ``"relu"`` or ``"tanh"``.

    Example:
        >>> mt = sample_mlp_tasks(RegressionConfig(n_trajectories=5, steps=2, batch_size=64), seed=0)
        >>> mt.arch_id.tolist(), tuple(mt.tasks.w0.shape)
        ([0, 0, 0, 1, 1], (5, 15))
    """

    tasks: RegressionTasks
    arch_id: torch.Tensor
    activation: str = "tanh"

    @property
    def n(self) -> int:
        return self.tasks.n


def sample_mlp_tasks(
    config: RegressionConfig, seed: int, *, n_first: int | None = None, activation: str = "tanh"
) -> MLPTasks:
    """Draw N tasks and 15-parameter inits; the first ``n_first`` trajectories are ``mlp3``.

    ``n_first`` defaults to ``round(0.6 N)`` (30 of 50, App. C).
    """
    n = config.n_trajectories
    if n_first is None:
        n_first = round(0.6 * n)
    if not 0 <= n_first <= n:
        raise ValueError(f"n_first must be in [0, {n}], got {n_first}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    if config.batch_size is None:
        raise ValueError("the MLP protocol is mini-batch: set batch_size (the paper uses 64)")
    arch_id = torch.zeros(n, dtype=torch.long)
    arch_id[n_first:] = 1

    def init_fn(n_, init, scale, g):
        return mlp_init(arch_id, init, scale, g)

    tasks = sample_regression_tasks(config, seed, init_fn=init_fn)
    return MLPTasks(tasks=tasks, arch_id=arch_id, activation=activation)


def mlp_forward(flat: torch.Tensor, hidden: tuple[int, ...], x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """Batched forward of N MLPs of one architecture.

    Args:
        flat: ``(N, 15)`` weights in canonical order (may require grad).
        hidden: hidden sizes of the architecture.
        x: ``(N, B)`` inputs, one row per trajectory.

    Returns:
        ``(N, B)`` predictions.
    """
    act = ACTIVATIONS[activation]
    h = x.unsqueeze(-1)  # (N, B, 1)
    layers = _unflatten(flat, hidden)
    for k, (w, b) in enumerate(layers):
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if k < len(layers) - 1:
            h = act(h)
    return h.squeeze(-1)


def mlp_loss(weights: torch.Tensor, mt: MLPTasks) -> torch.Tensor:
    """Full-data MSE of each snapshot: weights ``(N, T, 15)`` -> ``(N, T)``."""
    n, t, d = weights.shape
    out = torch.empty(n, t)
    x, y = mt.tasks.x, mt.tasks.y
    for aid, (_, hidden) in MLP_ARCHS.items():
        rows = (mt.arch_id == aid).nonzero().reshape(-1)
        if len(rows) == 0:
            continue
        w = weights[rows].reshape(-1, d)
        xs = x[rows].repeat_interleave(t, dim=0)
        ys = y[rows].repeat_interleave(t, dim=0)
        pred = mlp_forward(w, hidden, xs, mt.activation)
        out[rows] = ((pred - ys) ** 2).mean(dim=1).reshape(len(rows), t)
    return out


def _epoch_batches(p: int, batch_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + batch_size, p)) for s in range(0, p, batch_size)]


def train_mlp_batched(mt: MLPTasks, optimizer: str, lr: float | None = None, **hparams: Any) -> TrajectoryBatch:
    """Train all N MLPs at once (one ``(n_arch, 15)`` parameter per architecture).

    One optimizer holds both architecture groups; the objective is the sum of the N
    per-trajectory mean losses, so each run gets exactly its own update.

    Returns:
        :class:`~gfm_accel.lab.generate.linreg.TrajectoryBatch` with weights ``(N, epochs + 1, 15)``.
    """
    t = mt.tasks
    c = t.config
    hp = optimizer_hparams(optimizer, lr, **hparams)
    groups = []
    for aid, (_, hidden) in MLP_ARCHS.items():
        rows = (mt.arch_id == aid).nonzero().reshape(-1)
        if len(rows):
            groups.append((rows, hidden, t.w0[rows].clone().requires_grad_(True)))
    opt = build_optimizer(optimizer, [g[2] for g in groups], lr, **hparams)
    out = torch.empty(t.n, c.steps + 1, MLP_DIM)
    out[:, 0] = t.w0
    batches = _epoch_batches(c.n_points, c.batch_size)
    for e in range(c.steps):
        perm = t.batch_index[:, e]
        for lo, hi in batches:
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for rows, hidden, w in groups:
                idx = perm[rows, lo:hi]
                xb, yb = t.x[rows].gather(1, idx), t.y[rows].gather(1, idx)
                pred = mlp_forward(w, hidden, xb, mt.activation)
                total = total + ((pred - yb) ** 2).mean(dim=1).sum()
            total.backward()
            opt.step()
        for rows, _, w in groups:
            out[rows, e + 1] = w.detach()
    return TrajectoryBatch(weights=out, loss=mlp_loss(out, mt), optimizer=optimizer, hparams=hp)


def train_mlp_sequential(
    mt: MLPTasks, optimizer: str, lr: float | None = None, *, indices=None, **hparams: Any
) -> TrajectoryBatch:
    """Reference loop: one real ``nn.Sequential`` per trajectory, trained alone.

    Also checks the canonical layout: the weights are read back with
    :func:`gfm_accel.params.flatten_params`.
    """
    from ...params import assign_params, flatten_params

    t = mt.tasks
    c = t.config
    hp = optimizer_hparams(optimizer, lr, **hparams)
    rows = list(range(t.n)) if indices is None else list(indices)
    out = torch.empty(len(rows), c.steps + 1, MLP_DIM)
    batches = _epoch_batches(c.n_points, c.batch_size)
    for k, i in enumerate(rows):
        model = make_mlp(int(mt.arch_id[i]), mt.activation)
        assign_params(model, t.w0[i])
        opt = build_optimizer(optimizer, model.parameters(), lr, **hparams)
        out[k, 0] = flatten_params(model)
        for e in range(c.steps):
            perm = t.batch_index[i, e]
            for lo, hi in batches:
                idx = perm[lo:hi]
                opt.zero_grad(set_to_none=True)
                pred = model(t.x[i, idx].unsqueeze(-1)).squeeze(-1)
                ((pred - t.y[i, idx]) ** 2).mean().backward()
                opt.step()
            out[k, e + 1] = flatten_params(model)
    sub = MLPTasks(
        tasks=RegressionTasks(
            x=t.x[rows], y=t.y[rows], a=t.a[rows], b=t.b[rows], w0=t.w0[rows],
            batch_index=None, config=c, seed=t.seed,
        ),
        arch_id=mt.arch_id[rows],
        activation=mt.activation,
    )
    return TrajectoryBatch(weights=out, loss=mlp_loss(out, sub), optimizer=optimizer, hparams=hp)
