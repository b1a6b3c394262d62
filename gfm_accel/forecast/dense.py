"""The paper's dense GFM field and its training/inference backend (variant ``"dense"``).

Field (Table 5): ``v(w, t): R^D x [0, 1] -> R^D``, a 4-layer MLP
``Linear(D+1, 64) - ELU - Linear(64, 64) - ELU - Linear(64, 64) - ELU - Linear(64, D)``,
i.e. ``(D+1) 64 + 2 * 64^2 + 64 D`` weights (plus biases).

Choices (the paper is silent or ambiguous; see also ``docs/forecaster.md``):

* ``condition="prefix"`` (the default; Eq. 2 conditions on ``w_0..w_n``, Algorithm 1 does
  not): the flattened observed prefix ``(n+1) D`` is concatenated to ``(w, t)`` at the input.
  The same n must then be used at inference. ``condition="none"`` is the ablation: the field
  trained exactly as Algorithm 1 states, ``v(w, t)``.
* ``skip`` (not in the paper; :mod:`gfm_accel.forecast.skip`): a linear path beside the field.
  ``"lstsq"``: a least-squares linear map of the prefix, fitted in closed form on the training
  pairs; ``"dynamics"``: each prefix's own steps extrapolated by the linear map they follow
  (``d_{j+1} = A d_j``, fitted per prefix: exact for gradient descent on a quadratic). Either
  forecasts the displacement ``w_m - w_n``; the field learns the residual flow on top of it
  (every path point ``w_j`` is moved by ``-(j - n)/(m - n)`` times the skip's displacement, so a
  trajectory the skip predicts exactly has zero velocity), and its last layer starts at zero,
  so an untrained field forecasts the skip. **Default ``"auto"``**: the field alone or the
  dynamics skip alone, the skip only where its held-out error on the training pairs is below
  half the field's (:meth:`DenseBackend._fit_auto`). Reason: on the paper's linear regression
  the dynamics skip is 3-10x better than least squares on gradient descent and the field alone
  is 100x worse there, while on the adaptive optimizers the field alone is best and both skips
  extrapolate badly (``benchmarks/results/linreg_default/``): neither is best everywhere, and
  held-out pairs tell them apart. The least-squares skip is not a candidate: it extrapolates
  across trajectories, which held-out training pairs cannot vouch for on unlike test prefixes. ``"none"`` is the field alone
  (the default before; Eq. 2's field), with ``condition="none"`` Algorithm 1 as written.
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
from .skip import AUTO_CHOICES, AUTO_MARGIN, SKIPS, DynamicsSkip, LinearSkip, fit_dynamics_skip, fit_linear_skip

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
        skip: ``"auto"`` (the default with ``condition="prefix"``: the field alone or the
            dynamics skip alone, chosen on held-out training pairs), ``"none"`` (the field alone; the default
            with ``condition="none"``, so that the ablation stays Algorithm 1 as written), ``"lstsq"`` or ``"dynamics"`` (that skip path of
            :mod:`gfm_accel.forecast.skip` with the field learning the residual flow on top).
            A skip brings gradient descent (a linear system) to least squares or below, 100x
            better than the field alone, but on adaptive optimizers it extrapolates outlying
            prefixes badly and is several times worse than the field alone
            (``benchmarks/results/linreg_default/``); ``"auto"`` picks per training set.
        skip_chosen: what fitting ``skip="auto"`` chose (``"none"`` or ``"dynamics"``);
            None before the fit. Stored in saved files.
        skip_gate: (off by default) with the skip, train the residual field on four fifths of the training
            pairs and measure on the held-out fifth (every 5th pair) how much of what it adds
            to the skip helps: the least-squares factor ``field_scale`` in [0, 1] by which the
            field's addition is multiplied. 0: the forecaster is the skip alone (its field's
            last layer stays zero); otherwise the field is retrained on every pair. Costs up to
            1.8x the training time. Without the gate the scale is 1. Off by default: on the
            validation seeds of ``benchmarks/bench_linreg_default.py`` (10, 11) the six held-out
            pairs gave too noisy a scale (better on SGD, worse on Adam).
        dim: D, set by ``fit`` (or read from a saved file).

    Example:
        >>> DenseConfig(n=0, m=10).depth
        4
    """

    depth: int = 4
    normalization: str = "none"
    t_per_traj: int = 1
    reduction: str = "mean"
    skip: str | None = None
    skip_gate: bool = False
    skip_chosen: str | None = None
    dim: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; expected one of {NORMALIZATIONS}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"unknown reduction {self.reduction!r}; expected 'mean' or 'sum'")
        if self.skip is None:  # the default: "auto" for Eq. 2's field, none for Algorithm 1 as written
            self.skip = "auto" if self.condition == "prefix" else "none"
        if self.skip not in SKIPS:
            raise ValueError(f"unknown skip {self.skip!r}; expected one of {SKIPS}")
        if self.skip_chosen is not None and (self.skip != "auto" or self.skip_chosen not in AUTO_CHOICES):
            raise ValueError(f"skip_chosen={self.skip_chosen!r} is set by fitting skip='auto' and must be one of "
                             f"{AUTO_CHOICES}; got it with skip={self.skip!r}")
        if self.skip == "dynamics" and self.n < 2:
            raise ValueError(f"skip='dynamics' fits the prefix's step map and needs n >= 2, got n={self.n}")
        if self.skip_gate and self.skip not in ("lstsq", "dynamics"):
            raise ValueError(f"skip_gate needs skip='lstsq' or 'dynamics', got skip={self.skip!r}")
        for name in ("depth", "t_per_traj"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.depth < 2:
            raise ValueError(f"depth must be >= 2, got {self.depth}")
        if self.dim is not None and (not isinstance(self.dim, int) or self.dim < 1):
            raise ValueError(f"dim must be a positive integer, got {self.dim!r}")

    @property
    def skip_kind(self) -> str:
        """The skip in use: ``skip``, or for ``"auto"`` what fitting chose (``"none"`` before)."""
        if self.skip == "auto":
            return self.skip_chosen or "none"
        return self.skip


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
    #: The dense field reads no learning-rate profile (``forecast`` ignores ``lr_profile``).
    schedule_aware: ClassVar[bool] = False

    def __init__(self, config: DenseConfig, *, initialize: bool = True) -> None:
        self.config = config
        self.field: DenseField | None = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self.skip: LinearSkip | None = None
        #: factor of the field's addition to the skip (set by the gate; 1 without it).
        self.field_scale = 1.0
        if config.dim is not None:
            self._build(config.dim, 0 if initialize else None)

    # ---------------------------------------------------------------- config
    @classmethod
    def from_config(cls, config: dict, *, initialize: bool = True) -> "DenseBackend":
        """Build from :meth:`config_dict` output (``initialize=False`` when weights follow)."""
        config = dict(config)
        if config.get("dim") is not None:
            # A fitted config written before the skip option had no skip.
            config.setdefault("skip", "none")
            if config["skip"] == "auto" and config.get("skip_chosen") is None:
                raise ValueError("a fitted dense config with skip='auto' must record skip_chosen (what the fit chose)")
        return cls(DenseConfig.from_dict(config), initialize=initialize)

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @property
    def expected_dim(self) -> int | None:
        return self.config.dim

    def _build(self, dim: int, seed: int | None) -> None:
        """Field, normalization and skip for D = ``dim``; the field initialised from ``seed``
        (None: not initialised, for loading)."""
        cfg = self.config
        self._new_field(dim, seed)
        self.mean = torch.zeros(dim)
        self.std = torch.ones(dim)
        self.skip = None
        if cfg.skip_kind == "lstsq":
            self.skip = LinearSkip(torch.zeros(LinearSkip.shape_for(cfg.n, dim)), torch.zeros(dim), torch.zeros(dim))
        elif cfg.skip_kind == "dynamics":
            self.skip = DynamicsSkip(torch.zeros(dim), torch.zeros(dim), horizon=max(1, (cfg.m or cfg.n + 1) - cfg.n))
        # With "auto", a chosen skip is used alone (field_scale 0); otherwise the field's full flow.
        self.field_scale = 0.0 if cfg.skip == "auto" and cfg.skip_kind != "none" else 1.0
        self.config.dim = dim

    def _new_field(self, dim: int, seed: int | None) -> None:
        cfg = self.config
        cond_dim = (cfg.n + 1) * dim if cfg.condition == "prefix" else 0
        self.field = build_module(lambda: DenseField(dim, cfg.hidden, cfg.depth, cond_dim), seed)
        if cfg.skip_kind != "none" and seed is not None:
            # The residual field starts at zero: the untrained forecaster is the skip.
            with torch.no_grad():
                self.field.net[-1].weight.zero_()
                self.field.net[-1].bias.zero_()

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
        if cfg.skip == "auto":
            cfg.skip_chosen = None  # chosen again below
        self._build(dim, seed)  # seeded; the global RNG is left untouched
        if cfg.normalization == "standardize":
            snaps = torch.cat([t.weights[:, : m + 1].reshape(-1, dim) for t in data]).float()
            self.mean = snaps.mean(0)
            self.std = snaps.std(0).clamp_min(1e-8)
        prefix_n, w_m_n = self._norm(prefix), self._norm(w_m)
        train = dict(m=m, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        if cfg.skip == "auto":
            return self._fit_auto(prefix_n, w_m_n, progress=progress, **train)
        if self.skip is None:
            return self._train(prefix_n, w_m_n, progress=progress, **train)
        if cfg.skip_gate and n_traj >= 5:
            # Does the residual field help the skip? Held-out check on every 5th training pair
            # (never on test data): fit skip and field on the rest, compare their forecasts.
            held = torch.arange(n_traj) % 5 == 4
            history = self._train(prefix_n[~held], w_m_n[~held], progress=progress, desc="GFM fit (gate)", **train)
            pre = prefix_n[held]
            skip_only = pre[:, cfg.n] + self._skip_shift(pre, m)
            added = (self._forecast_normalized(pre, m) - skip_only).double()  # what the field adds
            wanted = (w_m_n[held] - skip_only).double()
            # The least-squares share of the field's addition on the held-out pairs, in [0, 1].
            scale = float((added * wanted).sum() / (added * added).sum().clamp(min=1e-300))
            self.field_scale = min(max(scale, 0.0), 1.0) if math.isfinite(scale) else 0.0
            logger.info("dense GFM gate: held-out MSE skip %.4g, skip + field %.4g; field scale %.3g",
                        float(wanted.pow(2).mean()), float((wanted - added).pow(2).mean()), self.field_scale)
            self._new_field(dim, seed)
            if self.field_scale == 0.0:
                # The skip alone (refitted on every pair): a fresh field's last layer is zero.
                self.skip = self._fit_skip(cfg.skip_kind, prefix_n, w_m_n, m)
                self.field.eval()
                return history
        return self._train(prefix_n, w_m_n, progress=progress, **train)

    def _fit_auto(
        self, prefix_n: Tensor, w_m_n: Tensor, *, m: int, epochs: int, batch_size: int, lr: float, seed: int,
        progress: bool,
    ) -> list[float]:
        """``skip="auto"``: the field alone or the dynamics skip alone (:data:`~.skip.AUTO_CHOICES`).

        Held-out squared error of the forecast of ``w_m`` (normalized units) on the training
        pairs only: the skip by 5-fold cross-validation over every pair (cheap, and a skip's
        failure is a few outlying prefixes, which only many held-out pairs show); the field
        trained on four fifths and measured on the fifth held out (every 5th pair), as the gate
        does. The skip wins only below :data:`~.skip.AUTO_MARGIN` times the field's error (the
        field's estimate rests on few pairs, and the field is the safer forecaster); the field
        is then retrained on every pair, or the skip refitted on every pair with the field left
        at zero. Fewer than 5 pairs: the field.
        """
        cfg = self.config
        n_traj, n = prefix_n.shape[0], cfg.n
        errors: dict[str, float] = {}
        folds = torch.arange(n_traj) % 5
        if n_traj >= 5:
            for kind in AUTO_CHOICES[1:]:
                if kind == "dynamics" and n < 2:
                    continue
                sq = 0.0
                for f in range(5):
                    tr, te = folds != f, folds == f
                    candidate = self._fit_skip(kind, prefix_n[tr], w_m_n[tr], m)
                    pred = prefix_n[te, n] + self._skip_shift(prefix_n[te], m, candidate)
                    sq += float((pred.double() - w_m_n[te].double()).pow(2).sum())
                errors[kind] = sq / w_m_n.numel() if math.isfinite(sq) else math.inf
            self.skip = None  # the held-out field is trained alone
            held = folds == 4
            history = self._train(prefix_n[~held], w_m_n[~held], m=m, epochs=epochs, batch_size=batch_size, lr=lr,
                                  seed=seed, progress=progress, desc="GFM fit (auto, held-out check)")
            err = float((self._forecast_normalized(prefix_n[held], m).double() - w_m_n[held].double()).pow(2).mean())
            errors["none"] = err if math.isfinite(err) else math.inf
        skips = {k: v for k, v in errors.items() if k != "none"}
        best = min(skips, key=lambda k: skips[k]) if skips else None
        chosen = best if best is not None and skips[best] < AUTO_MARGIN * errors["none"] else "none"
        cfg.skip_chosen = chosen
        logger.info("dense GFM skip='auto': held-out MSE %s; chosen %r",
                    ", ".join(f"{k} {v:.4g}" for k, v in errors.items()) or "(fewer than 5 pairs)", chosen)
        self._new_field(cfg.dim, seed)
        if chosen == "none":
            self.skip, self.field_scale = None, 1.0
            return self._train(prefix_n, w_m_n, m=m, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                               progress=progress)
        self.skip, self.field_scale = self._fit_skip(chosen, prefix_n, w_m_n, m), 0.0
        self.field.eval()
        return history

    def _fit_skip(self, kind: str, prefix_n: Tensor, w_m_n: Tensor, m: int) -> LinearSkip | DynamicsSkip:
        """A skip of ``kind`` fitted on normalized pairs (the dynamics skip works in weight units)."""
        n = prefix_n.shape[1] - 1
        if kind == "lstsq":
            return fit_linear_skip(prefix_n, w_m_n - prefix_n[:, n])
        return fit_dynamics_skip((w_m_n - prefix_n[:, n]) * self.std, m - n)

    def _skip_shift(self, pre: Tensor, m: int, skip: LinearSkip | DynamicsSkip | None = None) -> Tensor:
        """The displacement ``w_m - w_n`` of ``skip`` (default: the fitted ``self.skip``) for a
        normalized prefix ``(B, n+1, D)``, normalized."""
        skip = self.skip if skip is None else skip
        n = pre.shape[1] - 1
        if isinstance(skip, DynamicsSkip):
            raw = pre.double() * self.std.double() + self.mean.double()
            return (skip.displacement(raw, m - n) / self.std.double()).to(pre.dtype)
        # Fitted for the trained m; another horizon scales it linearly (an approximation).
        return skip.displacement(pre) * ((m - n) / (self.config.m - n))

    def _train(
        self, prefix_n: Tensor, w_m_n: Tensor, *, m: int, epochs: int, batch_size: int, lr: float, seed: int,
        progress: bool, desc: str = "GFM fit",
    ) -> list[float]:
        """Fit the skip (if any) and train the field on normalized pairs ``(N, n+1, D)``, ``(N, D)``."""
        cfg = self.config
        n_traj = prefix_n.shape[0]
        path_prefix = prefix_n  # the points the flow is trained on (the field is conditioned on prefix_n)
        if self.skip is not None:
            # The field learns the residual flow on top of the least-squares skip: every point
            # w_j of the path is moved by -(j - n)/(m - n) times the skip's displacement (the
            # straight drift from w_n at t_n to the skip's forecast at 1), so a zero field
            # forecasts the skip exactly, and a trajectory the skip predicts has zero velocity.
            self.skip = self._fit_skip(cfg.skip_kind, prefix_n, w_m_n, m)
            shift = self._skip_shift(prefix_n, m)  # (N, D)
            w_m_n = w_m_n - shift
            frac = (torch.arange(cfg.n + 1, dtype=shift.dtype) - cfg.n) / (m - cfg.n)  # (n+1,), <= 0
            path_prefix = prefix_n - frac.view(1, -1, 1) * shift.unsqueeze(1)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.field.parameters(), lr=lr, foreach=True)
        k = cfg.t_per_traj
        history: list[float] = []
        self.field.train()
        with Progress(epochs, desc=desc, unit="epoch", enabled=progress) as bar:
            for epoch in range(epochs):
                perm = torch.randperm(n_traj, generator=gen)
                total, count = 0.0, 0
                for start in range(0, n_traj, batch_size):
                    idx = perm[start : start + batch_size]
                    if k > 1:
                        idx = idx.repeat(k)
                    pre, tgt = path_prefix[idx], w_m_n[idx]
                    cond = prefix_n[idx].reshape(len(idx), -1) if cfg.condition == "prefix" else None
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
        self.field.eval()
        return history

    # ------------------------------------------------------------- forecast
    @torch.no_grad()
    def forecast(
        self, prefix: Tensor, m: int, spec: ParamSpec | None = None, *, return_states: bool = False,
        lr_profile: Tensor | None = None,
    ) -> ODEResult:
        """Integrate the field from ``w_n`` at ``t_n = n/m`` to 1.

        Args:
            prefix: ``(B, n+1, D)``; n may differ from the trained n unless ``condition="prefix"``.
            m: target index (``t_n = n / m``). With the skip, an m other than the trained one
                scales the skip's displacement by ``(m - n) / (m_trained - n)``.
            spec: ignored (the dense field sees no layout).
            return_states: keep every ODE state (in weight units).
            lr_profile: ignored (the dense field is not schedule-aware).

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
        res = self._integrate(self._norm(prefix.detach().to("cpu", torch.float32)), m, return_states)
        res.final = self._denorm(res.final).to(device)
        if res.states is not None:
            res.states = self._denorm(res.states).to(device)
        return res

    def _forecast_normalized(self, pre: Tensor, m: int) -> Tensor:
        """``(B, n+1, D)`` normalized prefix -> ``(B, D)`` normalized forecast."""
        return self._integrate(pre, m, False).final

    def _integrate(self, pre: Tensor, m: int, return_states: bool) -> ODEResult:
        """The flow from ``w_n`` at ``n/m`` to 1 plus the skip, in the normalized space."""
        cfg = self.config
        n = pre.shape[1] - 1
        cond = pre.reshape(pre.shape[0], -1) if cfg.condition == "prefix" else None
        step = cfg.step if cfg.step is not None else 1.0 / m
        with torch.no_grad():
            res = integrate(self._field_fn(cond), pre[:, n], n / m, 1.0, method=cfg.solver, step=step, tau=cfg.tau,
                            return_states=return_states)
        if self.skip is not None:
            shift = self._skip_shift(pre, m)  # (B, D)
            w_n = pre[:, n]
            res.final = w_n + self.field_scale * (res.final - w_n) + shift
            if res.states is not None:  # the skip's share grows linearly over [t_n, 1]
                frac = ((res.times - n / m) / (1.0 - n / m)).clamp(0.0, 1.0).to(shift.dtype)
                res.states = w_n + self.field_scale * (res.states - w_n) + frac.view(-1, 1, 1) * shift
        return res

    # -------------------------------------------------------------- tensors
    def state_tensors(self) -> dict[str, Tensor]:
        if self.field is None:
            raise ValueError("this dense forecaster has not been fitted")
        out = {f"field.{k}": v.detach().clone() for k, v in self.field.state_dict().items()}
        out["norm.mean"] = self.mean.clone()
        out["norm.std"] = self.std.clone()
        if isinstance(self.skip, LinearSkip):
            out["skip.coef"] = self.skip.coef.clone()
        if self.skip is not None:
            out["skip.low"] = self.skip.low.clone()
            out["skip.high"] = self.skip.high.clone()
            out["skip.field_scale"] = torch.tensor(float(self.field_scale))
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
        if self.skip is not None:
            low, high = tensors["skip.low"].float(), tensors["skip.high"].float()
            if low.shape != (self.config.dim,) or high.shape != (self.config.dim,) or not bool((low <= high).all()):
                raise ValueError(f"tensors 'skip.low'/'skip.high' must be ({self.config.dim},) with low <= high")
            if isinstance(self.skip, LinearSkip):
                coef = tensors["skip.coef"].float()
                if coef.shape != self.skip.coef.shape:
                    raise ValueError(f"tensor 'skip.coef' has shape {tuple(coef.shape)}, expected "
                                     f"{tuple(self.skip.coef.shape)}")
                self.skip = LinearSkip(coef.clone(), low.clone(), high.clone())
            else:
                self.skip = DynamicsSkip(low.clone(), high.clone(), horizon=self.config.m - self.config.n)
            scale = tensors["skip.field_scale"].float()
            if scale.shape != () or not 0.0 <= float(scale) <= 1.0:
                raise ValueError(f"tensor 'skip.field_scale' must be a scalar in [0, 1], got {scale.tolist()}")
            self.field_scale = float(scale)
        self.field.eval()

