"""Every option of the coordinate forecaster (:class:`CoordinateConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import FieldOptions

__all__ = ["NORMALIZATION", "ACTIVATIONS", "CoordinateConfig"]

#: Name of the normalization scheme, stored in saved files (see :mod:`.features`).
NORMALIZATION = "per_tensor_centre_wn_scale_rms_move_v1"
#: Activations of the shared network.
ACTIVATIONS: tuple[str, ...] = ("elu", "relu", "silu", "tanh")


@dataclass
class CoordinateConfig(FieldOptions):
    """Every option of the coordinate forecaster; validates itself and round-trips to JSON.

    The options shared with the dense field (``n, m, condition, path, beta, gamma, zeta,
    hidden, solver, step, tau``) are those of :class:`~gfm_accel.forecast.options.FieldOptions`;
    this variant's defaults differ there: ``condition="prefix"``, ``path="from_last"``,
    ``hidden=32``, ``solver="midpoint"``.

    Attributes:
        n, m: the fixed training window (``windows=False``); with ``windows=True`` only the
            defaults recorded in the file: any ``(n, m)`` can be forecast. ``m=None`` = ``T - 1``
            of the training data (resolved by ``fit``).
        condition: ``"prefix"`` (the coordinate sees its own prefix) or ``"none"`` (ablation).
        depth: number of hidden ``H x H`` layers after the first layer.
        activation: ``"relu"`` (default: cheapest, and as good as ELU on the digits benchmark),
            ``"elu"`` (the paper's dense field), ``"silu"`` or ``"tanh"``.
        kind_dim: size of the layer-kind embedding.
        history: number of most recent normalized steps fed per coordinate.
        floor_rel: relative floor of the per-tensor scale (units of ``rms(w_n)``).
        clip: clamp for normalized inputs and training targets.
        num_steps: number of ODE steps over ``[t_n, 1]`` when ``step`` is None (``step`` wins).
        chunk_size: coordinates (times batch) processed at once at inference.
        windows: train on random windows (True) or on the fixed ``(n, m)`` (False).
        n_choices: values of n sampled for windows.
        horizons: values of ``m - n`` sampled for windows; None = log-uniform over what fits.
        strides: snapshot subsampling factors sampled for windows.
        coords_per_window: coordinates sampled per window and step.
        tensor_balanced: fraction of those sampled tensor-first (so small tensors are seen).
        steps_per_epoch: optimizer steps per epoch of training; None =
            ``ceil(total trajectories / batch_size)``, i.e. one window per trajectory and epoch
            in expectation (the dense variant's "pass over the data").
        epochs: default number of epochs (the paper's 1000).
        batch_size: default number of windows per step.
        lr: default Adam learning rate (cosine-decayed to 10 %).
        loss_weighting: ``"relative"`` (each window's loss divided by its last-value error,
            so every window counts equally, like the benchmark's relative MSE) or
            ``"absolute"`` (the paper's plain average).
        prior: ``"last"`` (the paper: the flow starts at ``w_n``) or ``"line"`` (the flow
            corrects the least-squares line through the prefix; see :mod:`gfm_accel.forecast.coordinate`).
        pooled: rounds of neuron interaction (NFN-style pooled context, :mod:`.pooled`):
            0 (default: each coordinate sees only its own window and its tensor's statistics,
            the model of the shipped file, bit for bit), 1 (its inputs also get linear maps of
            the row, column and tensor means of the per-coordinate inputs and of the adjacent
            layers' matching terms) or 2 (a second round pools the first layer's static
            activations the same way). Needs ``condition="prefix"``.
        schedule_aware: the field also sees the learning-rate profile of the window and the
            horizon (scale-free, :func:`.features.lr_inputs`). Training data must hold
            ``"lr_sum"``; at inference it comes as ``forecast(..., lr_profile=...)``.

    Example:
        >>> cfg = CoordinateConfig(hidden=16)
        >>> CoordinateConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    condition: str = "prefix"
    path: str = "from_last"
    hidden: int = 32
    solver: str = "midpoint"
    depth: int = 1
    activation: str = "relu"
    kind_dim: int = 4
    history: int = 4
    floor_rel: float = 1e-3
    clip: float = 100.0
    num_steps: int | None = 1
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
    pooled: int = 0
    schedule_aware: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_choices = tuple(int(v) for v in self.n_choices)
        self.strides = tuple(int(v) for v in self.strides)
        if self.horizons is not None:
            self.horizons = tuple(int(v) for v in self.horizons)
        if self.step is not None:
            self.num_steps = None
        if self.loss_weighting not in ("relative", "absolute"):
            raise ValueError(f"unknown loss_weighting {self.loss_weighting!r}; expected 'relative' or 'absolute'")
        if self.prior not in ("last", "line"):
            raise ValueError(f"unknown prior {self.prior!r}; expected 'last' or 'line'")
        if isinstance(self.pooled, bool) or self.pooled not in (0, 1, 2):
            raise ValueError(f"pooled must be 0, 1 or 2 (rounds of neuron interaction), got {self.pooled!r}")
        if self.pooled and self.condition != "prefix":
            raise ValueError(f"pooled={self.pooled} pools the coordinates' own inputs and needs condition='prefix', "
                             f"got condition={self.condition!r}")
        if not isinstance(self.schedule_aware, bool):
            raise ValueError(f"schedule_aware must be True or False, got {self.schedule_aware!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; expected one of {sorted(ACTIVATIONS)}")
        for name in ("kind_dim", "history", "chunk_size", "coords_per_window", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, got {self.depth}")
        if self.num_steps is not None and self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.floor_rel < 0 or self.clip <= 0 or self.lr <= 0:
            raise ValueError("floor_rel must be >= 0; clip and lr must be > 0")
        if not self.n_choices or min(self.n_choices) < 0:
            raise ValueError(f"n_choices must be non-empty and >= 0, got {self.n_choices}")
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be non-empty and >= 1, got {self.strides}")
        if self.horizons is not None and (not self.horizons or min(self.horizons) < 1):
            raise ValueError(f"horizons must be non-empty and >= 1, got {self.horizons}")
        if not 0.0 <= self.tensor_balanced <= 1.0:
            raise ValueError(f"tensor_balanced must be in [0, 1], got {self.tensor_balanced}")
