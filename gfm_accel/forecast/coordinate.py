"""The model-agnostic ("coordinate") GFM forecaster: one small field shared by every scalar.

The dense GFM field of the paper maps ``R^D x [0, 1] -> R^D`` and is therefore tied to one D.
This variant keeps the paper's flow objective (Eq. 9 + the zeta midpoint-consistency term,
Algorithm 1, via :func:`gfm_accel.flow.loss.gfm_loss`) but solves D independent 1-D flows,
one per coordinate, with a single network ``v(x, t | features)`` shared by all of them.

What the network sees for one coordinate (all in the per-tensor frame of
:mod:`gfm_accel.forecast.coord_features`: centred on ``w_n``, divided by the tensor's scale ``s``
of the observed movement, hence scale-free):

* its current normalized value ``x`` on the path and the time ``t`` (also
  ``(t - t_n) / (1 - t_n)``, the fraction of the forecast interval covered);
* its own observed prefix: the last ``history`` normalized steps and ``x_0``;
* per-tensor statistics (relative movement, last-step ratio, step cosine, log size);
* a learned embedding of the tensor's layer kind (:data:`gfm_accel.params.LAYER_KINDS`);
* the window geometry (``t_n = n/m``, ``log(m - n)``, which history steps exist).

The first layer is linear in the concatenation of these inputs, so it is evaluated in parts:
the per-tensor part once per tensor, the per-coordinate part once per chunk, and only the
``(x, t)`` part at every ODE evaluation. This is the same network as one MLP over the
concatenated inputs, just cheaper (10M coordinates in a few seconds on one CPU thread).

Design choices (and where the paper is ambiguous):

* ``path="from_last"`` is the default here. The paper's path (``"paper"``) runs from ``w_0``
  to ``w_m`` beyond the prefix while inference starts at ``w_n``; in the per-tensor frame
  ``w_n`` is the origin, so the consistent straight path from ``0`` at ``t_n`` to ``y`` at 1
  (velocity ``y / (1 - t_n)``) is the natural one. ``path="paper"`` is supported and tested.
* Inference defaults to **one explicit-midpoint step** (``solver="midpoint"``,
  ``num_steps=1``): this is exactly the map the zeta-weighted consistency term trains
  (zeta = 100 makes it the dominant term), it is 2 field evaluations per coordinate, and
  on the from_last path the target velocity is constant along the path, so more steps
  change little. Euler with a step ``h`` and early stop on ``||h v|| < tau`` (the paper's
  Sec. 4.4) is available with ``solver="euler", step=h``.
* Early stopping is decided per chunk of coordinates (the l2 norm of the chunk's update,
  in weight units). Coordinates are independent 1-D ODEs, so each chunk is a complete
  sub-system; a chunk stops no later than the whole vector would.
* Losses are averaged over coordinates (not summed), so the scale does not depend on D;
  targets in the normalized frame are clipped to ``[-clip, clip]`` for robustness.
* ``condition="none"`` is an ablation that zeroes the coordinate's own-prefix inputs (the
  field then sees only ``x, t``, the tensor statistics, the kind and the window geometry).
* Training samples random **windows** (``windows=True``): a trajectory, a stride (snapshot
  subsampling), an ``n`` from ``n_choices``, a horizon ``m - n`` and a start index, then a
  random subset of coordinates per window. So one forecaster serves any ``(n, m)``. At
  inference the window frame is ``t_i = i / m`` with the prefix's first snapshot as ``w_0``.
  ``windows=False`` trains on the paper's fixed ``(w_0..w_n -> w_m)`` only.
* ``prior="line"`` (not the paper's; default ``"last"``) makes the flow a **correction of the
  least-squares line**: per coordinate, the line ``L(j) = a + b j`` fitted to the normalized
  prefix ``x_0..x_n`` is extended to ``m``, and the field learns the residual flow from 0 at
  ``t_n`` to ``y - L(m)`` at 1; the forecast is ``L(m)`` plus the integrated residual. A field
  that outputs 0 is then exactly :class:`~gfm_accel.forecast.simple.LineFitForecaster`, so
  whatever it adds over the line is what GFM learned. On the prefix part of the path the
  state is the detrended prefix ``x_j - L(j)``, shifted to be 0 at ``n``. The relative loss
  weighting still divides by the last-value error ``E_c[y^2]``.

Example:
    >>> import torch
    >>> backend = CoordinateBackend(hidden=8)
    >>> backend.forecast(torch.randn(5, 30), m=20).final.shape
    torch.Size([1, 30])
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..flow.loss import GFMLoss
from ..flow.path import PATHS, midpoint_forecast, sample_path
from ..flow.solver import METHODS, ODEResult, integrate
from ..params import LAYER_KINDS, ParamSpec
from ..trajectories import Trajectories
from .base import as_batch
from .simple import line_through
from .coord_features import (
    NUM_TENSOR_STATS,
    coordinate_inputs,
    tensor_ids_for_range,
    tensor_statistics,
    window_inputs,
)

__all__ = ["NORMALIZATION", "CoordinateConfig", "CoordinateField", "WindowBatch", "CoordinateBackend"]

logger = logging.getLogger(__name__)

#: Name of the normalization scheme, stored in saved files (see coord_features).
NORMALIZATION = "per_tensor_centre_wn_scale_rms_move_v1"
_ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


@dataclass
class CoordinateConfig:
    """Every option of the coordinate forecaster; validates itself and round-trips to JSON.

    Attributes:
        n: number of observed steps (prefix ``w_0..w_n``) for fixed-window training.
        m: target index for fixed-window training; ``None`` = ``T - 1`` of the training data
            (resolved by ``fit``). With ``windows=True`` n and m are only the defaults recorded
            in the file: any ``(n, m)`` can be forecast.
        path: ``"from_last"`` (default here) or ``"paper"`` (Algorithm 1 literally).
        condition: ``"prefix"`` (the coordinate sees its own prefix) or ``"none"`` (ablation).
        beta, gamma, zeta: the GFM loss weights (paper: 1, 1, 100).
        hidden: width H of the shared network.
        depth: number of hidden ``H x H`` layers after the first layer.
        activation: ``"relu"`` (default: cheapest, and as good as ELU on the digits benchmark),
            ``"elu"`` (the paper's dense field), ``"silu"`` or ``"tanh"``.
        kind_dim: size of the layer-kind embedding.
        history: number of most recent normalized steps fed per coordinate.
        floor_rel: relative floor of the per-tensor scale (units of ``rms(w_n)``).
        clip: clamp for normalized inputs and training targets.
        solver: ODE method: ``"midpoint"`` (default), ``"euler"`` or ``"rk4"``.
        step: ODE step size h (overrides ``num_steps``).
        num_steps: number of ODE steps over ``[t_n, 1]`` when ``step`` is None.
        tau: early-stop tolerance on a chunk's ``||h v||`` (0 disables).
        chunk_size: coordinates (times batch) processed at once at inference.
        windows: train on random windows (True) or on the fixed ``(n, m)`` (False).
        n_choices: values of n sampled for windows.
        horizons: values of ``m - n`` sampled for windows; None = log-uniform over what fits.
        strides: snapshot subsampling factors sampled for windows.
        coords_per_window: coordinates sampled per window and step.
        tensor_balanced: fraction of those sampled tensor-first (so small tensors are seen).
        steps_per_epoch: optimizer steps per epoch of :meth:`CoordinateBackend.fit`; None =
            ``ceil(total trajectories / batch_size)``, i.e. one window per trajectory and epoch
            in expectation (the dense variant's "pass over the data").
        epochs: default number of epochs (the paper's 1000).
        batch_size: default number of windows per step.
        lr: default Adam learning rate (cosine-decayed to 10 %).
        loss_weighting: ``"relative"`` (each window's loss divided by its last-value error,
            so every window counts equally, like the benchmark's relative MSE) or
            ``"absolute"`` (the paper's plain average).
        prior: ``"last"`` (the paper: the flow starts at ``w_n``) or ``"line"`` (the flow
            corrects the least-squares line through the prefix; see the module docstring).

    Example:
        >>> cfg = CoordinateConfig(hidden=16)
        >>> CoordinateConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    n: int = 4
    m: int | None = 199
    path: str = "from_last"
    condition: str = "prefix"
    beta: float = 1.0
    gamma: float = 1.0
    zeta: float = 100.0
    hidden: int = 32
    depth: int = 1
    activation: str = "relu"
    kind_dim: int = 4
    history: int = 4
    floor_rel: float = 1e-3
    clip: float = 100.0
    solver: str = "midpoint"
    step: float | None = None
    num_steps: int | None = 1
    tau: float = 1e-6
    chunk_size: int = 8192
    windows: bool = True
    n_choices: tuple[int, ...] = (1, 2, 3, 4)
    horizons: tuple[int, ...] | None = None
    strides: tuple[int, ...] = (1, 2, 4)
    coords_per_window: int = 256
    tensor_balanced: float = 0.5
    steps_per_epoch: int | None = None
    epochs: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    loss_weighting: str = "relative"
    prior: str = "last"

    def __post_init__(self) -> None:
        self.n_choices = tuple(int(v) for v in self.n_choices)
        self.strides = tuple(int(v) for v in self.strides)
        if self.horizons is not None:
            self.horizons = tuple(int(v) for v in self.horizons)
        if self.step is not None:
            self.num_steps = None
        if self.n < 0 or (self.m is not None and self.m <= self.n):
            raise ValueError(f"need 0 <= n < m, got n={self.n}, m={self.m}")
        if self.path not in PATHS:
            raise ValueError(f"unknown path {self.path!r}; expected one of {PATHS}")
        if self.condition not in ("prefix", "none"):
            raise ValueError(f"unknown condition {self.condition!r}; expected 'prefix' or 'none'")
        if self.solver not in METHODS:
            raise ValueError(f"unknown solver {self.solver!r}; expected one of {METHODS}")
        if self.loss_weighting not in ("relative", "absolute"):
            raise ValueError(f"unknown loss_weighting {self.loss_weighting!r}; expected 'relative' or 'absolute'")
        if self.prior not in ("last", "line"):
            raise ValueError(f"unknown prior {self.prior!r}; expected 'last' or 'line'")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; expected one of {sorted(_ACTIVATIONS)}")
        for name in ("hidden", "kind_dim", "history", "chunk_size", "coords_per_window", "epochs",
                     "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, got {self.depth}")
        if self.num_steps is not None and self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.step is not None and not self.step > 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if self.tau < 0 or self.floor_rel < 0 or self.clip <= 0 or self.lr <= 0:
            raise ValueError("tau and floor_rel must be >= 0; clip and lr must be > 0")
        if not self.n_choices or min(self.n_choices) < 0:
            raise ValueError(f"n_choices must be non-empty and >= 0, got {self.n_choices}")
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be non-empty and >= 1, got {self.strides}")
        if self.horizons is not None and (not self.horizons or min(self.horizons) < 1):
            raise ValueError(f"horizons must be non-empty and >= 1, got {self.horizons}")
        if not 0.0 <= self.tensor_balanced <= 1.0:
            raise ValueError(f"tensor_balanced must be in [0, 1], got {self.tensor_balanced}")
        if min(self.beta, self.gamma, self.zeta) < 0:
            raise ValueError("beta, gamma and zeta must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CoordinateConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown coordinate-forecaster option(s) {unknown}")
        return cls(**d)


class CoordinateField(nn.Module):
    """The shared per-coordinate velocity network ``v(x, t | coordinate, tensor, window)``.

    Equivalent to an MLP over the concatenation ``[coord inputs, tensor stats, kind
    embedding, window inputs, x, t, (t - t_n)/(1 - t_n)]`` with ``depth`` hidden layers of
    width ``hidden``; its first layer is split by how often each part changes.

    Example:
        >>> f = CoordinateField(CoordinateConfig(hidden=8))
        >>> ctx = f.tensor_context(torch.zeros(1, 2, 4), torch.tensor([0, 1]), torch.zeros(1, 6))
        >>> base = f.context(torch.zeros(1, 5, 5), ctx, torch.tensor([[0, 0, 1, 1, 1]]))
        >>> f.velocity(base, torch.zeros(1, 5), torch.tensor([0.5]), torch.tensor([0.1])).shape
        torch.Size([1, 5])
    """

    def __init__(self, config: CoordinateConfig):
        super().__init__()
        h = config.hidden
        self.clip = float(config.clip)
        self.use_prefix = config.condition == "prefix"
        self.kind_emb = nn.Embedding(len(LAYER_KINDS), config.kind_dim)
        self.coord_in = nn.Linear(config.history + 1, h, bias=False)
        self.tensor_in = nn.Linear(NUM_TENSOR_STATS + config.kind_dim + 2 + config.history, h)
        self.x_in = nn.Parameter(torch.randn(h) * 0.5)
        self.t_in = nn.Linear(2, h, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(h, h) for _ in range(config.depth))
        self.act = _ACTIVATIONS[config.activation]()
        self.out = nn.Linear(h, 1)
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def tensor_context(self, stats: Tensor, kinds: Tensor, window: Tensor) -> Tensor:
        """Per-tensor part of the first layer.

        Args:
            stats: ``(B, K, NUM_TENSOR_STATS)`` tensor statistics.
            kinds: ``(K,)`` layer-kind ids.
            window: ``(B, 2 + history)`` window inputs.

        Returns:
            ``(B, K, H)``.
        """
        b, k, _ = stats.shape
        emb = self.kind_emb(kinds).unsqueeze(0).expand(b, k, -1)
        win = window.unsqueeze(1).expand(b, k, -1)
        return self.tensor_in(torch.cat([stats, emb, win], dim=-1))

    def context(self, coord: Tensor, tensor_ctx: Tensor, tid: Tensor) -> Tensor:
        """Static (x- and t-independent) pre-activation of C coordinates.

        Args:
            coord: ``(B, C, history + 1)`` coordinate inputs.
            tensor_ctx: ``(B, K, H)`` from :meth:`tensor_context`.
            tid: ``(C,)`` or ``(B, C)`` tensor index of each coordinate.

        Returns:
            ``(B, C, H)``.
        """
        b, c, _ = coord.shape
        if tid.dim() == 1 and c > 0 and int(tid[0]) == int(tid[-1]):
            gathered = tensor_ctx[:, int(tid[0])].unsqueeze(1)  # chunk inside one tensor: broadcast
        elif tid.dim() == 1:
            gathered = tensor_ctx[:, tid]
        else:
            gathered = torch.gather(tensor_ctx, 1, tid.unsqueeze(-1).expand(b, c, tensor_ctx.shape[-1]))
        if not self.use_prefix:
            return gathered.expand(b, c, -1)
        return self.coord_in(coord) + gathered

    def velocity(self, base: Tensor, x: Tensor, t: Tensor, t_n: Tensor) -> Tensor:
        """Normalized velocity ``dx/dt`` of C coordinates.

        Args:
            base: ``(B, C, H)`` from :meth:`context`.
            x: ``(B, C)`` normalized current values.
            t: ``(B,)`` times.
            t_n: ``(B,)`` start times ``n / m`` of the windows.

        Returns:
            ``(B, C)``.
        """
        frac = (t - t_n) / (1.0 - t_n).clamp(min=1e-6)
        tpart = self.t_in(torch.stack([t, frac], dim=-1)).unsqueeze(1)
        h = torch.addcmul(tpart, x.clamp(-self.clip, self.clip).unsqueeze(-1), self.x_in)
        h += base
        inplace = not torch.is_grad_enabled()  # inference: in-place activations save memory traffic
        h = self._act(h, inplace)
        for layer in self.hidden:
            h = self._act(layer(h), inplace)
        return self.out(h).squeeze(-1)

    def _act(self, h: Tensor, inplace: bool) -> Tensor:
        if not inplace:
            return self.act(h)
        if isinstance(self.act, nn.ELU):
            return nn.functional.elu_(h)
        if isinstance(self.act, nn.ReLU):
            return h.relu_()
        return self.act(h)


@dataclass
class WindowBatch:
    """A training mini-batch of B windows x C sampled coordinates, already normalized.

    Attributes:
        prefix: ``(B, n+1, C)`` normalized prefix ``x_0..x_n`` (``x_n = 0``).
        target: ``(B, C)`` normalized target ``y = (w_m - w_n) / s`` (clipped).
        m: ``(B,)`` int64 target index of each window (in window snapshots).
        coord: ``(B, C, history + 1)`` coordinate inputs.
        tensor_stats: ``(B, K, NUM_TENSOR_STATS)``.
        kinds: ``(K,)`` layer kinds of the source model's tensors.
        tid: ``(B, C)`` tensor index of each sampled coordinate.
        line: ``(B, n+1, C)`` and ``(B, C)``: the least-squares line through the prefix at
            ``0..n`` and at ``m`` (``prior="line"``), else None.
    """

    prefix: Tensor
    target: Tensor
    m: Tensor
    coord: Tensor
    tensor_stats: Tensor
    kinds: Tensor
    tid: Tensor
    line: tuple[Tensor, Tensor] | None = None


@dataclass
class _Source:
    weights: Tensor  # (N, T, D)
    spec: ParamSpec
    offsets: Tensor = field(init=False)
    numels: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.offsets = torch.tensor([e.offset for e in self.spec.entries], dtype=torch.long)
        self.numels = torch.tensor([e.numel for e in self.spec.entries], dtype=torch.long)


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _average_gradients(params: list[nn.Parameter], dist: Any, world_size: int) -> None:
    """Average the gradients over ranks with one all_reduce of a flat buffer."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        k = p.numel()
        p.grad = flat[offset : offset + k].view_as(p).clone()
        offset += k


class CoordinateBackend:
    """Model-agnostic GFM forecaster backend (``GFMForecaster(variant="coordinate")``).

    Args:
        **options: fields of :class:`CoordinateConfig` (``n``, ``m``, ``path``, ``hidden``,
            ``solver``, ``chunk_size``, ``windows``, ...).

    Example:
        >>> import torch
        >>> from gfm_accel.trajectories import Trajectories
        >>> w = torch.cumsum(torch.randn(4, 30, 50) * 0.1, dim=1)
        >>> b = CoordinateBackend(hidden=8, steps_per_epoch=2)
        >>> losses = b.fit([Trajectories(weights=w)], epochs=1, progress=False)
        >>> b.forecast(w[0, :5], m=25).final.shape
        torch.Size([1, 50])
    """

    variant = "coordinate"
    expected_dim = None

    def __init__(self, **options: Any):
        self.config = CoordinateConfig(**options)
        self.net = CoordinateField(self.config)

    # -------------------------------------------------------------- config / state
    def config_dict(self) -> dict[str, Any]:
        """JSON-ready options (plus the normalization scheme name)."""
        return {**self.config.to_dict(), "normalization": NORMALIZATION}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CoordinateBackend":
        config = dict(config)
        norm = config.pop("normalization", NORMALIZATION)
        if norm != NORMALIZATION:
            raise ValueError(f"saved coordinate forecaster uses normalization {norm!r}; this version knows "
                             f"{NORMALIZATION!r}")
        return cls(**config)

    def state_tensors(self) -> dict[str, Tensor]:
        return {f"net.{k}": v.detach().clone() for k, v in self.net.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        own = self.net.state_dict()
        got = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
        missing = sorted(set(own) - set(got))
        unexpected = sorted(set(got) - set(own))
        if missing or unexpected:
            raise ValueError(f"coordinate forecaster weights do not match its config: missing {missing}, "
                             f"unexpected {unexpected}")
        for k, v in got.items():
            if v.shape != own[k].shape:
                raise ValueError(f"coordinate forecaster tensor {k!r} has shape {tuple(v.shape)}, the config "
                                 f"expects {tuple(own[k].shape)}")
        self.net.load_state_dict(got)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # -------------------------------------------------------------------- training
    def _sources(self, data: Sequence[Trajectories]) -> list[_Source]:
        if not data:
            raise ValueError("fit needs at least one Trajectories object")
        out = []
        for i, tr in enumerate(data):
            spec = tr.spec if tr.spec is not None else ParamSpec.flat(tr.D)
            if spec.numel != tr.D:
                raise ValueError(f"trajectory set {i}: spec describes D={spec.numel} but weights have D={tr.D}")
            need = 2 if self.config.windows else int(self.config.m) + 1
            if tr.T < need:
                raise ValueError(f"trajectory set {i} has T={tr.T} snapshots; training needs at least {need}"
                                 + ("" if self.config.windows else f" (m={self.config.m})"))
            out.append(_Source(weights=tr.weights.float(), spec=spec))
        return out

    def _window_plan(self, t_len: int, gen: torch.Generator) -> tuple[int, int, int]:
        """Pick ``(n, stride, horizon)`` that fit in ``t_len`` snapshots."""
        cfg = self.config
        last = t_len - 1
        ns = [n for n in cfg.n_choices if n + 1 <= last]
        if not ns:
            ns = [max(0, last - 1)]
        for _ in range(64):
            n = ns[_randint(gen, 0, len(ns) - 1)]
            r = cfg.strides[_randint(gen, 0, len(cfg.strides) - 1)]
            hmax = last // r - n
            if hmax < 1:
                continue
            if cfg.horizons is None:
                h = int(math.exp(float(torch.rand((), generator=gen)) * math.log(hmax + 1)))
                h = min(max(h, 1), hmax)
            else:
                fits = [h for h in cfg.horizons if h <= hmax]
                if not fits:
                    continue
                h = fits[_randint(gen, 0, len(fits) - 1)]
            return n, r, h
        n = ns[0]
        return n, 1, last - n

    def sample_batch(
        self, sources: Sequence[_Source], gen: torch.Generator, batch_size: int
    ) -> WindowBatch:
        """Draw one mini-batch of windows (all with the same n) and coordinates.

        Args:
            sources: prepared trajectory sets (see :meth:`fit`).
            gen: random generator (seed it per rank for DDP sharding).
            batch_size: number of windows B.
        """
        cfg = self.config
        sizes = torch.tensor([float(s.weights.shape[0]) for s in sources])
        src = sources[int(torch.multinomial(sizes, 1, generator=gen))]
        n_traj, t_len, d = src.weights.shape
        if cfg.windows:
            n, _, _ = self._window_plan(t_len, gen)
            rows, ms = [], []
            for _ in range(batch_size):
                # Same n for the batch; stride and horizon per window.
                for _ in range(64):
                    _, r, h = self._window_plan(t_len, gen)
                    if (n + h) * r <= t_len - 1:
                        break
                else:
                    r, h = 1, t_len - 1 - n
                m = n + h
                start = _randint(gen, 0, t_len - 1 - m * r)
                rows.append(torch.tensor([start + r * i for i in range(n + 1)] + [start + r * m]))
                ms.append(m)
            idx = torch.stack(rows)
            m_t = torch.tensor(ms, dtype=torch.long)
        else:
            n = cfg.n
            idx = torch.tensor(list(range(n + 1)) + [cfg.m]).expand(batch_size, -1)
            m_t = torch.full((batch_size,), cfg.m, dtype=torch.long)
        traj = torch.randint(0, n_traj, (batch_size,), generator=gen)
        win = src.weights[traj.unsqueeze(-1), idx]  # (B, n+2, D)
        stats = tensor_statistics(win[:, : n + 1], src.spec, floor_rel=cfg.floor_rel)

        c = cfg.coords_per_window
        n_bal = int(round(c * cfg.tensor_balanced))
        coords = torch.randint(0, d, (batch_size, c - n_bal), generator=gen)
        if n_bal:
            k = torch.randint(0, len(src.spec), (batch_size, n_bal), generator=gen)
            u = torch.rand(batch_size, n_bal, generator=gen)
            within = (u * src.numels[k]).long().clamp(max=src.numels[k] - 1)
            coords = torch.cat([coords, src.offsets[k] + within], dim=1)
        tid = torch.bucketize(coords, stats.ends, right=True)
        cols = torch.gather(win, 2, coords.unsqueeze(1).expand(-1, n + 2, -1))  # (B, n+2, C)
        scale = torch.gather(stats.scale, 1, tid)  # (B, C)
        w_n = cols[:, n]
        norm = (cols - w_n.unsqueeze(1)) / scale.unsqueeze(1)
        prefix = norm[:, : n + 1].clamp(-cfg.clip, cfg.clip)
        return WindowBatch(
            prefix=prefix,
            target=norm[:, n + 1].clamp(-cfg.clip, cfg.clip),
            m=m_t,
            coord=coordinate_inputs(cols[:, : n + 1], scale, history=cfg.history, clip=cfg.clip),
            tensor_stats=stats.features,
            kinds=stats.kinds,
            tid=tid,
            line=line_through(prefix, m_t, fitted=True) if cfg.prior == "line" else None,
        )

    def loss(self, batch: WindowBatch, gen: torch.Generator | None = None) -> GFMLoss:
        """The GFM objective on a window batch, in the normalized frame (differentiable).

        Algorithm 1 (``sample_path`` + ``midpoint_forecast`` of :mod:`gfm_accel.flow.path`):
        ``(beta Z + gamma (1 - Z)) ||v - u_t||^2 + zeta ||w_hat_m - w_m||^2``, averaged over
        coordinates, then (``loss_weighting="relative"``) divided per window by ``E_c[y^2]``,
        the window's last-value error in the normalized frame. Each window draws its own
        ``t ~ U[0, 1]``; every coordinate of a window shares it.
        """
        cfg = self.config
        b, n1, _ = batch.prefix.shape
        n = n1 - 1
        m_f = batch.m.float()
        t_n = n / m_f
        window = window_inputs(n, m_f, history=cfg.history)
        tctx = self.net.tensor_context(batch.tensor_stats, batch.kinds, window)
        base = self.net.context(batch.coord, tctx, batch.tid)

        def field_fn(x: Tensor, t: Tensor) -> Tensor:
            return self.net.velocity(base, x, t, t_n)

        t = torch.rand(b, generator=gen)
        prefix, target = batch.prefix, batch.target
        if batch.line is not None:  # prior="line": the flow of the residual to the line
            fit, at_m = batch.line
            detrended = prefix - fit
            prefix = detrended - detrended[:, n : n + 1]
            target = target - at_m
        sample = sample_path(prefix, target, batch.m, t, path=cfg.path, beta=cfg.beta, gamma=cfg.gamma)
        cfm = sample.weight * (field_fn(sample.w_t, sample.t) - sample.target).pow(2).mean(dim=-1)  # (B,)
        w_hat = midpoint_forecast(field_fn, prefix[:, n], t_n)
        pred = (w_hat - target).pow(2).mean(dim=-1)  # (B,)
        if cfg.loss_weighting == "relative":
            # Each window's loss in units of its last-value error E_c[y^2]: windows with long
            # horizons (large y) would otherwise dominate, and heavy-tailed windows make
            # the absolute loss very noisy.
            wt = 1.0 / batch.target.pow(2).mean(dim=-1).clamp(min=1e-2)
        else:
            wt = torch.ones_like(pred)
        cfm_w, pred_w = (wt * cfm).mean(), (wt * pred).mean()
        return GFMLoss(total=cfm_w + cfg.zeta * pred_w, cfm=cfm_w, pred=pred_w, sample=sample, w_hat_m=w_hat)

    def fit(
        self,
        data: Sequence[Trajectories],
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        progress: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> list[float]:
        """Train on every trajectory of ``data``.

        One epoch is ``steps_per_epoch`` optimizer steps, by default one window per
        trajectory in expectation (windows are sampled, so there is no exact pass). Adam with
        a cosine decay of the learning rate to 10 % and gradient-norm clipping at 1.

        Args:
            data: trajectory sets (different D and layouts may be mixed).
            epochs: number of epochs (default ``config.epochs``).
            batch_size: windows per step (default ``config.batch_size``).
            lr: Adam learning rate (default ``config.lr``).
            seed: seed of the window sampler and of the network initialization.
            progress: show a tqdm progress bar with the loss (rank 0 only).
            rank, world_size: data-parallel training (e.g. under ``torchrun``; needs an initialized
                ``torch.distributed`` process group when ``world_size > 1``). Each rank samples
                its own windows (generator seeded with ``seed + 1000 * rank``), the gradient is
                averaged over ranks with one ``all_reduce`` of the flattened gradient (the net
                is ~2k weights, so this is cheaper and simpler than wrapping it in
                ``DistributedDataParallel``), and an epoch has ``1 / world_size`` as many steps.
                Every rank ends with the same weights and the same loss history; only rank 0
                shows progress. Writing files is the caller's job (rank 0).

        Returns:
            The mean training loss of each epoch.
        """
        cfg = self.config
        epochs = cfg.epochs if epochs is None else int(epochs)
        batch_size = cfg.batch_size if batch_size is None else int(batch_size)
        lr = cfg.lr if lr is None else float(lr)
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        if cfg.m is None:
            cfg.m = min(tr.T for tr in data) - 1
            if cfg.m <= cfg.n:
                raise ValueError(f"the training data has T={cfg.m + 1} snapshots, too few for n={cfg.n}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        dist = None
        if world_size > 1:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise ValueError(f"world_size={world_size} needs an initialized torch.distributed process group")
        sources = self._sources(data)
        n_total = sum(s.weights.shape[0] for s in sources)
        per_epoch = cfg.steps_per_epoch or max(1, math.ceil(n_total / (batch_size * world_size)))
        with torch.random.fork_rng(devices=[]):  # seeded init; the global RNG is left untouched
            torch.manual_seed(seed)
            self.net = CoordinateField(cfg)
        params = list(self.net.parameters())
        if dist is not None:
            for p in params:  # same start on every rank (already equal by seed; made certain)
                dist.broadcast(p.data, src=0)
        gen = torch.Generator().manual_seed(seed + 1000 * rank)
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        total = epochs * per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
        bar = None
        if progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="coordinate GFM", unit="step")
        history: list[float] = []
        self.net.train()
        for epoch in range(epochs):
            acc = 0.0
            for _ in range(per_epoch):
                batch = self.sample_batch(sources, gen, batch_size)
                out = self.loss(batch, gen)
                opt.zero_grad(set_to_none=True)
                out.total.backward()
                if dist is not None:
                    _average_gradients(params, dist, world_size)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                acc += float(out.total.detach())
                if bar is not None:
                    bar.update(1)
            mean = acc / per_epoch
            if dist is not None:  # every rank reports the same, all-rank mean
                buf = torch.tensor([mean], dtype=torch.float64)
                dist.all_reduce(buf)
                mean = float(buf) / world_size
            history.append(mean)
            if bar is not None:
                bar.set_postfix(loss=f"{history[-1]:.4g}")
            logger.debug("coordinate GFM epoch %d: loss %.6g", epoch, history[-1])
        if bar is not None:
            bar.close()
        self.net.eval()
        return history

    # ------------------------------------------------------------------- inference
    @torch.no_grad()
    def forecast(
        self, prefix: Tensor, m: int, spec: ParamSpec | None = None, *, return_states: bool = False
    ) -> ODEResult:
        """Forecast ``w_m`` from ``w_0..w_n``, chunk by chunk over the coordinates.

        Args:
            prefix: ``(B, n+1, D)`` or ``(n+1, D)``; any n >= 0 (the window frame is ``t_i = i/m``).
                Finite values are assumed (``GFMForecaster.forecast`` checks them).
            m: target index, ``m > n``.
            spec: layout of D (tensors and layer kinds); default one flat tensor.
            return_states: also return the ODE states (memory ``S x B x D``; small D only). With
                ``prior="line"`` they are the residual flow (``w_n`` plus the correction); the line's
                ``L(m)`` is added to ``final`` only.

        Returns:
            An :class:`~gfm_accel.flow.solver.ODEResult` whose ``final`` is ``(B, D)`` float32 on
            the prefix's device (the work is done on the CPU). ``steps`` is the largest step
            count over chunks; ``stopped_early`` is True when
            any chunk met the ``tau`` criterion.
        """
        cfg = self.config
        batch, _ = as_batch(prefix)
        device = batch.device
        batch = batch.cpu()  # computed on the CPU (snapshots live there); the result goes back to `device`
        # The facade (GFMForecaster) has validated the prefix already (check_prefix, including
        # NaN/Inf); a full isfinite pass would cost ~335 MB and 0.7 s more on 10M parameters.
        if m <= batch.shape[1] - 1:
            raise ValueError(f"m={m} must be larger than n={batch.shape[1] - 1} (the prefix holds w_0..w_n)")
        b, n1, d = batch.shape
        n = n1 - 1
        spec = spec if spec is not None else ParamSpec.flat(d)
        if spec.numel != d:
            raise ValueError(f"the parameter spec describes D={spec.numel} but the prefix has D={d}")
        self.net.eval()
        stats = tensor_statistics(batch, spec, floor_rel=cfg.floor_rel)
        m_t = torch.full((b,), float(m))
        t_n = n / m_t
        tctx = self.net.tensor_context(stats.features, stats.kinds, window_inputs(n, m_t, history=cfg.history))
        out = torch.empty(b, d, dtype=torch.float32)
        chunk = max(1, cfg.chunk_size // b)
        steps, stopped = 0, False
        all_states: list[Tensor] = []
        times = None
        for a in range(0, d, chunk):
            z = min(d, a + chunk)
            tid = tensor_ids_for_range(stats.ends, a, z)
            cols = batch[:, :, a:z]
            scale = stats.scale[:, tid]
            base = self.net.context(coordinate_inputs(cols, scale, history=cfg.history, clip=cfg.clip), tctx, tid)
            w_n = cols[:, n].contiguous()

            def field_fn(w: Tensor, t: Tensor, base=base, w_n=w_n, scale=scale) -> Tensor:
                return scale * self.net.velocity(base, (w - w_n) / scale, t, t_n)

            res = integrate(field_fn, w_n, n / m, 1.0, method=cfg.solver, step=cfg.step, num_steps=cfg.num_steps,
                            tau=cfg.tau, return_states=return_states)
            out[:, a:z] = res.final
            if cfg.prior == "line":
                norm = ((cols - w_n.unsqueeze(1)) / scale.unsqueeze(1)).clamp(-cfg.clip, cfg.clip)
                out[:, a:z] += scale * line_through(norm, m_t)
            steps = max(steps, res.steps)
            stopped = stopped or res.stopped_early
            if return_states:
                all_states.append(res.states)
                if times is None or res.times.shape[0] > times.shape[0]:
                    times = res.times
        states = None
        if return_states:
            s_max = max(s.shape[0] for s in all_states)
            # A chunk that stopped early keeps its last state for the remaining times.
            padded = [torch.cat([s, s[-1:].expand(s_max - s.shape[0], -1, -1)]) for s in all_states]
            states = torch.cat(padded, dim=-1)
        if device.type != "cpu":
            out = out.to(device)
            states = None if states is None else states.to(device)
        return ODEResult(final=out, times=times, states=states, steps=steps, stopped_early=stopped)
