"""The one interface every baseline follows, and the shared machinery behind it.

A baseline is fitted on training trajectories ``weights`` of shape ``(N, T, D)`` to map a
prefix ``w_0 .. w_n`` (indices into T) to the target snapshot ``w_m``, then predicts
``(B, n+1, D) -> (B, D)``. It also satisfies the
:class:`~gfm_accel.forecast.base.Forecaster` protocol, so a harness can use a baseline
wherever it uses a forecaster.

Two families:

* **D-specific** models (``per_coordinate = False``) see the whole flattened vector; they
  only serve the D they were fitted on (``expected_dim = D``) and their size grows with D.
  Each has :meth:`Baseline.num_params` and :meth:`Baseline.supports` so a harness can write
  "not run: memory" instead of crashing (see :data:`DEFAULT_MAX_PARAMS`).
* **Per-coordinate** models (``per_coordinate = True``) learn one small map shared by all
  coordinates, applied to each coordinate's own normalized history (see
  :func:`coordinate_scale`); they serve any D (``expected_dim = None``).

Training protocol (App. A): Adam, learning rate 1e-4, MSE on ``w_m``; batch size 16 by
default (App. A allows 16 or 32; 16 gives twice the optimizer steps per epoch on the 30
training trajectories of Table 1, which matters at lr 1e-4). All neural D-specific models
are trained in a standardized space (inputs and targets centred and scaled by training-set
statistics, undone at prediction); the paper does not say whether it normalizes, and
without it Adam at 1e-4 cannot move outputs of size ~2 (the linreg optimum) within a
CPU-friendly number of steps.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from ..._progress import progress as progress_bar
from ...forecast.base import as_batch, check_prefix
from ...params import ParamSpec

__all__ = [
    "DEFAULT_MAX_PARAMS",
    "Baseline",
    "BaselineTooLargeError",
    "NotFittedError",
    "Standardizer",
    "TrainResult",
    "coordinate_scale",
    "train_module",
]

logger = logging.getLogger(__name__)

#: Default size guard of D-specific trained models, in parameters. Training holds about
#: 16 bytes per parameter (weight, gradient, two Adam moments), so 50M parameters is
#: ~0.8 GB. At the paper's Transformer (D = 924,554) DLinear (~4 D d_model = 59M),
#: Introspection (~500 D = 462M), LSTM (~64 D = 59M) and LFD-2 (2 D^2) are all refused.
DEFAULT_MAX_PARAMS = 50_000_000


class NotFittedError(RuntimeError):
    """``predict``/``forecast`` was called before ``fit``."""


class BaselineTooLargeError(ValueError):
    """A D-specific model would exceed its ``max_params`` guard at this D ("not run: memory")."""


@dataclass(frozen=True)
class TrainResult:
    """What a gradient-trained fit did.

    Attributes:
        epochs: number of epochs run.
        steps: optimizer steps taken.
        epoch_losses: mean training loss (in the model's normalized space) per epoch.

    Example:
        >>> from gfm_accel.lab.baselines import make_baseline
        >>> r = make_baseline("lstm").fit(torch.randn(20, 6, 2), n=2, m=5, epochs=3).train_result
        >>> r.epochs, r.steps, len(r.epoch_losses)
        (3, 6, 3)
    """

    epochs: int
    steps: int
    epoch_losses: tuple[float, ...]


@dataclass
class Standardizer:
    """An affine map ``z = (x - loc) / scale`` fitted on training data.

    A scale that is (numerically) zero, e.g. a coordinate initialized identically in every
    training run, is replaced by 1 so that it stays a constant rather than blowing up.

    Example:
        >>> s = Standardizer.fit(torch.tensor([[0.0, 5.0], [2.0, 5.0]]), dims=(0,))
        >>> s.transform(torch.tensor([[1.0, 5.0]]))
        tensor([[0., 0.]])
    """

    loc: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, x: torch.Tensor, dims: tuple[int, ...]) -> "Standardizer":
        """Fit on ``x`` reducing over ``dims`` (kept as size-1 dims for broadcasting)."""
        loc = x.mean(dim=dims, keepdim=True)
        scale = x.std(dim=dims, keepdim=True, unbiased=False) if x.numel() > 1 else torch.zeros_like(loc)
        tiny = 1e-12 + 1e-6 * loc.abs()
        scale = torch.where(scale > tiny, scale, torch.ones_like(scale))
        return cls(loc=loc, scale=scale)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.loc) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.loc


def coordinate_scale(prefix: torch.Tensor, spec: ParamSpec | None = None) -> torch.Tensor:
    """Per-sample, per-tensor movement scale used by the per-coordinate models.

    ``s = RMS over the tensor's coordinates of (w_n - w_0)``; where that is zero (n = 0,
    or a tensor that has not moved) the RMS of ``w_n`` is used, and where that is zero too,
    1. Without a ``spec`` the whole vector is one tensor.

    Args:
        prefix: ``(B, n+1, D)``.
        spec: parameter layout of D, or None.

    Returns:
        ``(B, D)`` positive scale of each coordinate (its tensor's value, broadcast).
    """
    b, _, d = prefix.shape
    move = prefix[:, -1] - prefix[:, 0]
    last = prefix[:, -1]
    if spec is None:
        ids = torch.zeros(d, dtype=torch.long)
        groups = 1
    else:
        if spec.numel != d:
            raise ValueError(f"spec describes D={spec.numel} parameters, but the prefix has D={d}")
        ids = spec.tensor_ids()
        groups = len(spec)
    counts = torch.bincount(ids, minlength=groups).clamp_min(1).to(prefix.dtype)

    def group_rms(v: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B, groups)
        sq = torch.zeros(b, groups, dtype=v.dtype).index_add_(1, ids, v * v)
        return (sq / counts).sqrt()

    s = group_rms(move)
    fallback = group_rms(last)
    s = torch.where(s > 1e-12, s, fallback)
    s = torch.where(s > 1e-12, s, torch.ones_like(s))
    return s[:, ids]


def train_module(
    module: nn.Module,
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    num_samples: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = False,
    desc: str = "fit",
) -> TrainResult:
    """Adam + minibatches over ``num_samples`` indices; ``loss_fn(module, idx)`` gives the loss.

    Shuffling uses its own generator seeded by ``seed`` (the global RNG is untouched).
    """
    gen = torch.Generator().manual_seed(seed)
    params = list(module.parameters())
    try:  # the fused kernel saves ~20% per step on tiny CPU models; not every build has it
        opt = torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.Adam(params, lr=lr)
    module.train()
    epoch_losses: list[float] = []
    steps = 0
    for _ in progress_bar(range(epochs), total=epochs, desc=desc, enabled=progress):
        perm = torch.randperm(num_samples, generator=gen)
        total, count = 0.0, 0
        for start in range(0, num_samples, batch_size):
            idx = perm[start : start + batch_size]
            loss = loss_fn(module, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        epoch_losses.append(total / max(count, 1))
        if not math.isfinite(epoch_losses[-1]):
            raise FloatingPointError(f"{desc}: training loss became {epoch_losses[-1]} (lower lr?)")
    module.eval()
    return TrainResult(epochs=epochs, steps=steps, epoch_losses=tuple(epoch_losses))


class Baseline:
    """Base class: validation, the Forecaster protocol and the size guard.

    Subclasses implement ``_fit(prefix (N, n+1, D), target (N, D), ...)`` and
    ``_predict(prefix (B, n+1, D), spec) -> (B, D)``; D-specific ones also
    ``num_params(dim, n)``.

    Class attributes:
        name: registry name.
        per_coordinate: True when one shared map serves every coordinate (any D).
        horizon_agnostic: True when ``forecast`` accepts any ``m > n`` (only ``last``).
        default_epochs: epochs used when ``fit(epochs=None)``; 0 for closed-form models.
        max_params: size guard of D-specific models (None: no guard).

    Example:
        >>> from gfm_accel.lab.baselines import make_baseline
        >>> w = torch.linspace(0, 1, 10).repeat(4, 1).unsqueeze(-1).expand(4, 10, 2).clone()
        >>> model = make_baseline("mean").fit(w, n=2, m=9)
        >>> model.predict(w[:1, :3]).shape
        torch.Size([1, 2])
    """

    name: ClassVar[str] = "baseline"
    per_coordinate: ClassVar[bool] = False
    horizon_agnostic: ClassVar[bool] = False
    default_epochs: ClassVar[int] = 0
    max_params: ClassVar[int | None] = None

    def __init__(self) -> None:
        self.expected_dim: int | None = None
        self.n: int | None = None
        self.m: int | None = None
        self.train_result: TrainResult | None = None

    # ------------------------------------------------------------------ size guard
    @classmethod
    def num_params(cls, dim: int, n: int = 4) -> int:
        """Learned numbers stored for input dimension ``dim`` and prefix ``w_0..w_n``."""
        return 0

    @classmethod
    def supports(cls, dim: int, n: int = 4) -> bool:
        """Whether the model can be fitted at this D under its ``max_params`` guard."""
        if cls.per_coordinate or cls.max_params is None:
            return True
        return cls.num_params(dim, n) <= cls.max_params

    # ------------------------------------------------------------------ fit / predict
    @property
    def fitted(self) -> bool:
        return self.n is not None

    def fit(
        self,
        weights: torch.Tensor,
        n: int,
        m: int,
        *,
        epochs: int | None = None,
        batch_size: int = 16,
        lr: float = 1e-4,
        seed: int = 0,
        progress: bool = False,
        spec: ParamSpec | None = None,
    ) -> "Baseline":
        """Learn ``w_0..w_n -> w_m`` from training trajectories.

        Args:
            weights: ``(N, T, D)`` training trajectories.
            n: index of the last observed snapshot (the prefix is ``w_0..w_n``).
            m: index of the target snapshot, ``n < m < T``.
            epochs: passes over the N trajectories (gradient-trained models only);
                None uses the class's ``default_epochs``.
            batch_size: trajectories per optimizer step.
            lr: Adam learning rate.
            seed: seeds the initialization and the shuffling (global RNG untouched).
            progress: show a tqdm bar over epochs.
            spec: layout of D; per-coordinate models use it to scale each tensor separately.

        Returns:
            self.
        """
        if not torch.is_tensor(weights) or weights.dim() != 3:
            shape = tuple(weights.shape) if torch.is_tensor(weights) else type(weights).__name__
            raise ValueError(f"weights must be a (N, T, D) tensor of trajectories, got {shape}")
        num, steps, dim = weights.shape
        if num < 1 or dim < 1:
            raise ValueError(f"weights must hold at least one trajectory and one parameter, got {tuple(weights.shape)}")
        if not (isinstance(n, int) and isinstance(m, int)):
            raise ValueError(f"n and m must be ints, got n={n!r}, m={m!r}")
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        if m <= n:
            raise ValueError(f"m={m} must be larger than n={n} (the prefix holds w_0..w_{n})")
        if m >= steps:
            raise ValueError(f"m={m} is out of range: the trajectories hold T={steps} snapshots (indices 0..{steps - 1})")
        epochs = self.default_epochs if epochs is None else epochs
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not self.per_coordinate and not self.supports(dim, n):
            raise BaselineTooLargeError(
                f"{self.name} at D={dim} would need {self.num_params(dim, n):,} parameters, above its "
                f"max_params={self.max_params:,} guard (not run: memory)"
            )
        prefix = weights[:, : n + 1].float()
        target = weights[:, m].float()
        if not bool(torch.isfinite(prefix).all()) or not bool(torch.isfinite(target).all()):
            raise ValueError("weights hold NaN/Inf values in the prefix or the target snapshot")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._fit(
                prefix, target, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress, spec=spec
            )
        self.n, self.m = n, m
        self.expected_dim = None if self.per_coordinate else dim
        logger.debug("fitted %s on %s (n=%d, m=%d)", self.name, tuple(weights.shape), n, m)
        return self

    def predict(self, prefix: torch.Tensor, *, spec: ParamSpec | None = None) -> torch.Tensor:
        """Predict ``w_m`` for a batch of prefixes.

        Args:
            prefix: ``(B, n+1, D)`` with the n the model was fitted with.
            spec: layout of D (per-coordinate models use it); optional.

        Returns:
            ``(B, D)`` float32.
        """
        if not torch.is_tensor(prefix) or prefix.dim() != 3:
            shape = tuple(prefix.shape) if torch.is_tensor(prefix) else type(prefix).__name__
            raise ValueError(f"prefix must have shape (B, n+1, D), got {shape}")
        self._check_prefix(prefix.float())
        with torch.no_grad():
            return self._predict(prefix.float(), spec)

    def forecast(self, prefix: torch.Tensor, m: int, *, spec: ParamSpec | None = None) -> torch.Tensor:
        """The :class:`~gfm_accel.forecast.base.Forecaster` protocol.

        Args:
            prefix: ``(n+1, D)`` or ``(B, n+1, D)``.
            m: target index; must equal the fitted m unless the model is horizon-agnostic.
            spec: layout of D; optional.

        Returns:
            ``(D,)`` or ``(B, D)``.
        """
        batch, unbatched = as_batch(prefix)
        if not self.fitted:
            raise NotFittedError(f"{self.name}: call fit(...) before forecast(...)")
        check_prefix(batch, m, self.expected_dim)
        if not self.horizon_agnostic and m != self.m:
            raise ValueError(f"{self.name} was fitted to forecast m={self.m}, not m={m}; refit it for this horizon")
        out = self.predict(batch, spec=spec)
        return out[0] if unbatched else out

    def _check_prefix(self, prefix: torch.Tensor) -> None:
        if not self.fitted:
            raise NotFittedError(f"{self.name}: call fit(...) before predict(...)")
        if not self.horizon_agnostic and prefix.shape[1] != self.n + 1:
            raise ValueError(
                f"{self.name} was fitted on prefixes w_0..w_{self.n} ({self.n + 1} snapshots), "
                f"got {prefix.shape[1]} snapshots"
            )
        if self.expected_dim is not None and prefix.shape[-1] != self.expected_dim:
            raise ValueError(
                f"{self.name} was fitted for D={self.expected_dim} parameters, but the prefix has D={prefix.shape[-1]}"
            )
        if not bool(torch.isfinite(prefix).all()):
            raise ValueError("prefix holds NaN/Inf values")

    # ------------------------------------------------------------------ hooks
    def _fit(
        self,
        prefix: torch.Tensor,
        target: torch.Tensor,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
        progress: bool,
        spec: ParamSpec | None,
    ) -> None:
        raise NotImplementedError

    def _predict(self, prefix: torch.Tensor, spec: ParamSpec | None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        state = f"n={self.n}, m={self.m}, D={self.expected_dim}" if self.fitted else "unfitted"
        return f"{type(self).__name__}({state})"
