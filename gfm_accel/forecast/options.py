"""The options every GFM field shares, declared and validated once.

:class:`FieldOptions` holds what the dense and the coordinate fields (and the
:class:`~gfm_accel.forecast.forecaster.GFMConfig` facade) have in common: the window
``(n, m)``, the conditioning, the training path and loss weights, the width of the field
and the ODE solver. Each variant's config subclasses it, changes defaults where its own
differ and adds its own options; the JSON round-trip comes from
:class:`gfm_accel._config.JsonConfig`.

Example:
    >>> FieldOptions(n=0, m=10).zeta
    100.0
    >>> FieldOptions.from_json(FieldOptions(hidden=8).to_json()).hidden
    8
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .._config import JsonConfig
from ..flow.path import PATHS
from ..flow.solver import METHODS

__all__ = ["CONDITIONS", "FieldOptions", "field_option_names"]

#: ``"prefix"``: the field also sees ``w_0..w_n`` (Eq. 2); ``"none"``: ``v(w, t)`` (Algorithm 1).
CONDITIONS: tuple[str, ...] = ("none", "prefix")


@dataclass
class FieldOptions(JsonConfig):
    """Options common to every GFM field (defaults: the dense field's; ``condition="prefix"``).

    Attributes:
        n: index of the last observed snapshot (prefix ``w_0..w_n``); ``n = 0`` is allowed.
        m: index of the target snapshot; ``None`` = ``T - 1`` of the training data.
        condition: ``"prefix"`` (Eq. 2: the field also sees the observed prefix) or ``"none"``
            (Algorithm 1 literally: ``v(w, t)``, the ablation).
        path: ``"paper"`` (Algorithm 1 literally) or ``"from_last"`` (consistent path from
            ``w_n``); see :mod:`gfm_accel.flow.path`.
        beta, gamma, zeta: loss weights (Table 1 defaults 1, 1, 100).
        hidden: hidden width of the field (Table 5: 64).
        solver: ``"euler"`` (Sec. 4.4), ``"midpoint"`` or ``"rk4"``.
        step: ODE step ``h`` in (0, 1]; ``None`` = the variant's default.
        tau: early-stop tolerance on ``||h v||`` (Sec. 4.4: 1e-6).
    """

    n: int = 4
    m: int | None = 199
    condition: str = "prefix"
    path: str = "paper"
    beta: float = 1.0
    gamma: float = 1.0
    zeta: float = 100.0
    hidden: int = 64
    solver: str = "euler"
    step: float | None = None
    tau: float = 1e-6

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 0:
            raise ValueError(f"n must be an integer >= 0, got {self.n!r}")
        if self.m is not None and (not isinstance(self.m, int) or self.m <= self.n):
            raise ValueError(f"m must be an integer larger than n={self.n}, got {self.m!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; expected one of {CONDITIONS}")
        if self.path not in PATHS:
            raise ValueError(f"unknown path {self.path!r}; expected one of {PATHS}")
        for name in ("beta", "gamma", "zeta", "tau"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            setattr(self, name, float(value))
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {self.hidden!r}")
        if self.solver not in METHODS:
            raise ValueError(f"unknown solver {self.solver!r}; expected one of {METHODS}")
        if self.step is not None and not (isinstance(self.step, (int, float)) and 0 < self.step <= 1):
            raise ValueError(f"step must be in (0, 1], got {self.step!r}")


def field_option_names() -> tuple[str, ...]:
    """Names of the :class:`FieldOptions` fields, in declaration order."""
    return tuple(f.name for f in fields(FieldOptions))
