"""``CoordinateBackend``: the coordinate variant behind :class:`~gfm_accel.forecast.forecaster.GFMForecaster`.

It holds a :class:`CoordinateConfig` and a :class:`~.field.CoordinateField` and delegates:
window sampling to :mod:`.windows`, training to :mod:`.train`, inference to :mod:`.infer`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ...flow.loss import GFMLoss
from ...flow.solver import ODEResult
from ...params import ParamSpec
from ...trajectories import Trajectories
from . import infer
from .config import NORMALIZATION, CoordinateConfig
from .field import new_field
from .train import train_field, window_loss
from .windows import WindowBatch, WindowSource, sample_batch

__all__ = ["CoordinateBackend"]


class CoordinateBackend:
    """Model-agnostic GFM forecaster backend (``GFMForecaster(variant="coordinate")``).

    Args:
        initialize: ``True`` (default) initialises the network from seed 0 (deterministic;
            the global RNG is not touched); ``False`` leaves it uninitialised, for weights
            loaded right after (:meth:`load_state_tensors`).
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

    def __init__(self, *, initialize: bool = True, **options: Any):
        self.config = CoordinateConfig(**options)
        self.net = new_field(self.config, 0 if initialize else None)

    @property
    def schedule_aware(self) -> bool:
        """Whether :meth:`forecast` reads ``lr_profile`` (``CoordinateConfig.schedule_aware``)."""
        return self.config.schedule_aware

    # -------------------------------------------------------------- config / state
    def config_dict(self) -> dict[str, Any]:
        """JSON-ready options (plus the normalization scheme name)."""
        return {**self.config.to_dict(), "normalization": NORMALIZATION}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, initialize: bool = True) -> "CoordinateBackend":
        """Build from :meth:`config_dict` output (``initialize=False`` when weights follow)."""
        config = dict(config)
        norm = config.pop("normalization", NORMALIZATION)
        if norm != NORMALIZATION:
            raise ValueError(f"saved coordinate forecaster uses normalization {norm!r}; this version knows "
                             f"{NORMALIZATION!r}")
        return cls(initialize=initialize, **CoordinateConfig.from_dict(config).to_dict())

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
        self.net.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # -------------------------------------------------------------------- training
    def sample_batch(self, sources: Sequence[WindowSource], gen: torch.Generator, batch_size: int) -> WindowBatch:
        """One mini-batch of windows; see :func:`.windows.sample_batch`."""
        return sample_batch(self.config, sources, gen, batch_size)

    def loss(self, batch: WindowBatch, gen: torch.Generator | None = None) -> GFMLoss:
        """The GFM objective on a window batch; see :func:`.train.window_loss`."""
        return window_loss(self.net, self.config, batch, gen)

    def fit(self, data: Sequence[Trajectories], **options: Any) -> list[float]:
        """Train a fresh network on every trajectory of ``data``.

        Args:
            data: trajectory sets (different D and layouts may be mixed).
            **options: ``epochs``, ``batch_size``, ``lr``, ``seed``, ``progress``, ``rank``,
                ``world_size`` of :func:`.train.train_field`.

        Returns:
            The mean training loss of each epoch.
        """
        self.net, history = train_field(self.config, data, **options)
        return history

    # ------------------------------------------------------------------- inference
    def forecast(
        self, prefix: Tensor, m: int, spec: ParamSpec | None = None, *, return_states: bool = False,
        lr_profile: Tensor | None = None,
    ) -> ODEResult:
        """Forecast ``w_m`` from ``w_0..w_n`` ``(B, n+1, D)`` or ``(n+1, D)``; see :func:`.infer.forecast`.

        ``lr_profile`` (``(m+1,)`` or ``(B, m+1)`` summed learning rate per snapshot interval)
        is read by ``schedule_aware`` forecasters only.

        Returns:
            An :class:`~gfm_accel.flow.solver.ODEResult` with ``final`` ``(B, D)``.
        """
        return infer.forecast(self.net, self.config, prefix, m, spec, return_states=return_states,
                              lr_profile=lr_profile)
