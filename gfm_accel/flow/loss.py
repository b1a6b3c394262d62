"""The GFM training objective (Eq. 9 + the midpoint consistency term, Algorithm 1).

``L_GFM = E_t[(beta Z + gamma (1 - Z)) ||v(w(t), t) - u_t||^2] + zeta ||w_hat_m - w_m||^2``
where ``w_hat_m`` is one midpoint step of the field from ``w_n`` at ``t_n = n/m`` to 1.

Reduction (a choice; the paper writes squared norms): ``reduction="mean"`` (default)
averages the squared error over D as well as over the batch, so the loss scale does not
grow with the model size; ``"sum"`` sums over D (the paper's ``||.||^2``) and averages
over the batch. Both terms use the same reduction, so their ratio, and hence the meaning of
``zeta``, is the same either way (and Adam is insensitive to a constant factor).

Example:
    >>> field = lambda w, t: torch.zeros_like(w)
    >>> prefix = torch.zeros(1, 2, 1); w_m = torch.ones(1, 1)
    >>> out = gfm_loss(field, prefix, w_m, 4, torch.tensor([0.9]), zeta=1.0)
    >>> out.cfm.item(), out.pred.item(), out.total.item()   # target 1 beyond prefix; w_hat_m = 0
    (1.0, 1.0, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .path import PathSample, midpoint_forecast, sample_path

__all__ = ["GFMLoss", "gfm_loss"]

Field = Callable[[Tensor, Tensor], Tensor]


@dataclass
class GFMLoss:
    """The terms of the GFM objective (scalars, differentiable).

    Attributes:
        total: ``cfm + zeta * pred``.
        cfm: the weighted flow-matching term (Eq. 9).
        pred: the consistency term ``||w_hat_m - w_m||^2`` (before ``zeta``).
        sample: the :class:`PathSample` that was used.
        w_hat_m: ``(B, D)`` the midpoint forecast.

    Example:
        >>> f = lambda w, t: torch.zeros_like(w)
        >>> gfm_loss(f, torch.zeros(2, 1, 3), torch.zeros(2, 3), 9, torch.rand(2)).total.item()
        0.0
    """

    total: Tensor
    cfm: Tensor
    pred: Tensor
    sample: PathSample
    w_hat_m: Tensor


def _reduce(sq: Tensor, reduction: str) -> Tensor:
    """``(B, D)`` squared errors -> ``(B,)``."""
    if reduction == "mean":
        return sq.mean(dim=-1)
    if reduction == "sum":
        return sq.sum(dim=-1)
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'sum'")


def _weighted_mean(per_sample: Tensor, weights: Tensor | None) -> Tensor:
    """``(B,)`` -> scalar: the mean of ``weights * per_sample`` (or of ``per_sample``)."""
    return (per_sample if weights is None else weights * per_sample).mean()


def gfm_loss(
    field: Field,
    prefix: Tensor,
    w_m: Tensor,
    m: int | Tensor,
    t: Tensor,
    *,
    path: str = "paper",
    beta: float = 1.0,
    gamma: float = 1.0,
    zeta: float = 100.0,
    reduction: str = "mean",
    weights: Tensor | None = None,
) -> GFMLoss:
    """Evaluate the GFM loss on a mini-batch.

    Args:
        field: ``field(w (B', D), t (B',)) -> (B', D)``. ``B'`` is ``B`` here; a conditioned
            field must close over its prefix (row b of the batch belongs to trajectory b).
        prefix: ``(B, n+1, D)`` observed snapshots.
        w_m: ``(B, D)`` target snapshots.
        m: horizon, int or ``(B,)`` integer tensor.
        t: ``(B,)`` sampled times in [0, 1].
        path: ``"paper"`` | ``"from_last"`` (see :mod:`gfm_accel.flow.path`).
        beta: prefix weight. gamma: extrapolation weight. zeta: consistency weight.
        reduction: ``"mean"`` or ``"sum"`` over D (see module docstring).
        weights: ``(B,)`` optional per-sample weights; each sample's flow-matching and
            consistency terms are multiplied by its weight before the batch mean (``None``:
            all 1, the plain average).

    Returns:
        A :class:`GFMLoss`; the scalars are (weighted) averages over the batch.
    """
    if weights is not None and tuple(weights.shape) != (prefix.shape[0],):
        raise ValueError(f"weights must have shape ({prefix.shape[0]},), got {tuple(weights.shape)}")
    sample = sample_path(prefix, w_m, m, t, path=path, beta=beta, gamma=gamma)
    v = field(sample.w_t, sample.t)
    cfm = _weighted_mean(sample.weight * _reduce((v - sample.target) ** 2, reduction), weights)
    n = prefix.shape[1] - 1
    m_t = m.to(prefix.dtype) if torch.is_tensor(m) else torch.full((prefix.shape[0],), float(m), dtype=prefix.dtype)
    t_n = (n / m_t).to(prefix.device)
    if zeta != 0.0:
        w_hat = midpoint_forecast(field, prefix[:, n], t_n)
        pred = _weighted_mean(_reduce((w_hat - w_m) ** 2, reduction), weights)
    else:
        w_hat = prefix[:, n]
        pred = torch.zeros((), dtype=prefix.dtype, device=prefix.device)
    return GFMLoss(total=cfm + zeta * pred, cfm=cfm, pred=pred, sample=sample, w_hat_m=w_hat)
