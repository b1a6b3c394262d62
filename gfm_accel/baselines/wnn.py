"""WNN, the Weight Nowcaster Network (Jang et al., 2023), applied per coordinate.

One ~20k-parameter network is shared by all coordinates and reads each coordinate's own
history, so it serves any D and can compete in live jumps.
"""

from __future__ import annotations

import torch
from torch import nn

from ..params import ParamSpec
from .base import Baseline, coordinate_scale, train_module

__all__ = ["WNN", "wnn_features"]


def wnn_features(prefix: torch.Tensor, spec: ParamSpec | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The "calculus layer": each coordinate's current value and its scaled step differences.

    Args:
        prefix: ``(B, n+1, D)``.
        spec: layout of D, or None.

    Returns:
        ``(features, s)``: features ``(B, D, n+1)``: the raw current value ``w_n``
        (Table 5's ``[X1]``) followed by the differences ``(w_{k+1} - w_k)/s`` for
        ``k = 0..n-1`` (``[dX]``); ``s`` ``(B, D)`` is the tensor's movement scale
        (:func:`~gfm_accel.baselines.base.coordinate_scale`).
    """
    s = coordinate_scale(prefix, spec)
    diffs = prefix.diff(dim=1) / s.unsqueeze(1)  # (B, n, D)
    return torch.cat([prefix[:, -1:], diffs], dim=1).transpose(1, 2), s


class _WNNNet(nn.Module):
    def __init__(self, features: int, width: int, layers: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Linear(features, width), nn.ReLU()]
        for _ in range(layers - 2):
            blocks += [nn.Linear(width, width), nn.ReLU()]
        last = nn.Linear(width, 1)
        blocks.append(last)
        self.net = nn.Sequential(*blocks)
        for module in self.net:
            if isinstance(module, nn.Linear) and module is not last:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., F) -> (...)
        return self.net(x).squeeze(-1)


class WNN(Baseline):
    """WNN: 12 dense ReLU layers (width 40, ~17k parameters) on weight-difference features.

    Per coordinate: input the features of :func:`wnn_features` (Table 5's ``[X1, dX]``),
    output ``(w_m - w_n) / s``; prediction ``w_n + s * net(features)``. Loss: MSE on that
    normalized target plus ``l1`` (default 1e-6) times the sum of absolute weights (the
    L1 regularization of Table 5; biases are not penalized).

    Ambiguities: "~12 Dense + Calculus layers, ~20K": we use 12 ``Linear`` layers
    (width 40), the calculus layer being the fixed difference features. The original WNN
    nowcasts a few steps ahead; here, like every baseline, it is trained to jump straight
    to ``w_m``. A batch is ``batch_size`` trajectories; of their coordinates at most
    ``max_coords`` (default 4096) random ones are used per step, so large D costs the same
    per step as small D.

    Example:
        >>> w = torch.randn(8, 10, 3)
        >>> WNN().fit(w, n=4, m=9, epochs=2).predict(torch.randn(2, 5, 7)).shape
        torch.Size([2, 7])
    """

    name = "wnn"
    per_coordinate = True
    default_epochs = 1000

    def __init__(self, width: int = 40, layers: int = 12, l1: float = 1e-6, max_coords: int = 4096) -> None:
        super().__init__()
        if layers < 2:
            raise ValueError(f"layers must be >= 2, got {layers}")
        if not l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {l1!r}")
        if max_coords < 1:
            raise ValueError(f"max_coords must be >= 1, got {max_coords}")
        self.width, self.layers, self.l1, self.max_coords = int(width), int(layers), float(l1), int(max_coords)
        self.cache_numel = 20_000_000

    @classmethod
    def num_params(cls, dim: int, n: int = 4) -> int:
        return sum(p.numel() for p in _WNNNet(n + 1, 40, 12).parameters())

    def _fit(self, prefix, target, *, epochs, batch_size, lr, seed, progress, spec=None) -> None:
        n = prefix.shape[1] - 1
        self.module = _WNNNet(n + 1, self.width, self.layers)
        penalized = [m.weight for m in self.module.modules() if isinstance(m, nn.Linear)]
        gen = torch.Generator().manual_seed(seed + 1)
        # small problems: compute every coordinate's features once; large D: per batch
        cached = None
        if prefix.shape[0] * prefix.shape[-1] * (n + 2) <= self.cache_numel:
            feats_all, s_all = wnn_features(prefix, spec)
            cached = (feats_all, (target - prefix[:, -1]) / s_all)

        def loss_fn(module: nn.Module, idx: torch.Tensor) -> torch.Tensor:
            if cached is not None:
                feats, y = cached[0][idx], cached[1][idx]
            else:
                feats, s = wnn_features(prefix[idx], spec)  # the scale uses every coordinate of a tensor
                y = (target[idx] - prefix[idx, -1]) / s
            feats, y = feats.reshape(-1, feats.shape[-1]), y.reshape(-1)
            if y.numel() > self.max_coords:
                pick = torch.randint(y.numel(), (self.max_coords,), generator=gen)
                feats, y = feats[pick], y[pick]
            loss = torch.mean((module(feats) - y) ** 2)
            if self.l1 > 0:
                loss = loss + self.l1 * sum(w.abs().sum() for w in penalized)
            return loss

        self.train_result = train_module(
            self.module, loss_fn, prefix.shape[0], epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            progress=progress, desc=self.name,
        )

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        self.module.eval()
        feats, s = wnn_features(prefix, spec)
        return prefix[:, -1] + s * self.module(feats)
