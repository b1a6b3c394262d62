"""The linear skip paths of the dense field: a linear forecast of ``w_m - w_n`` beside the flow.

Two skips, each forecasting the displacement ``w_m - w_n`` from the observed prefix; with
``skip="lstsq"`` or ``"dynamics"`` the dense GFM forecaster adds it to the integrated flow and
the field learns the residual flow on top (a field that outputs zero forecasts the skip);
the default ``skip="auto"`` uses the field alone or the dynamics skip alone, whichever is
clearly better on held-out training pairs (:class:`~gfm_accel.forecast.dense.DenseBackend`).

* **least squares** (:func:`fit_linear_skip`, ``"lstsq"``): a linear map of the prefix fitted
  in closed form on the training pairs (below);
* **linear dynamics** (:func:`dynamics_displacement`, ``"dynamics"``): each prefix's own steps
  ``d_j = w_j - w_{j-1}`` are fitted by one linear map ``d_{j+1} = A d_j`` (symmetric, as the
  step map ``I - lr H`` of gradient descent on a quadratic is, when the prefix determines it;
  else diagonal) and extrapolated, ``w_m - w_n = sum_{j=1..m-n} A^j d_n``. Nothing is fitted
  across trajectories, so it holds for a prefix unlike any training one as long as the
  dynamics are linear: on gradient descent for linear regression it is exact up to the
  snapshots' float32 rounding (3-4x below least squares on the paper's benchmark), while
  under Adam (near-constant steps) it is a straight line and overshoots.

The least-squares skip. Per coordinate ``d`` the features are the last snapshot and the steps of the prefix,
``f_d = (w_n, w_n - w_{n-1}, ..., w_1 - w_0)`` (``n + 1`` values; ``w_0`` for n = 0), and the
target is the displacement ``w_m - w_n``. Two forms, chosen by size:

* **full** (``(n+1) D <= FULL_MAX_FEATURES``): every coordinate's displacement is a linear map
  of all coordinates' features and 1 (``(D, (n+1) D + 1)`` coefficients); this is ordinary
  least squares on the flattened prefix, which couples coordinates as a linear system does;
* **per coordinate** (larger models): coordinate d's own ``f_d`` and 1 (``(D, n + 2)``
  coefficients, so the map scales to any D).

Each coordinate's map is fitted by ridge regression on standardized features with the
penalty chosen per coordinate by exact leave-one-out error on the training pairs (closed
form), from a fixed grid whose smallest value is plain least squares; nothing is tuned on
test data.

Example:
    >>> w = torch.linspace(0, 1, 6).view(1, 6, 1) * torch.arange(1.0, 5.0).view(4, 1, 1)  # (4, T=6, 1)
    >>> skip = fit_linear_skip(w[:, :3], w[:, 5] - w[:, 2])         # lines: w_5 - w_2 = 3 (w_2 - w_1)
    >>> torch.allclose(w[:, 2] + skip.displacement(w[:, :3]), w[:, 5], atol=1e-4)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SKIPS", "AUTO_CHOICES", "AUTO_MARGIN", "RIDGE_GRID", "FULL_MAX_FEATURES", "LinearSkip", "skip_features", "fit_linear_skip",
           "DYNAMICS_MAX_EIG", "fit_step_maps", "dynamics_displacement", "DynamicsSkip", "fit_dynamics_skip"]

#: ``"none"``: the field alone; ``"lstsq"``: the least-squares linear skip under a residual field;
#: ``"dynamics"``: the linear-dynamics skip under a residual field; ``"auto"``: the field alone or
#: the dynamics skip alone, chosen on held-out training pairs.
SKIPS: tuple[str, ...] = ("none", "lstsq", "dynamics", "auto")
#: What ``"auto"`` can choose. Not the least-squares skip: it extrapolates *across* trajectories,
#: and held-out training pairs cannot show how it does on a test prefix unlike every training one
#: (measured: on RMSprop, seed 2 of ``benchmarks/bench_linreg_default.py``, its 5-fold error was
#: 0.032 against the field's 0.035, and on the test trajectories it was 1.32 against 0.0069).
AUTO_CHOICES: tuple[str, ...] = ("none", "dynamics")
#: ``"auto"`` takes the dynamics skip only when its held-out error is below this fraction of the field's.
AUTO_MARGIN = 0.5
#: Ridge penalties tried, relative to the (standardized) feature scale; the first is plain least squares.
RIDGE_GRID: tuple[float, ...] = (1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Largest ``(n+1) D`` for which the full (cross-coordinate) map is fitted.
FULL_MAX_FEATURES = 128


def skip_features(prefix: Tensor, full: bool = False) -> Tensor:
    """The skip's regressors of each coordinate, with a trailing 1.

    Args:
        prefix: ``(B, n+1, D)``.
        full: every coordinate sees all coordinates' features (the full map).

    Returns:
        ``(B, D, n+2)`` (own ``w_n``, steps ``w_j - w_{j-1}`` latest first, 1), or with ``full``
        ``(B, D, (n+1) D + 1)`` (the same row for every coordinate).
    """
    b, n1, d = prefix.shape
    steps = (prefix[:, 1:] - prefix[:, :-1]).flip(1)  # (B, n, D)
    own = torch.cat([prefix[:, -1:], steps], dim=1).transpose(1, 2)  # (B, D, n+1)
    if full:
        own = own.reshape(b, 1, d * n1).expand(b, d, d * n1)
    return torch.cat([own, torch.ones(b, d, 1, dtype=prefix.dtype, device=prefix.device)], dim=-1)


@dataclass
class LinearSkip:
    """Per-coordinate linear map of the prefix to the displacement ``w_m - w_n``.

    Attributes:
        coef: ``(D, n+2)`` (per coordinate) or ``(D, (n+1) D + 1)`` (full) coefficients of
            :func:`skip_features` (float32). For D = 1 both forms are the same.
        low, high: ``(D,)`` the displacement is clamped to ``[low, high]``: the training
            displacements' range widened by half its width on each side (None: no clamp). A
            least-squares map with large coefficients can extrapolate wildly for a prefix
            unlike the training ones; the clamp bounds that.
    """

    coef: Tensor
    low: Tensor | None = None
    high: Tensor | None = None

    @staticmethod
    def shape_for(n: int, d: int) -> tuple[int, int]:
        """The coefficient shape :func:`fit_linear_skip` gives for a ``(N, n+1, D)`` prefix."""
        full = (n + 1) * d <= FULL_MAX_FEATURES
        return (d, (n + 1) * d + 1) if full else (d, n + 2)

    def displacement(self, prefix: Tensor) -> Tensor:
        """``(B, n+1, D)`` -> ``(B, D)``: the skip's forecast of ``w_m - w_n``."""
        n1, d = prefix.shape[1], prefix.shape[2]
        if tuple(self.coef.shape) != self.shape_for(n1 - 1, d):
            raise ValueError(f"the linear skip's coefficients {tuple(self.coef.shape)} do not fit a prefix "
                             f"(n+1, D) = ({n1}, {d})")
        if self.coef.shape[1] == n1 * d + 1 and d > 1:  # full: one row of regressors for every coordinate
            out = skip_features(prefix.to(self.coef.dtype), full=True)[:, 0] @ self.coef.T
        else:
            out = torch.einsum("bdk,dk->bd", skip_features(prefix.to(self.coef.dtype)), self.coef)
        if self.low is not None and self.high is not None:
            out = torch.maximum(torch.minimum(out, self.high), self.low)
        return out


def fit_linear_skip(prefix: Tensor, displacement: Tensor, *, chunk: int = 4096) -> LinearSkip:
    """Fit the per-coordinate ridge map ``skip_features(prefix) -> displacement``.

    Args:
        prefix: ``(N, n+1, D)`` training prefixes.
        displacement: ``(N, D)`` their targets ``w_m - w_n``.
        chunk: coordinates solved at once (memory ``chunk x len(RIDGE_GRID) x k^2`` for k regressors).

    Returns:
        A :class:`LinearSkip`; for each coordinate the penalty of :data:`RIDGE_GRID` with the
        smallest leave-one-out squared error (the bias column is not penalised).
    """
    n_pairs, n1, d = prefix.shape
    k = LinearSkip.shape_for(n1 - 1, d)[1]
    full = k > n1 + 1
    coef = torch.empty(d, k, dtype=torch.float64)
    grid = torch.tensor(RIDGE_GRID, dtype=torch.float64).view(-1, 1, 1)  # (G, 1, 1)
    for a in range(0, d, chunk):
        z = min(d, a + chunk)
        x = skip_features(prefix.double(), full)[:, a:z] if full else skip_features(prefix[:, :, a:z].double())
        x = x.transpose(0, 1)[..., :-1]  # (C, N, k-1): the regressors without the 1
        y = displacement[:, a:z].double().transpose(0, 1)  # (C, N)
        # Centring handles the unpenalised intercept; standardizing makes the penalty scale-free.
        x_mean, y_mean = x.mean(dim=1, keepdim=True), y.mean(dim=1, keepdim=True)
        scale = (x - x_mean).std(dim=1, keepdim=True).clamp(min=1e-12)  # (C, 1, k-1)
        xs = (x - x_mean) / scale
        # Ridge through the SVD of the regressors (not the normal equations, whose squared
        # condition number would lose the small step differences that a linear system leaves).
        u, sv, vh = torch.linalg.svd(xs, full_matrices=False)  # (C, N, r), (C, r), (C, r, k-1)
        lam = grid * n_pairs  # (G, 1, 1): relative to the standardized Gram's diagonal (N)
        shrink = sv.unsqueeze(0) / (sv.unsqueeze(0).pow(2) + lam)  # (G, C, r)
        uty = torch.einsum("cnr,cn->cr", u, y - y_mean)  # (C, r)
        beta = torch.einsum("gcr,cr,crk->gck", shrink, uty, vh)  # (G, C, k-1)
        hat = 1.0 / n_pairs + torch.einsum("cnr,gcr->gcn", u.pow(2), shrink * sv.unsqueeze(0))  # (G, C, N)
        fitted = torch.einsum("cnk,gck->gcn", xs, beta) + y_mean.unsqueeze(0)
        loo = ((y.unsqueeze(0) - fitted) / (1.0 - hat).clamp(min=1e-6)).pow(2).mean(dim=-1)  # (G, C)
        best = beta[loo.argmin(dim=0), torch.arange(z - a)] / scale.squeeze(1)  # (C, k-1) in raw units
        coef[a:z, :-1] = best
        coef[a:z, -1] = y_mean.squeeze(1) - (x_mean.squeeze(1) * best).sum(dim=-1)
    lo, hi = displacement.amin(dim=0).float(), displacement.amax(dim=0).float()
    return LinearSkip(coef=coef.float(), low=lo - 0.5 * (hi - lo), high=hi + 0.5 * (hi - lo))


# ------------------------------------------------------------------ the linear-dynamics skip
#: Eigenvalues of a fitted step map are clipped to ``[-DYNAMICS_MAX_EIG, DYNAMICS_MAX_EIG]``.
DYNAMICS_MAX_EIG = 1.0


def fit_step_maps(prefix: Tensor) -> Tensor:
    """Per trajectory, the linear map ``A`` with ``d_{j+1} ~ A d_j`` for the prefix's steps.

    ``d_j = w_j - w_{j-1}`` (j = 1..n). Gradient descent on a quadratic with Hessian ``H`` has
    exactly ``d_{j+1} = (I - lr H) d_j``, a symmetric map; so ``A`` is fitted symmetric, by least
    squares over the ``n - 1`` transitions, when that is overdetermined (``D (D + 1) / 2 <
    (n - 1) D``, i.e. ``D < 2 n - 3``), and diagonal (one factor per coordinate) otherwise.
    The fit is in float64 on the raw weights (the symmetric form is not invariant to
    per-coordinate scaling).

    Args:
        prefix: ``(B, n+1, D)`` with n >= 2.

    Returns:
        ``(B, D, D)`` float64 symmetric maps (a diagonal one too: for inspection at small D;
        :func:`dynamics_displacement` applies a diagonal map per coordinate without it).

    Example:
        >>> a = torch.tensor([[0.9, 0.05], [0.05, 0.7]], dtype=torch.float64)
        >>> w = [torch.tensor([1.0, -1.0], dtype=torch.float64)]
        >>> d = torch.tensor([0.3, 0.2], dtype=torch.float64)
        >>> for _ in range(4):
        ...     w.append(w[-1] + d); d = a @ d
        >>> torch.allclose(fit_step_maps(torch.stack(w).unsqueeze(0))[0], a)
        True
    """
    b, n1, d = prefix.shape
    _check_snapshots(n1)
    p = prefix.double()
    steps = p[:, 1:] - p[:, :-1]  # (B, n, D)
    x, y = steps[:, :-1], steps[:, 1:]  # (B, n-1, D): y_j = A x_j
    if _diagonal(d, n1):
        return torch.diag_embed(_diagonal_factors(x, y))  # dense (B, D, D): small D only
    rows, cols = torch.triu_indices(d, d)  # the free entries A[r, c] = A[c, r], r <= c
    # Equation (j, i): y_j[i] = sum_k A[i, k] x_j[k]; unknown u is A[rows[u], cols[u]].
    design = torch.zeros(b, n1 - 2, d, rows.numel(), dtype=torch.float64)
    for u, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        design[:, :, r, u] += x[:, :, c]
        if r != c:
            design[:, :, c, u] += x[:, :, r]
    sol = torch.linalg.lstsq(design.reshape(b, -1, rows.numel()), y.reshape(b, -1, 1), driver="gelsd").solution
    a = torch.zeros(b, d, d, dtype=torch.float64)
    a[:, rows, cols] = sol[..., 0]
    a[:, cols, rows] = sol[..., 0]
    return a


def _check_snapshots(n1: int) -> None:
    if n1 < 3:
        raise ValueError(f"the dynamics skip needs at least 3 snapshots (n >= 2), got n+1={n1}")


def _diagonal(d: int, n1: int) -> bool:
    """Whether the map is fitted diagonal: the symmetric fit is not overdetermined (``D >= 2 n - 3``)."""
    return d * (d + 1) // 2 >= (n1 - 2) * d


def _diagonal_factors(x: Tensor, y: Tensor) -> Tensor:
    """Per coordinate, the least-squares factor ``a`` of ``y_j = a x_j`` over the transitions: ``(B, D)``."""
    num = (x * y).sum(dim=1)
    den = (x * x).sum(dim=1)
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _geometric(lam: Tensor, horizon: int) -> Tensor:
    """``sum_{j=1..K} lam^j`` elementwise, ``lam`` clipped to ``[-1, 1]`` (``K`` where it is 1)."""
    lam = lam.clamp(-DYNAMICS_MAX_EIG, DYNAMICS_MAX_EIG)
    near_one = (1.0 - lam).abs() < 1e-9
    return torch.where(near_one, torch.full_like(lam, float(horizon)),
                       lam * (1.0 - lam.pow(horizon)) / torch.where(near_one, torch.ones_like(lam), 1.0 - lam))


def dynamics_displacement(prefix: Tensor, horizon: int) -> Tensor:
    """``w_{n+K} - w_n`` if the steps keep following the fitted map: ``sum_{j=1..K} A^j d_n``.

    Computed through the eigendecomposition of each symmetric map, eigenvalues clipped to
    ``[-1, 1]`` (a fitted growth is read as a constant step: the sum of an eigenvalue 1 over
    K steps is K, linear extrapolation along that direction). A diagonal map (``D >= 2 n - 3``,
    every real network) is its own eigendecomposition: it is applied per coordinate, in
    ``O(B D)`` memory, never as a ``D x D`` matrix (which at ``D = 30k`` would be 7 GB and a
    cubic-time ``eigh``).

    Args:
        prefix: ``(B, n+1, D)``, n >= 2.
        horizon: K = m - n >= 1.

    Returns:
        ``(B, D)`` float64.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    p = prefix.double()
    last = p[:, -1] - p[:, -2]  # (B, D)
    b, n1, d = p.shape
    _check_snapshots(n1)
    if _diagonal(d, n1):
        steps = p[:, 1:] - p[:, :-1]
        return _geometric(_diagonal_factors(steps[:, :-1], steps[:, 1:]), horizon) * last
    lam, vec = torch.linalg.eigh(fit_step_maps(p))  # (B, D), (B, D, D)
    geo = _geometric(lam, horizon)
    coeff = torch.einsum("bij,bi->bj", vec, last) * geo  # in the eigenbasis
    return torch.einsum("bij,bj->bi", vec, coeff)


@dataclass
class DynamicsSkip:
    """The linear-dynamics skip: each prefix's own steps extrapolated by their fitted linear map.

    Nothing is learned from other trajectories but the clamp: the displacement is clamped to
    ``[low, high]``, the training displacements' range (for the trained horizon) widened by
    half its width on each side, scaled linearly for another horizon.

    Attributes:
        low, high: ``(D,)`` float32 bounds for ``w_m - w_n`` at the trained horizon.
        horizon: the trained ``m - n``.

    Example:
        >>> w = torch.stack([torch.tensor([1.0 - 0.5 ** j]) for j in range(8)]).view(1, 8, 1)
        >>> skip = DynamicsSkip(torch.tensor([-1.0]), torch.tensor([1.0]), horizon=4)
        >>> round(float(w[0, 3, 0] + skip.displacement(w[:, :4], 4)[0, 0]), 6), float(w[0, 7, 0])
        (0.992188, 0.9921875)
    """

    low: Tensor
    high: Tensor
    horizon: int

    def displacement(self, prefix: Tensor, horizon: int) -> Tensor:
        """``(B, n+1, D)`` -> ``(B, D)`` (the prefix's dtype): the forecast of ``w_{n+K} - w_n``."""
        out = dynamics_displacement(prefix, horizon)
        scale = horizon / self.horizon
        low, high = self.low.double() * scale, self.high.double() * scale
        return torch.maximum(torch.minimum(out, high), low).to(prefix.dtype)


def fit_dynamics_skip(displacement: Tensor, horizon: int) -> DynamicsSkip:
    """The clamp of a :class:`DynamicsSkip` from the training displacements ``(N, D)`` at ``horizon``."""
    lo, hi = displacement.amin(dim=0).float(), displacement.amax(dim=0).float()
    return DynamicsSkip(low=lo - 0.5 * (hi - lo), high=hi + 0.5 * (hi - lo), horizon=horizon)
