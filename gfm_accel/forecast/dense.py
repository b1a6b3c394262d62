"""The paper's dense GFM field and its training/inference backend (variant ``"dense"``).

Field (Table 5): ``v(w, t): R^D x [0, 1] -> R^D``, a 4-layer MLP
``Linear(D+1, 64) - ELU - Linear(64, 64) - ELU - Linear(64, 64) - ELU - Linear(64, D)``,
i.e. ``(D+1) 64 + 2 * 64^2 + 64 D`` weights (plus biases).

Choices (the paper is silent or ambiguous; see also ``docs/forecaster.md``):

* ``condition="prefix"`` (Eq. 2 conditions on ``w_0..w_n``; Algorithm 1 does not): the
  flattened observed prefix ``(n+1) D`` is concatenated to ``(w, t)`` at the input. The
  same n must then be used at inference.
* Time samples: Algorithm 1 draws one ``t`` per mini-batch; we draw one per trajectory
  and, with ``t_per_traj = k > 1``, k per trajectory per step (a lower-variance estimate of
  the same expectation; default 1, the benchmark decides).
* ``normalization="standardize"`` (default ``"none"`` = paper): per-coordinate mean/std of
  the training snapshots ``w_0..w_m``; the field lives in that space (an affine map keeps
  linear paths linear, so the objective is unchanged up to per-coordinate scale) and
  forecasts are mapped back. ``tau`` is then tested in normalised units.
* ODE step: ``step=None`` means ``h = 1/m``: one Euler step per remaining training step,
  ``m - n`` steps from ``t_n`` to 1.
* Loss reduction over D: mean (see :mod:`gfm_accel.flow.loss`).

Example:
    >>> b = DenseBackend.from_config({"n": 1, "m": 9, "hidden": 8})
    >>> w = torch.linspace(0, 1, 10).view(1, 10, 1).repeat(5, 1, 2)
    >>> losses = b.fit([Trajectories(weights=w)], epochs=2, batch_size=4, lr=1e-3, seed=0, progress=False)
    >>> len(losses), b.expected_dim, b.forecast(w[:, :2], 9).final.shape
    (2, 2, torch.Size([5, 2]))
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from .._progress import Progress
from ..flow.loss import gfm_loss
from ..flow.solver import ODEResult, integrate
from ..params import ParamSpec
from ..trajectories import Trajectories
from ._modules import build_module
from .options import FieldOptions

__all__ = ["NORMALIZATIONS", "DenseConfig", "DenseField", "DenseBackend", "stack_pairs"]

logger = logging.getLogger(__name__)

NORMALIZATIONS: tuple[str, ...] = ("none", "standardize")


@dataclass
class DenseConfig(FieldOptions):
    """Configuration of the dense backend (validated; JSON round-trip via :class:`~gfm_accel._config.JsonConfig`).

    Attributes:
        n, m, condition, path, beta, gamma, zeta, hidden, solver, step, tau: the shared
            :class:`~gfm_accel.forecast.options.FieldOptions` (defaults: the paper's).
            ``step=None`` here means ``h = 1/m``.
        depth: number of Linear layers (Table 5: 4).
        normalization: ``"none"`` (paper) or ``"standardize"``.
        t_per_traj: time samples per trajectory per optimisation step.
        reduction: ``"mean"`` or ``"sum"`` over D in the loss.
        dim: D, set by ``fit`` (or read from a saved file).

    Example:
        >>> DenseConfig(n=0, m=10).depth
        4
    """

    depth: int = 4
    normalization: str = "none"
    t_per_traj: int = 1
    reduction: str = "mean"
    dim: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; expected one of {NORMALIZATIONS}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"unknown reduction {self.reduction!r}; expected 'mean' or 'sum'")
        for name in ("depth", "t_per_traj"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.depth < 2:
            raise ValueError(f"depth must be >= 2, got {self.depth}")
        if self.dim is not None and (not isinstance(self.dim, int) or self.dim < 1):
            raise ValueError(f"dim must be a positive integer, got {self.dim!r}")


class DenseField(nn.Module):
    """``v(w, t[, prefix])``: an MLP with ELU activations (Table 5).

    Args:
        dim: D.
        hidden: width (64).
        depth: number of Linear layers (4).
        cond_dim: size of the flattened conditioning prefix (0 = unconditioned).

    Example:
        >>> f = DenseField(2)
        >>> f(torch.zeros(3, 2), torch.zeros(3)).shape, sum(p.numel() for p in f.parameters())
        (torch.Size([3, 2]), 8706)
    """

    def __init__(self, dim: int, hidden: int = 64, depth: int = 4, cond_dim: int = 0) -> None:
        super().__init__()
        self.dim, self.cond_dim = dim, cond_dim
        layers: list[nn.Module] = [nn.Linear(dim + 1 + cond_dim, hidden)]
        for _ in range(depth - 2):
            layers += [nn.ELU(), nn.Linear(hidden, hidden)]
        layers += [nn.ELU(), nn.Linear(hidden, dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, w: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """``w (B, D)``, ``t (B,)``, ``cond (B, cond_dim)`` or None -> ``(B, D)``."""
        parts = [w, t.reshape(-1, 1).to(w.dtype).expand(w.shape[0], 1)]
        if self.cond_dim:
            if cond is None:
                raise ValueError("this field is conditioned on the prefix; pass cond")
            parts.append(cond)
        return self.net(torch.cat(parts, dim=-1))


def stack_pairs(data: list[Trajectories], n: int, m: int | None) -> tuple[Tensor, Tensor, int]:
    """Collect ``(w_0..w_n, w_m)`` from every trajectory.

    Args:
        data: trajectories, all with the same D and more than m snapshots.
        n: last prefix index. m: target index (``None`` = ``T - 1`` of the first file).

    Returns:
        ``(prefix (N, n+1, D), w_m (N, D), m)`` float32 on CPU.
    """
    if m is None:
        m = data[0].T - 1
    if m <= n:
        raise ValueError(f"m={m} must be larger than n={n}")
    dims = {t.D for t in data}
    if len(dims) > 1:
        raise ValueError(f"the dense forecaster needs one D, but the data has D in {sorted(dims)}")
    for t in data:
        if t.T <= m:
            where = f" ({t.path})" if t.path is not None else ""
            raise ValueError(f"trajectories{where} have T={t.T} snapshots; need more than m={m}")
    prefix = torch.cat([t.weights[:, : n + 1] for t in data]).float()
    w_m = torch.cat([t.weights[:, m] for t in data]).float()
    return prefix, w_m, m


class DenseBackend:
    """Trains and runs a :class:`DenseField` (the paper's GFM); tied to one D.

    Example:
        >>> b = DenseBackend.from_config({"n": 0, "m": 5, "hidden": 4, "dim": 3})
        >>> b.expected_dim, sorted(b.state_tensors())[:1]
        (3, ['field.net.0.bias'])
    """

    variant: ClassVar[str] = "dense"

    def __init__(self, config: DenseConfig, *, initialize: bool = True) -> None:
        self.config = config
        self.field: DenseField | None = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        if config.dim is not None:
            self._build(config.dim, 0 if initialize else None)

    # ---------------------------------------------------------------- config
    @classmethod
    def from_config(cls, config: dict, *, initialize: bool = True) -> "DenseBackend":
        """Build from :meth:`config_dict` output (``initialize=False`` when weights follow)."""
        return cls(DenseConfig.from_dict(dict(config)), initialize=initialize)

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @property
    def expected_dim(self) -> int | None:
        return self.config.dim

    def _build(self, dim: int, seed: int | None) -> None:
        """A field for D = ``dim``, initialised from ``seed`` (None: not initialised, for loading)."""
        cond_dim = (self.config.n + 1) * dim if self.config.condition == "prefix" else 0
        cfg = self.config
        self.field = build_module(lambda: DenseField(dim, cfg.hidden, cfg.depth, cond_dim), seed)
        self.mean = torch.zeros(dim)
        self.std = torch.ones(dim)
        self.config.dim = dim

    # ---------------------------------------------------------- normalising
    def _norm(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def _denorm(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean

    def _field_fn(self, cond: Tensor | None):
        field = self.field

        def f(w: Tensor, t: Tensor) -> Tensor:
            return field(w, t, cond)

        return f

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: list[Trajectories],
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> list[float]:
        """Train with Adam on the GFM loss; returns the mean loss of each epoch.

        ``None`` picks the paper's values: 1000 epochs (App. E), batch 16, lr 1e-4 (App. A).
        Training restarts from a fresh initialisation (seeded) each call.
        """
        epochs = 1000 if epochs is None else epochs
        batch_size = 16 if batch_size is None else batch_size
        lr = 1e-4 if lr is None else lr
        cfg = self.config
        prefix, w_m, m = stack_pairs(data, cfg.n, cfg.m)
        n_traj, _, dim = prefix.shape
        cfg.m = m
        self._build(dim, seed)  # seeded; the global RNG is left untouched
        if cfg.normalization == "standardize":
            snaps = torch.cat([t.weights[:, : m + 1].reshape(-1, dim) for t in data]).float()
            self.mean = snaps.mean(0)
            self.std = snaps.std(0).clamp_min(1e-8)
        prefix_n, w_m_n = self._norm(prefix), self._norm(w_m)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.field.parameters(), lr=lr, foreach=True)
        k = cfg.t_per_traj
        history: list[float] = []
        bar = Progress(epochs, desc="GFM fit", unit="epoch", enabled=progress)
        self.field.train()
        for epoch in range(epochs):
            perm = torch.randperm(n_traj, generator=gen)
            total, count = 0.0, 0
            for start in range(0, n_traj, batch_size):
                idx = perm[start : start + batch_size]
                if k > 1:
                    idx = idx.repeat(k)
                pre, tgt = prefix_n[idx], w_m_n[idx]
                cond = pre.reshape(len(idx), -1) if cfg.condition == "prefix" else None
                t = torch.rand(len(idx), generator=gen)
                out = gfm_loss(self._field_fn(cond), pre, tgt, m, t, path=cfg.path, beta=cfg.beta,
                               gamma=cfg.gamma, zeta=cfg.zeta, reduction=cfg.reduction)
                opt.zero_grad(set_to_none=True)
                out.total.backward()
                opt.step()
                total += float(out.total.detach()) * len(idx)
                count += len(idx)
            history.append(total / count)
            if not math.isfinite(history[-1]):
                raise ValueError(f"training diverged at epoch {epoch} (loss {history[-1]}); lower lr or zeta")
            bar.update(1, loss=history[-1])
        bar.close()
        self.field.eval()
        return history

    # ------------------------------------------------------------- forecast
    @torch.no_grad()
    def forecast(
        self, prefix: Tensor, m: int, spec: ParamSpec | None = None, *, return_states: bool = False
    ) -> ODEResult:
        """Integrate the field from ``w_n`` at ``t_n = n/m`` to 1.

        Args:
            prefix: ``(B, n+1, D)``; n may differ from the trained n unless ``condition="prefix"``.
            m: target index (``t_n = n / m``).
            spec: ignored (the dense field sees no layout).
            return_states: keep every ODE state (in weight units).

        Returns:
            ODEResult with ``final (B, D)`` in the prefix's device.
        """
        cfg = self.config
        if self.field is None:
            raise ValueError("this dense forecaster has not been fitted")
        if prefix.dim() != 3:
            raise ValueError(f"prefix must be (B, n+1, D), got {tuple(prefix.shape)}")
        if prefix.shape[-1] != cfg.dim:
            raise ValueError(
                f"this forecaster was trained for D={cfg.dim} parameters, but the prefix has D={prefix.shape[-1]}"
            )
        n = prefix.shape[1] - 1
        if cfg.condition == "prefix" and n != cfg.n:
            raise ValueError(f"this forecaster is conditioned on n+1={cfg.n + 1} snapshots, got n+1={n + 1}")
        if m <= n:
            raise ValueError(f"m={m} must be larger than n={n}")
        device = prefix.device
        pre = self._norm(prefix.detach().to("cpu", torch.float32))
        cond = pre.reshape(pre.shape[0], -1) if cfg.condition == "prefix" else None
        step = cfg.step if cfg.step is not None else 1.0 / m
        res = integrate(self._field_fn(cond), pre[:, n], n / m, 1.0, method=cfg.solver, step=step, tau=cfg.tau,
                        return_states=return_states)
        res.final = self._denorm(res.final).to(device)
        if res.states is not None:
            res.states = self._denorm(res.states).to(device)
        return res

    # -------------------------------------------------------------- tensors
    def state_tensors(self) -> dict[str, Tensor]:
        if self.field is None:
            raise ValueError("this dense forecaster has not been fitted")
        out = {f"field.{k}": v.detach().clone() for k, v in self.field.state_dict().items()}
        out["norm.mean"] = self.mean.clone()
        out["norm.std"] = self.std.clone()
        return out

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if self.field is None:
            raise ValueError("the config has no dim; cannot rebuild the dense field")
        expected = set(self.state_tensors())
        missing, unexpected = expected - set(tensors), set(tensors) - expected
        if missing or unexpected:
            raise ValueError(f"tensor names do not match the dense config: missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)}")
        state = {k[len("field."):]: v for k, v in tensors.items() if k.startswith("field.")}
        for k, v in self.field.state_dict().items():
            if state[k].shape != v.shape:
                raise ValueError(f"tensor 'field.{k}' has shape {tuple(state[k].shape)}, config expects {tuple(v.shape)}")
        self.field.load_state_dict(state)
        for name in ("mean", "std"):
            v = tensors[f"norm.{name}"].float()
            if v.shape != (self.config.dim,):
                raise ValueError(f"tensor 'norm.{name}' has shape {tuple(v.shape)}, expected ({self.config.dim},)")
            setattr(self, name, v.clone())
        if not bool((self.std > 0).all()):
            raise ValueError("tensor 'norm.std' must be positive")
        self.field.eval()

