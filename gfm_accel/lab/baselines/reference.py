"""The simple references every reviewer asks for: last value, train mean, ridge.

All four are closed form (no epochs) and deterministic.
"""

from __future__ import annotations

import torch

from ...params import ParamSpec
from .base import Baseline, Standardizer, coordinate_scale

__all__ = ["LastValue", "TrainMean", "Ridge", "RidgeCoord", "ridge_solve", "ridge_dual", "coordinate_window"]


class LastValue(Baseline):
    """Predict ``w_m = w_n``: no learning, any D, any horizon.

    ``fit`` only records n and m (and validates); ``forecast`` accepts any ``m > n`` and
    any prefix length.

    Example:
        >>> w = torch.arange(12.).view(1, 6, 2)
        >>> LastValue().fit(w, n=2, m=5).predict(w[:, :3])
        tensor([[4., 5.]])
    """

    name = "last"
    per_coordinate = True
    horizon_agnostic = True

    def _fit(self, prefix, target, **_) -> None:
        pass

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        return prefix[:, -1].clone()


class TrainMean(Baseline):
    """Predict the training-set mean of ``w_m`` whatever the prefix (D-specific).

    Example:
        >>> w = torch.stack([torch.zeros(5, 2), torch.ones(5, 2)])
        >>> TrainMean().fit(w, n=1, m=4).predict(w[:1, :2])
        tensor([[0.5000, 0.5000]])
    """

    name = "mean"
    max_params = None

    @classmethod
    def num_params(cls, dim: int, n: int = 4) -> int:
        return dim

    def _fit(self, prefix, target, **_) -> None:
        self.mean_ = target.mean(0)

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        return self.mean_.expand(prefix.shape[0], -1).clone()


def _ridge_penalty(x64: torch.Tensor, alpha: float) -> float:
    # relative to the mean squared feature-vector norm; the floor keeps a rank-deficient x solvable
    return max(alpha * float((x64 * x64).sum()) / max(x64.shape[0], 1), 1e-10)


def ridge_dual(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Dual ridge coefficients ``A = (x x^T + a I)^{-1} y``, so that ``W = x^T A``.

    Predict with ``(x_new @ x.T) @ A`` without ever forming the ``(p, k)`` matrix W, which
    is what makes ridge run at any D. Arguments and penalty as :func:`ridge_solve`.

    Returns:
        ``(N, k)`` float64.
    """
    x64 = x.double()
    num = x64.shape[0]
    kernel = x64 @ x64.T + _ridge_penalty(x64, alpha) * torch.eye(num, dtype=torch.float64)
    return torch.linalg.solve(kernel, y.double())


def ridge_solve(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Ridge weights ``W`` minimizing ``|xW - y|^2 + a |W|^2`` with ``a = alpha * mean_i |x_i|^2``.

    The penalty is relative to the mean squared feature-vector norm (``trace(x x^T) / N``),
    so ``alpha`` means the same whatever the number of features. Uses the primal
    ``(p, p)`` system when p <= N and the dual ``(N, N)`` one otherwise (same solution).
    Solved in float64.

    Args:
        x: ``(N, p)`` features.
        y: ``(N, k)`` targets.
        alpha: relative penalty, >= 0.

    Returns:
        ``(p, k)`` float32.
    """
    x64, y64 = x.double(), y.double()
    num, p = x64.shape
    if p <= num:
        gram = x64.T @ x64 + _ridge_penalty(x64, alpha) * torch.eye(p, dtype=torch.float64)
        return torch.linalg.solve(gram, x64.T @ y64).float()
    return (x64.T @ ridge_dual(x, y, alpha)).float()


class Ridge(Baseline):
    """Ridge regression from the flattened, standardized prefix to ``w_m`` (D-specific).

    Features: ``w_0..w_n`` flattened to ``(n+1) D`` numbers, each standardized with the
    training mean and std (constant features, e.g. an identical initialization, become 0).
    Target: ``w_m`` minus its training mean (so the intercept is not penalized).
    Penalty: ``alpha`` (default 1e-2) times the mean squared feature-vector norm, see
    :func:`ridge_solve`; with standardized features that is ``alpha (n+1) D``. 1e-2 is
    small enough not to bias a well-determined problem (Table 1: 30 samples, 10 features)
    and keeps the ``(n+1) D >> N`` case (the dual solve used at large D) well
    conditioned. When ``(n+1) D > N`` it keeps the standardized training prefixes and the
    ``(N, D)`` dual coefficients instead of a ``(n+1) D x D`` matrix, so its memory is the
    training data itself and there is no size guard.

    Example:
        >>> w = torch.randn(8, 6, 3)
        >>> Ridge().fit(w, n=2, m=5).predict(w[:2, :3]).shape
        torch.Size([2, 3])
    """

    name = "ridge"

    def __init__(self, alpha: float = 1e-2) -> None:
        super().__init__()
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.alpha = float(alpha)

    @classmethod
    def num_params(cls, dim: int, n: int = 4) -> int:
        return (n + 1) * dim * dim + dim

    def _fit(self, prefix, target, **_) -> None:
        flat = prefix.reshape(prefix.shape[0], -1)
        self.x_scaler = Standardizer.fit(flat, dims=(0,))
        self.y_mean = target.mean(0, keepdim=True)
        x = self.x_scaler.transform(flat)
        if x.shape[1] <= x.shape[0]:
            self.coef_ = ridge_solve(x, target - self.y_mean, self.alpha)  # (p, D)
            self.x_train_ = self.dual_coef_ = None
        else:  # (n+1) D > N: keep the data and the (N, D) dual coefficients, never the (p, D) matrix
            self.coef_ = None
            self.x_train_ = x
            self.dual_coef_ = ridge_dual(x, target - self.y_mean, self.alpha).float()

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        x = self.x_scaler.transform(prefix.reshape(prefix.shape[0], -1))
        if self.coef_ is not None:
            return x @ self.coef_ + self.y_mean
        return (x @ self.x_train_.T) @ self.dual_coef_ + self.y_mean


def coordinate_window(prefix: torch.Tensor, spec: ParamSpec | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each coordinate's history, centred on ``w_n`` and scaled by its tensor's movement.

    Args:
        prefix: ``(B, n+1, D)``.
        spec: layout of D, or None (whole vector = one tensor).

    Returns:
        ``(z, s)``: ``z`` ``(B, D, n)`` with ``z[..., k] = (w_k - w_n) / s`` for ``k < n``
        (the ``w_n`` entry is identically 0 and dropped), and ``s`` ``(B, D)`` from
        :func:`~gfm_accel.lab.baselines.base.coordinate_scale`.
    """
    s = coordinate_scale(prefix, spec)
    z = (prefix[:, :-1] - prefix[:, -1:]) / s.unsqueeze(1)
    return z.transpose(1, 2), s


class RidgeCoord(Baseline):
    """Per-coordinate ridge: one linear map from a coordinate's normalized window to its ``w_m``.

    For every coordinate ``j`` of every trajectory: features
    ``z_k = (w_k[j] - w_n[j]) / s`` (``k = 0..n-1``), target ``(w_m[j] - w_n[j]) / s``,
    where ``s`` is the RMS movement ``w_n - w_0`` of j's tensor in that trajectory (the
    whole vector without a spec). The map has no intercept, so it is odd: a coordinate
    moving the other way gets the mirrored forecast. One ``n``-vector of coefficients
    serves any D, which makes this the least-squares competitor for live jumps.
    ``alpha`` (default 1e-3) is relative to the mean squared feature norm, as in
    :func:`ridge_solve`. With ``n = 0`` there is no motion to read and it predicts ``w_0``.

    Example:
        >>> t = torch.arange(10.)
        >>> w = (1 - 0.8 ** t).view(1, 10, 1) * torch.tensor([1., -2.])
        >>> model = RidgeCoord().fit(w, n=3, m=9)
        >>> torch.allclose(model.predict(w[:, :4]), w[:, 9], atol=1e-2)
        True
    """

    name = "ridge_coord"
    per_coordinate = True

    def __init__(self, alpha: float = 1e-3, chunk: int = 1 << 20) -> None:
        super().__init__()
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.chunk = int(chunk)

    def _fit(self, prefix, target, *, spec=None, **_) -> None:
        n = prefix.shape[1] - 1
        if n == 0:
            self.coef_ = torch.zeros(0)
            return
        gram = torch.zeros(n, n, dtype=torch.float64)
        cross = torch.zeros(n, dtype=torch.float64)
        total = 0
        # accumulate over trajectories so that a large D never materializes (N, D, n) at once
        per = max(1, self.chunk // max(prefix.shape[-1] * n, 1))
        for start in range(0, prefix.shape[0], per):
            z, s = coordinate_window(prefix[start : start + per], spec)
            y = (target[start : start + per] - prefix[start : start + per, -1]) / s
            zf = z.reshape(-1, n).double()
            gram += zf.T @ zf
            cross += zf.T @ y.reshape(-1).double()
            total += zf.shape[0]
        penalty = max(self.alpha * float(gram.trace()) / max(total, 1), 1e-12)
        self.coef_ = torch.linalg.solve(gram + penalty * torch.eye(n, dtype=torch.float64), cross).float()

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        if self.coef_.numel() == 0:
            return prefix[:, -1].clone()
        z, s = coordinate_window(prefix, spec)
        return prefix[:, -1] + s * (z @ self.coef_)
