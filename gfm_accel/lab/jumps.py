"""Jump schedules of the lab: the text form the benchmarks take, and the JumpConfig it stands for.

Every lab run that jumps builds its :class:`~gfm_accel.jump.JumpConfig` through
:func:`jump_config`, which writes every schedule value out (:data:`LAB_SCHEDULE`), so the
lab's numbers do not move when the runtime's recommended defaults do.

Schedule text: ``"periodic:n=4,K=10,P=5"``, ``"far:n=4"`` or ``"far:n=4,m=30"``; keys ``n``,
``K`` (horizon), ``P`` (every), ``m`` (far target), ``alpha``, ``tol`` (guard tolerance),
``opt`` (``keep``/``reset``) and ``steps=k`` (snapshots every ``k`` optimizer steps,
``unit="step"``; ``n``, ``K`` and ``P`` then count snapshots of ``k`` steps).

Example:
    >>> parse_schedule("periodic:n=4,K=10,P=5")
    {'mode': 'periodic', 'n': 4, 'horizon': 10, 'every': 5}
    >>> cfg = jump_config("periodic:n=4,K=10,P=5")
    >>> cfg.tolerance, cfg.alphas, cfg.optimizer_state
    (0.01, (1.0, 0.5, 0.25), 'reset')
    >>> cfg.horizon, cfg.every, jump_config("periodic:n=3").horizon
    (10, 5, 3)
"""

from __future__ import annotations

from typing import Any

from ..jump import JumpConfig

__all__ = ["LAB_SCHEDULE", "parse_schedule", "jump_config"]

#: The schedule values every lab run starts from (the runtime defaults when the benchmarks'
#: results were made); a schedule text or keyword overrides them.
LAB_SCHEDULE: dict[str, Any] = {
    "mode": "periodic",
    "n": 4,
    "horizon": None,
    "every": None,
    "unit": "epoch",
    "every_n_steps": None,
    "alpha": 1.0,
    "alphas": (1.0, 0.5, 0.25),
    "guard": None,
    "tolerance": 0.01,
    "optimizer_state": "reset",
    "refresh_bn_batches": 0,
    "max_jumps": None,
    "max_rejections": None,
    "jump_past_end": False,
    "include_frozen": False,
    "snapshot_dtype": "float32",
}

_KEYS = {"n": "n", "K": "horizon", "P": "every", "m": "horizon", "alpha": "alpha", "tol": "tolerance",
         "opt": "optimizer_state", "steps": "every_n_steps"}


def parse_schedule(text: str) -> dict[str, Any]:
    """Parse a schedule text (see the module docstring) into JumpConfig options.

    Returns:
        Only the options the text names (``mode`` always).

    Raises:
        ValueError: an unknown mode or key, or a malformed value.
    """
    mode, _, rest = text.partition(":")
    if mode not in ("far", "periodic"):
        raise ValueError(f"schedule {text!r}: mode must be 'far' or 'periodic'")
    out: dict[str, Any] = {"mode": mode}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in _KEYS:
            raise ValueError(f"schedule {text!r}: expected KEY=VALUE with KEY in {sorted(_KEYS)}, got {item!r}")
        try:
            if key == "opt":
                if value not in ("keep", "reset"):
                    raise ValueError(f"opt must be 'keep' or 'reset', got {value!r}")
                out[_KEYS[key]] = value
            elif key == "steps":
                out["unit"], out["every_n_steps"] = "step", int(value)
            else:
                out[_KEYS[key]] = float(value) if key in ("alpha", "tol") else int(value)
        except ValueError as exc:
            raise ValueError(f"schedule {text!r}: {key} must be a number, got {value!r}") from exc
    return out


def jump_config(schedule: str | dict[str, Any] | None = None, **options: Any) -> JumpConfig:
    """The JumpConfig of a lab run, with every schedule value explicit.

    Args:
        schedule: a schedule text or a :func:`parse_schedule` dict (None: :data:`LAB_SCHEDULE` only).
        **options: further JumpConfig fields, applied last.

    Returns:
        ``JumpConfig(**{**LAB_SCHEDULE, **schedule, **options})``; in periodic mode an unset
        ``K`` or ``P`` is ``n``, as it was when the lab's results were made (the runtime's
        ``None`` now means its recommended K = 10, P = 5).
    """
    parsed = parse_schedule(schedule) if isinstance(schedule, str) else dict(schedule or {})
    merged = {**LAB_SCHEDULE, **parsed, **options}
    if merged["mode"] == "periodic":
        for key in ("horizon", "every"):
            if merged[key] is None:
                merged[key] = merged["n"]
    return JumpConfig(**merged)

