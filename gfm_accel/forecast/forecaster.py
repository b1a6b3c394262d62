"""GFMForecaster: the public Gradient Flow Matching forecaster (fit, forecast, save, load).

The facade is variant-agnostic. It validates a :class:`GFMConfig`, builds a backend for the
chosen ``variant`` and delegates the work:

* ``"dense"`` -> :class:`gfm_accel.forecast.dense.DenseBackend` (the paper's field,
  tied to one D);
* ``"coordinate"`` -> ``gfm_accel.forecast.coordinate.CoordinateBackend`` (one small
  network shared by every scalar parameter; serves any D). Imported lazily.

Backends follow :class:`ForecasterBackend`. ``Backend.from_config(config)`` receives the
common keys of :class:`GFMConfig` except ``variant`` (``n, m, condition, path, beta,
gamma, zeta, hidden, solver, step, tau``; only ``n``, ``m`` and the ones the user set,
so that each variant keeps its own defaults) merged with the variant's own options
(``variant_options``); ``m`` may be ``None`` there, meaning "T - 1 of the training data",
and a backend resolves it in ``fit``. ``backend.config_dict()`` must contain at least
``"n"`` and ``"m"``; the facade reads them back (the trained n and m) and stores the
whole dict in the file. ``config_dict()["normalization"]``, when present, is recorded in
the file metadata as ``"normalization"``.

File format (safetensors, written atomically): the backend's ``state_tensors()`` plus
string metadata ``format="gfm_accel.forecaster"``, ``version="1"``, ``tensors_sha256``
(checksum of the tensors, verified at load when present), and JSON values
``variant``, ``config`` (the backend config), ``n``, ``m``, ``D`` (dense only),
``normalization``, ``provenance`` (data files, command, epochs, lr, seed, final loss,
fit seconds, when known). Loading checks the checksum and that every weight is finite, and
builds the backend without a random initialisation (no global RNG is drawn).

Example:
    >>> import torch
    >>> w = torch.linspace(0, 1, 12).view(1, 12, 1).repeat(3, 1, 2)       # (N=3, T=12, D=2)
    >>> f = GFMForecaster("dense", n=2, m=11, hidden=8).fit(w, epochs=2, progress=False)
    >>> f.forecast(w[0, :3]).shape, f.expected_dim
    (torch.Size([2]), 2)
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Protocol, runtime_checkable

import torch
from torch import Tensor

from .._io import FileFormatError, atomic_save_file, decode_metadata, encode_metadata, load_tensors, read_header
from ..flow.solver import ODEResult
from ..params import ParamSpec
from ..trajectories import Trajectories, load_trajectories
from .base import as_batch, check_lr_profile, check_prefix
from .options import CONDITIONS, FieldOptions, field_option_names

__all__ = [
    "FORMAT",
    "VERSION",
    "VARIANTS",
    "CONDITIONS",
    "GFMConfig",
    "ForecasterBackend",
    "GFMForecaster",
    "load_training_data",
    "tensors_digest",
]

logger = logging.getLogger(__name__)

FORMAT = "gfm_accel.forecaster"
VERSION = "1"
#: Metadata key of the tensor checksum (:func:`tensors_digest`); files without it load too.
DIGEST_KEY = "tensors_sha256"
#: variant -> (module, class) of its backend.
_BACKENDS: dict[str, tuple[str, str]] = {
    "dense": ("gfm_accel.forecast.dense", "DenseBackend"),
    "coordinate": ("gfm_accel.forecast.coordinate", "CoordinateBackend"),
}
VARIANTS: tuple[str, ...] = tuple(_BACKENDS)


@runtime_checkable
class ForecasterBackend(Protocol):
    """What a GFM variant implements; :class:`GFMForecaster` only talks to this.

    ``fit`` receives ``None`` for ``epochs``/``batch_size``/``lr`` when the user did not set
    them: the backend then uses its own defaults (dense: the paper's 1000 / 16 / 1e-4).

    ``forecast`` receives a validated, batched float32 prefix ``(B, n+1, D)`` and returns an
    :class:`~gfm_accel.flow.solver.ODEResult` whose ``final`` is ``(B, D)``. A validated
    ``lr_profile`` (``(m+1,)`` or ``(B, m+1)``, :func:`~gfm_accel.forecast.base.check_lr_profile`)
    comes as a keyword only when the caller gave one; backends read it when their
    ``schedule_aware`` attribute (optional, default False) is True and ignore it otherwise.
    """

    variant: ClassVar[str]
    expected_dim: int | None

    def config_dict(self) -> dict: ...

    @classmethod
    def from_config(cls, config: dict, *, initialize: bool = True) -> "ForecasterBackend": ...

    def fit(
        self,
        data: list[Trajectories],
        *,
        epochs: int | None,
        batch_size: int | None,
        lr: float | None,
        seed: int,
        progress: bool = True,
    ) -> list[float]: ...

    def forecast(
        self, prefix: Tensor, m: int, spec: ParamSpec | None = None, *, return_states: bool = False
    ) -> ODEResult: ...

    def state_tensors(self) -> dict[str, Tensor]: ...

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None: ...


@dataclass
class GFMConfig(FieldOptions):
    """The facade's view: the variant, the shared field options and the variant's own options.

    Attributes:
        n, m, condition, path, beta, gamma, zeta, hidden, solver, step, tau: the shared
            :class:`~gfm_accel.forecast.options.FieldOptions` (defaults: the dense field's).
        variant: ``"dense"`` (the paper's) or ``"coordinate"``.
        variant_options: further backend options (passed through unchanged).

    Example:
        >>> GFMConfig.from_dict(GFMConfig(n=0).to_dict()).n
        0
    """

    variant: str = "dense"
    variant_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        super().__post_init__()
        self.variant_options = dict(self.variant_options)

    def backend_config(self) -> dict[str, Any]:
        """The dict given to ``Backend.from_config``: common keys plus variant options."""
        d = {name: getattr(self, name) for name in field_option_names()}
        options = dict(self.variant_options)
        clash = set(options) & set(d)
        if clash:
            raise ValueError(f"variant options {sorted(clash)} clash with common options; set them directly")
        return {**d, **options}


def tensors_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes (in name order), hex.

    Stored as the ``tensors_sha256`` metadata of every file :meth:`GFMForecaster.save`
    writes, so that corrupted tensor bytes are caught at load.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _check_tensor_data(where: str, tensors: dict[str, Tensor], digest: str | None) -> None:
    """Reject corrupted tensor bytes: a checksum that does not match, or NaN/Inf weights."""
    if digest is not None and tensors_digest(tensors) != digest:
        raise FileFormatError(f"{where}: the tensor data does not match the file's {DIGEST_KEY} checksum "
                              "(the file is corrupted; re-download or re-train it)")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise FileFormatError(f"{where}: tensor {name!r} holds NaN/Inf values (the file is corrupted)")


def _backend_class(variant: str) -> type:
    if variant not in _BACKENDS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    module, name = _BACKENDS[variant]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"variant {variant!r} is not available ({module}.{name}: {exc})") from exc


TrajectorySource = str | os.PathLike | Trajectories | Tensor


def load_training_data(sources: TrajectorySource | Iterable[TrajectorySource]) -> list[Trajectories]:
    """Normalise files / :class:`Trajectories` / ``(N, T, D)`` tensors to a list of Trajectories."""
    if isinstance(sources, (str, os.PathLike, Trajectories)) or torch.is_tensor(sources):
        sources = [sources]
    out = []
    for src in sources:
        if isinstance(src, Trajectories):
            out.append(src)
        elif torch.is_tensor(src):
            if src.dim() != 3:
                raise ValueError(f"a weight tensor must have shape (N, T, D), got {tuple(src.shape)}")
            out.append(Trajectories(weights=src.detach().float().cpu()))
        elif isinstance(src, (str, os.PathLike)):
            out.append(load_trajectories(src))
        else:
            raise TypeError(f"cannot train on a {type(src).__name__}; give files, Trajectories or (N, T, D) tensors")
    if not out:
        raise ValueError("no training data given")
    return out


def _distributed_rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of an initialized torch.distributed group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class GFMForecaster:
    """Gradient Flow Matching forecaster; follows :class:`~gfm_accel.forecast.base.Forecaster`.

    Args:
        variant: ``"dense"`` (paper) or ``"coordinate"`` (model-agnostic).
        n, m, condition, path, beta, gamma, zeta, hidden, solver, step, tau: see :class:`GFMConfig`;
            ``None`` (the default for all but n and m) means the variant's own default.
            :attr:`config` holds the resolved values. For ``"dense"`` the default is the
            prefix-conditioned field (Eq. 2) with ``skip="auto"``: the field alone or a linear
            skip alone (least squares, or the prefix's own linear dynamics), whichever is best
            on held-out training pairs; the best variant measured over the five optimizers
            (``benchmarks/results/linreg_default/``). ``condition="none"`` is the ablation that
            trains the field exactly as Algorithm 1 states, ``v(w, t)``; ``skip="none"`` the
            field alone.
        **variant_options: backend-specific options (e.g. dense ``normalization="standardize"``,
            ``skip="none" | "lstsq" | "dynamics" | "auto"``).

    Example:
        >>> w = torch.linspace(0, 1, 12).view(1, 12, 1).repeat(4, 1, 3)
        >>> f = GFMForecaster(n=1, m=11, hidden=8).fit(w, epochs=1, progress=False)
        >>> f.forecast(w[:, :2]).shape                    # (B, n+1, D) -> (B, D)
        torch.Size([4, 3])
    """

    def __init__(
        self,
        variant: str = "dense",
        *,
        n: int = 4,
        m: int | None = 199,
        condition: str | None = None,
        path: str | None = None,
        beta: float | None = None,
        gamma: float | None = None,
        zeta: float | None = None,
        hidden: int | None = None,
        solver: str | None = None,
        step: float | None = None,
        tau: float | None = None,
        **variant_options: Any,
    ) -> None:
        # None = "the variant's default". For "dense": condition="prefix" (Eq. 2) and otherwise
        # the paper's values (path="paper", beta=gamma=1,
        # zeta=100, hidden=64, solver="euler", step=1/m, tau=1e-6); the coordinate variant has
        # its own (see its module).
        given = {k: v for k, v in dict(condition=condition, path=path, beta=beta, gamma=gamma, zeta=zeta,
                                       hidden=hidden, solver=solver, step=step, tau=tau).items() if v is not None}
        clash = set(given) & set(variant_options)
        if clash:
            raise ValueError(f"options {sorted(clash)} given twice")
        # Validate the common options with one set of messages before the backend sees them.
        GFMConfig(variant=variant, n=n, m=m, **given)
        backend = _backend_class(variant).from_config({"n": n, "m": m, **given, **variant_options})
        self._init_from(backend, {})

    def _init_from(self, backend: ForecasterBackend, provenance: dict[str, Any]) -> None:
        cfg = backend.config_dict()
        names = field_option_names()
        common = {k: cfg[k] for k in names if k in cfg}
        options = {k: v for k, v in cfg.items() if k not in names}
        #: The resolved configuration (the backend's values, defaults filled in).
        self.config = GFMConfig(variant=backend.variant, **common, variant_options=options)
        self.backend: ForecasterBackend = backend
        self.history: list[float] = []
        self.provenance: dict[str, Any] = dict(provenance)

    @classmethod
    def from_backend(cls, backend: ForecasterBackend, **provenance: Any) -> "GFMForecaster":
        """Wrap an existing backend (e.g. one built or loaded by hand)."""
        self = cls.__new__(cls)
        self._init_from(backend, provenance)
        return self

    # ------------------------------------------------------------ properties
    @property
    def variant(self) -> str:
        return self.backend.variant

    @property
    def schedule_aware(self) -> bool:
        """Whether :meth:`forecast` reads ``lr_profile`` (coordinate ``schedule_aware=True``)."""
        return bool(getattr(self.backend, "schedule_aware", False))

    @property
    def expected_dim(self) -> int | None:
        """D for a dense forecaster (after fit/load), ``None`` for the coordinate variant."""
        return self.backend.expected_dim

    @property
    def n(self) -> int:
        return int(self.backend.config_dict()["n"])

    @property
    def m(self) -> int | None:
        m = self.backend.config_dict()["m"]
        return None if m is None else int(m)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: TrajectorySource | Iterable[TrajectorySource],
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        progress: bool = True,
        command: str | None = None,
    ) -> "GFMForecaster":
        """Train on every trajectory of the given files / Trajectories / ``(N, T, D)`` tensors.

        Args:
            data: one source or a list; each trajectory gives ``(w_0..w_n, w_m)``.
            epochs: passes over the data; None = the variant's default (dense: 1000, App. E).
            batch_size: trajectories per step; None = the variant's default (dense: 16, App. A).
            lr: Adam learning rate; None = the variant's default (dense: 1e-4, App. A).
            seed: seeds initialisation and sampling (the global RNG is left untouched).
            progress: show a progress bar with the loss (tqdm, if installed).
            command: recorded in the provenance (the CLI passes its command line).

        Returns:
            ``self``; the per-epoch training loss is in :attr:`history`.
        """
        import time

        if (epochs is not None and epochs < 1) or (batch_size is not None and batch_size < 1) or (
            lr is not None and lr <= 0
        ):
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0 (got {epochs}, {batch_size}, {lr})")
        trajs = load_training_data(data)
        start = time.perf_counter()
        kwargs: dict[str, Any] = {}
        rank, world = _distributed_rank_world()
        if world > 1:
            # Data-parallel training under torchrun: each rank samples its own windows and
            # the backend averages gradients, so every rank ends with the same network.
            if self.variant != "coordinate":
                raise ValueError(f"distributed training is supported for the coordinate variant, not {self.variant!r}")
            kwargs = {"rank": rank, "world_size": world}
        self.history = list(self.backend.fit(trajs, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                             progress=progress and rank == 0, **kwargs))
        seconds = time.perf_counter() - start
        files = [str(t.path) for t in trajs if t.path is not None]
        self.provenance = {
            "data": files or None,
            "num_trajectories": sum(t.N for t in trajs),
            "epochs": epochs if epochs is not None else len(self.history),
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "final_loss": self.history[-1] if self.history else None,
            "fit_seconds": round(seconds, 3),
            "command": command,
            "world_size": world,
        }
        logger.info("fitted %s GFM forecaster on %d trajectories in %.1f s (final loss %.4g)", self.variant,
                    self.provenance["num_trajectories"], seconds, self.provenance["final_loss"] or float("nan"))
        return self

    # ------------------------------------------------------------- forecast
    def _prepare(self, prefix: Tensor, m: int | None) -> tuple[Tensor, bool, int]:
        batch, unbatched = as_batch(prefix)
        if m is None:
            m = self.m
            if m is None:
                raise ValueError("this forecaster has no trained m yet; pass m= or fit it first")
        check_prefix(batch, int(m), self.expected_dim)
        return batch, unbatched, int(m)

    @torch.no_grad()
    def forecast(
        self, prefix: Tensor, m: int | None = None, *, spec: ParamSpec | None = None,
        lr_profile: Tensor | None = None,
    ) -> Tensor:
        """Forecast ``w_m`` from ``w_0..w_n``.

        Args:
            prefix: ``(n+1, D)`` or ``(B, n+1, D)``; any float dtype/device (computed on CPU
                in float32 by the dense backend; the result comes back in the prefix's device).
            m: target index; defaults to the trained m.
            spec: parameter layout (used by the coordinate variant).
            lr_profile: ``(m+1,)`` or ``(B, m+1)`` summed learning rate per snapshot interval
                of the window frame (entry 0 unused, ``1..n`` the window, ``n+1..m`` the
                horizon; the layout of ``"lr_sum"``). Read when :attr:`schedule_aware`,
                validated and ignored otherwise; None = a constant schedule.

        Returns:
            ``(D,)`` or ``(B, D)`` float32.

        Raises:
            ValueError: a bad prefix or ``m``; an ``lr_profile`` of the wrong shape (the
                message names ``(m+1,)``) or with negative / non-finite entries.
        """
        batch, unbatched, m = self._prepare(prefix, m)
        if lr_profile is None:
            out = self.backend.forecast(batch, m, spec).final
        else:
            check_lr_profile(lr_profile, m, batch.shape[0])
            out = self.backend.forecast(batch, m, spec, lr_profile=lr_profile).final
        return out[0] if unbatched else out

    @torch.no_grad()
    def trajectory(self, prefix: Tensor, m: int | None = None, spec: ParamSpec | None = None) -> ODEResult:
        """Forecast with every intermediate ODE state (Figure 2).

        Returns:
            An :class:`~gfm_accel.flow.solver.ODEResult` with batched ``states`` ``(S, B, D)``
            (``B = 1`` for an unbatched prefix) and their ``times``.
        """
        batch, _, m = self._prepare(prefix, m)
        return self.backend.forecast(batch, m, spec, return_states=True)

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the forecaster to a safetensors file (atomically); see the module docstring."""
        if self.m is None:
            raise ValueError("cannot save a forecaster that has not been fitted (m is unknown)")
        cfg = self.backend.config_dict()
        meta = encode_metadata({
            "variant": self.variant,
            "config": cfg,
            "n": self.n,
            "m": self.m,
            "D": self.expected_dim,
            "normalization": cfg.get("normalization"),
            "provenance": self.provenance or None,
            "history_tail": self.history[-10:] or None,
        })
        meta["format"] = FORMAT
        meta["version"] = VERSION
        tensors = self.backend.state_tensors()
        meta[DIGEST_KEY] = tensors_digest(tensors)
        return atomic_save_file(tensors, path, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, *, tensors_sha256: str | None = None) -> "GFMForecaster":
        """Load a forecaster written by :meth:`save`.

        Args:
            path: the safetensors file.
            tensors_sha256: the expected :func:`tensors_digest` for a file that carries no
                checksum of its own (files written before checksums were stored).

        Raises:
            FileFormatError: missing, truncated or corrupt file; wrong ``format``/``version``;
                unknown variant; tensors that do not match the stored config; tensor bytes
                that do not match the stored checksum or hold NaN/Inf.
        """
        where = str(path)
        meta, _ = read_header(path)
        if meta.get("format") != FORMAT:
            raise FileFormatError(f"{where}: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("version") != VERSION:
            raise FileFormatError(f"{where}: unsupported forecaster version {meta.get('version')!r} (this reader knows {VERSION!r})")
        decoded = decode_metadata(meta, raw_keys=("format", "version", DIGEST_KEY))
        variant = decoded.get("variant")
        config = decoded.get("config")
        if variant not in VARIANTS or not isinstance(config, dict):
            raise FileFormatError(f"{where}: missing or invalid 'variant'/'config' metadata (variant={variant!r})")
        tensors = load_tensors(path)
        _check_tensor_data(where, tensors, decoded.get(DIGEST_KEY) or tensors_sha256)
        try:
            # Not initialised: the weights are loaded right after, and no global RNG is drawn.
            backend = _backend_class(variant).from_config(config, initialize=False)
            backend.load_state_tensors(tensors)
            self = cls.from_backend(backend, **(decoded.get("provenance") or {}))
        except FileFormatError:
            raise
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise FileFormatError(f"{where}: cannot rebuild the {variant} forecaster ({exc})") from exc
        self.history = list(decoded.get("history_tail") or [])
        return self

    def __repr__(self) -> str:
        return (f"GFMForecaster(variant={self.variant!r}, n={self.n}, m={self.m}, D={self.expected_dim}, "
                f"condition={self.config.condition!r}, path={self.config.path!r})")
