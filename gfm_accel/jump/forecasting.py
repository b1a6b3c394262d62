"""The forecast step of a jump: rank 0 asks the forecaster, checks its answer, and shares it.

Under ``torch.distributed`` only rank 0 calls the forecaster; it broadcasts an
:class:`~gfm_accel.jump.outcome.Outcome` and, when usable, the ``(D,)`` float32 forecast,
so every rank writes the same bits. A forecaster that raises, returns the wrong size or
NaN/Inf causes no jump: a warning and an outcome that says why. With ``lr_profile=True``
the forecaster is called as ``forecast(prefix, m, spec=spec, lr_profile=profile)``, else
exactly as before, ``forecast(prefix, m, spec=spec)``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

from . import dist
from .outcome import Outcome
from .rng import keep_global_rng

__all__ = ["forecast_step"]

logger = logging.getLogger("gfm_accel.jump.core")


def forecast_step(
    forecaster: Any,
    prefix: Callable[[], torch.Tensor],
    m: int,
    spec: Any,
    device: torch.device,
    lr_profile: Callable[[], torch.Tensor | None] | None = None,
) -> tuple[Outcome, torch.Tensor | None]:
    """Forecast ``w_m`` from the window and validate it.

    Args:
        forecaster: has ``forecast(prefix, m, *, spec=None)`` (and ``lr_profile=None`` when
            ``lr_profile`` is given).
        prefix: returns the window ``w_0 .. w_n``, ``(n+1, D)`` float32 CPU (called on rank 0 only).
        m: the target index.
        spec: the model's :class:`~gfm_accel.params.ParamSpec` (``spec.numel`` = D).
        device: the device collectives use.
        lr_profile: returns the ``(m+1,)`` summed learning rate per snapshot interval for a
            schedule-aware forecaster, or None (a constant schedule); called on rank 0 only.
            None (the default): the forecaster is called without the argument.

    Returns:
        ``(outcome, forecast)`` on every rank: ``Outcome.OK`` with a ``(D,)`` float32 CPU
        tensor, or a skip outcome with None.
    """
    D = spec.numel
    outcome, out = Outcome.OK, None
    if dist.is_main_process():
        outcome, out = _ask(forecaster, prefix(), m, spec, D, lr_profile)
    if dist.is_distributed():
        flag = torch.tensor([int(outcome)], dtype=torch.int64)
        dist.broadcast_(flag, device)
        outcome = Outcome(int(flag.item()))
        if outcome is Outcome.OK:
            if out is None:
                out = torch.empty(D, dtype=torch.float32)
            dist.broadcast_(out, device)
    return outcome, out


def _ask(
    forecaster: Any, prefix: torch.Tensor, m: int, spec: Any, D: int,
    lr_profile: Callable[[], torch.Tensor | None] | None = None,
) -> tuple[Outcome, torch.Tensor | None]:
    try:
        with torch.no_grad(), keep_global_rng():
            profile = lr_profile() if lr_profile is not None else None
            if profile is None:
                raw = forecaster.forecast(prefix, m, spec=spec)
            else:
                raw = forecaster.forecast(prefix, m, spec=spec, lr_profile=profile)
    except Exception as exc:  # a forecaster bug must not kill a training run
        logger.warning("GFMJump: the forecaster raised %s: %s; no jump", type(exc).__name__, exc)
        return Outcome.FAILED, None
    if torch.is_tensor(raw) and raw.dim() == 2 and raw.shape[0] == 1:
        raw = raw[0]
    if not torch.is_tensor(raw) or tuple(raw.shape) != (D,):
        shape = tuple(raw.shape) if torch.is_tensor(raw) else type(raw).__name__
        logger.warning("GFMJump: forecast has shape %s, expected (%d,); no jump", shape, D)
        return Outcome.WRONG_SIZE, None
    if not raw.is_floating_point() or not bool(torch.isfinite(raw).all()):
        logger.warning("GFMJump: forecast holds NaN/Inf; no jump")
        return Outcome.NONFINITE, None
    # A copy: the jump turns the forecast into its step in place, and a forecaster may keep the
    # tensor it returned (``to`` would hand back the same tensor for a CPU float32 one).
    return Outcome.OK, raw.detach().to("cpu", torch.float32, copy=True)
