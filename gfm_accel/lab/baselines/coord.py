"""Per-coordinate learned baselines: WNN, and per-coordinate Introspection and LFD-2.

One small model is shared by all coordinates and reads each coordinate's own history, so
it serves any D (``expected_dim = None``) and can compete in live jumps. The
per-coordinate Introspection and LFD-2 are the readings of Table 5's ``[N, D, 4]`` and
``[N, D, 2]`` inputs that stay feasible at the paper's D = 924,554, where the flat
D-specific versions cannot exist (LFD-2 would need ``2 D^2`` weights).
"""

from __future__ import annotations

import torch
from torch import nn

from ...params import ParamSpec
from .base import Baseline, coordinate_scale, train_module
from .neural import introspection_indices

__all__ = ["CoordinateNetBaseline", "WNN", "IntrospectionCoord", "LFD2Coord", "wnn_features", "introspection_features"]


def wnn_features(prefix: torch.Tensor, spec: ParamSpec | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The "calculus layer": each coordinate's current value and its scaled step differences.

    Args:
        prefix: ``(B, n+1, D)``.
        spec: layout of D, or None.

    Returns:
        ``(features, s)``: features ``(B, D, n+1)``: the raw current value ``w_n``
        (Table 5's ``[X1]``) followed by the differences ``(w_{k+1} - w_k)/s`` for
        ``k = 0..n-1`` (``[dX]``); ``s`` ``(B, D)`` is the tensor's movement scale
        (:func:`~gfm_accel.lab.baselines.base.coordinate_scale`).
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


class CoordinateNetBaseline(Baseline):
    """A network shared by all coordinates: ``w_m = w_n + s * net(features(prefix))``.

    Subclasses set :meth:`features` (``(B, n+1, D) -> ((B, D, F), s (B, D))``) and
    :meth:`build` (``F -> nn.Module`` mapping ``(..., F) -> (...)``). The loss is the MSE on
    the normalized target ``(w_m - w_n) / s`` plus ``l1`` times the sum of absolute weights.
    A batch is ``batch_size`` trajectories; of their coordinates at most ``max_coords``
    random ones are used per step, so a large D costs the same per step as a small one.

    Example:
        >>> class Tiny(CoordinateNetBaseline):
        ...     name = "tiny_coord"
        ...     def features(self, prefix, spec):
        ...         return wnn_features(prefix, spec)
        ...     def build(self, num_features):
        ...         return _MLP(num_features, 8)
        >>> Tiny().fit(torch.randn(4, 6, 5), n=2, m=5, epochs=2).predict(torch.randn(1, 3, 9)).shape
        torch.Size([1, 9])
    """

    per_coordinate = True
    default_epochs = 1000

    def __init__(self, l1: float = 0.0, max_coords: int = 4096) -> None:
        super().__init__()
        if not l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {l1!r}")
        if max_coords < 1:
            raise ValueError(f"max_coords must be >= 1, got {max_coords}")
        self.l1, self.max_coords = float(l1), int(max_coords)
        self.cache_numel = 20_000_000

    def features(self, prefix: torch.Tensor, spec: ParamSpec | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def build(self, num_features: int) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def num_params(cls, dim: int, n: int = 4) -> int:
        model = cls()
        width = model.features(torch.zeros(1, n + 1, 1), None)[0].shape[-1]
        return sum(p.numel() for p in model.build(width).parameters())

    def _fit(self, prefix, target, *, epochs, batch_size, lr, seed, progress, spec=None) -> None:
        n = prefix.shape[1] - 1
        # small problems: every coordinate's features once; large D: per batch
        cached = None
        if prefix.shape[0] * prefix.shape[-1] * (n + 2) <= self.cache_numel:
            feats_all, s_all = self.features(prefix, spec)
            cached = (feats_all, (target - prefix[:, -1]) / s_all)
        num_features = self.features(prefix[:1], spec)[0].shape[-1]
        self.module = self.build(num_features)
        penalized = [m.weight for m in self.module.modules() if isinstance(m, nn.Linear)]
        gen = torch.Generator().manual_seed(seed + 1)

        def loss_fn(module: nn.Module, idx: torch.Tensor) -> torch.Tensor:
            if cached is not None:
                feats, y = cached[0][idx], cached[1][idx]
            else:
                feats, s = self.features(prefix[idx], spec)  # the scale uses every coordinate of a tensor
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
        feats, s = self.features(prefix, spec)
        return prefix[:, -1] + s * self.module(feats)


class WNN(CoordinateNetBaseline):
    """WNN: 12 dense ReLU layers (width 40, ~17k parameters) on weight-difference features.

    Per coordinate: input the features of :func:`wnn_features` (Table 5's ``[X1, dX]``),
    output ``(w_m - w_n) / s``; prediction ``w_n + s * net(features)``. Loss: MSE on that
    normalized target plus ``l1`` (default 1e-6) times the sum of absolute weights (the
    L1 regularization of Table 5; biases are not penalized).

    Ambiguities: "~12 Dense + Calculus layers, ~20K": we use 12 ``Linear`` layers
    (width 40), the calculus layer being the fixed difference features. The original WNN
    nowcasts a few steps ahead; here, like every baseline, it is trained to jump straight
    to ``w_m``. At most ``max_coords`` (default 4096) coordinates per step.

    Example:
        >>> w = torch.randn(8, 10, 3)
        >>> WNN().fit(w, n=4, m=9, epochs=2).predict(torch.randn(2, 5, 7)).shape
        torch.Size([2, 7])
    """

    name = "wnn"

    def __init__(self, width: int = 40, layers: int = 12, l1: float = 1e-6, max_coords: int = 4096) -> None:
        super().__init__(l1=l1, max_coords=max_coords)
        if layers < 2:
            raise ValueError(f"layers must be >= 2, got {layers}")
        self.width, self.layers = int(width), int(layers)

    def features(self, prefix, spec):
        return wnn_features(prefix, spec)

    def build(self, num_features: int) -> nn.Module:
        return _WNNNet(num_features, self.width, self.layers)


def introspection_features(prefix: torch.Tensor, spec: ParamSpec | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate Introspection input: the current value and 3 earlier scaled offsets.

    Args:
        prefix: ``(B, n+1, D)``.
        spec: layout of D, or None.

    Returns:
        ``(features (B, D, 4), s (B, D))``: raw ``w_n`` then ``(w_k - w_n)/s`` at
        ``k = 0, round(0.4 n), round(0.7 n)`` (:func:`introspection_indices`).
    """
    s = coordinate_scale(prefix, spec)
    idx = introspection_indices(prefix.shape[1] - 1)[:3]
    offsets = (prefix[:, idx] - prefix[:, -1:]) / s.unsqueeze(1)  # (B, 3, D)
    return torch.cat([prefix[:, -1:], offsets], dim=1).transpose(1, 2), s


class _MLP(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        last = nn.Linear(hidden, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class IntrospectionCoord(CoordinateNetBaseline):
    """Introspection as Sinha et al. (2017) built it: one Linear(4, 100)-ReLU-Linear(100, 1) for every weight.

    The reading of Table 5's ``[N, D, 4]`` in which the 4 is per coordinate: the snapshots
    at ``0, 0.4 n, 0.7 n, n`` of each coordinate (:func:`introspection_features`), one
    shared 601-parameter network. Serves any D. Use it where the flat
    :class:`~gfm_accel.lab.baselines.neural.Introspection` (``~500 D`` parameters) is refused.

    Example:
        >>> w = torch.randn(8, 10, 3)
        >>> IntrospectionCoord().fit(w, n=4, m=9, epochs=2).predict(torch.randn(2, 5, 7)).shape
        torch.Size([2, 7])
    """

    name = "introspection_coord"

    def __init__(self, hidden: int = 100, max_coords: int = 4096) -> None:
        super().__init__(l1=0.0, max_coords=max_coords)
        self.hidden = int(hidden)

    def features(self, prefix, spec):
        return introspection_features(prefix, spec)

    def build(self, num_features: int) -> nn.Module:
        return _MLP(num_features, self.hidden)


class LFD2Coord(Baseline):
    """LFD-2 per coordinate: one linear layer ``w_m = a w_0 + b w_n + c`` shared by all weights.

    The reading of Table 5's ``[N, D, 2]`` in which each coordinate is a sample with the 2
    features ``(w_0, w_n)`` (3 parameters, any D). It is fitted in closed form (least
    squares over all N x D coordinates, float64, accumulated in chunks), which is the
    solution the paper's Adam + MSE protocol converges to; no epochs.

    Example:
        >>> w0 = torch.randn(4, 1, 50)
        >>> w = torch.cat([w0, 0.5 * w0, 0.2 * w0], dim=1)  # w_2 = 0.4 w_1
        >>> model = LFD2Coord().fit(w, n=1, m=2)
        >>> torch.allclose(model.predict(w[:, :2]), w[:, 2], atol=1e-4)
        True
    """

    name = "lfd2_coord"
    per_coordinate = True

    def __init__(self, chunk: int = 1 << 22) -> None:
        super().__init__()
        self.chunk = int(chunk)

    @staticmethod
    def _design(prefix: torch.Tensor) -> torch.Tensor:  # (B, n+1, D) -> (B*D, 3)
        w0, wn = prefix[:, 0].reshape(-1), prefix[:, -1].reshape(-1)
        return torch.stack([w0, wn, torch.ones_like(w0)], dim=-1)

    def _fit(self, prefix, target, **_) -> None:
        gram = torch.zeros(3, 3, dtype=torch.float64)
        cross = torch.zeros(3, dtype=torch.float64)
        per = max(1, self.chunk // max(prefix.shape[-1], 1))
        for start in range(0, prefix.shape[0], per):
            x = self._design(prefix[start : start + per]).double()
            gram += x.T @ x
            cross += x.T @ target[start : start + per].reshape(-1).double()
        # a tiny ridge keeps the solve defined when w_0 == w_n (n = 0) or w_0 is constant
        penalty = 1e-8 * float(gram.trace()) + 1e-12
        self.coef_ = torch.linalg.solve(gram + penalty * torch.eye(3, dtype=torch.float64), cross).float()

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        return (self._design(prefix) @ self.coef_).view(prefix.shape[0], prefix.shape[-1])


