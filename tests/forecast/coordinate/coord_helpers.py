"""Synthetic trajectories and layouts shared by the coordinate-forecaster tests."""

from __future__ import annotations

import torch
from torch import nn

from gfm_accel.params import ParamSpec

__all__ = ["decay_trajectories", "small_spec", "other_spec"]


def decay_trajectories(spec: ParamSpec, n_traj: int, t_len: int, seed: int) -> torch.Tensor:
    """(N, T, D): each coordinate relaxes geometrically to a random target,
    w_i = w* + (w_0 - w*) r^i, with per-tensor rate r and per-tensor size."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_traj):
        cols = []
        for e in spec.entries:
            size = float(10 ** (torch.rand((), generator=g) * 2 - 1))
            r = float(0.8 + 0.15 * torch.rand((), generator=g))
            w0 = torch.randn(e.numel, generator=g) * size
            ws = w0 + torch.randn(e.numel, generator=g) * size * 0.5
            i = torch.arange(t_len, dtype=torch.float32).unsqueeze(-1)
            cols.append(ws + (w0 - ws) * r**i)
        out.append(torch.cat(cols, dim=1))
    return torch.stack(out)

def small_spec() -> ParamSpec:
    return ParamSpec.from_model(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))

def other_spec() -> ParamSpec:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LayerNorm(8), nn.Linear(8, 3),
                          nn.Embedding(5, 2))
    return ParamSpec.from_model(model)
