"""ODE inference for a learned field (Sec. 4.4): Euler, midpoint or RK4 with early stopping.

Starting from ``w_n`` at ``t_0 = n/m`` the state is advanced with fixed steps of size ``h``
towards ``t_1 = 1``. The last step is shortened so every sample lands exactly on ``t_1``.
Each sample stops on its own as soon as its increment is small,
``||h v|| < tau`` (the paper's criterion; ``tau = 1e-6`` by default, ``tau = 0`` disables it);
a stopped sample keeps its state (the paper's "converged parameter"). The increment of a
midpoint/RK4 step is the full step update. The norm is the Euclidean norm over D
(``norm="l2"``, the paper's); ``norm="rms"`` divides it by ``sqrt(D)``, which keeps one
``tau`` meaningful across model sizes.

``t_0`` may differ per sample (``(B,)``): every sample then steps with the same ``h`` from
its own start; samples that have arrived wait while the others finish.

Example:
    >>> r = integrate(lambda w, t: -w, torch.ones(1, 1), 0.0, num_steps=1000, tau=0.0)
    >>> round(r.final.item(), 3)      # exp(-1)
    0.368
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["METHODS", "ODEResult", "integrate"]

#: Accepted values of ``method=``.
METHODS: tuple[str, ...] = ("euler", "midpoint", "rk4")

Field = Callable[[Tensor, Tensor], Tensor]
_DONE_EPS = 1e-9


@dataclass
class ODEResult:
    """Outcome of :func:`integrate`.

    Attributes:
        final: ``(B, D)`` state at ``t_1`` (or where a sample stopped early).
        times: ``(S,)`` times of the stored states when ``t_0`` is a scalar, ``(S, B)`` when it
            is per-sample; ``None`` unless ``return_states``.
        states: ``(S, B, D)`` stored states (the first is ``w0``); ``None`` unless ``return_states``.
        steps: number of integration steps taken (by the slowest sample).
        stopped_early: True when at least one sample met the ``tau`` criterion before ``t_1``.
        stop_times: ``(B,)`` time at which each sample stopped (``t_1`` when it arrived).

    Example:
        >>> r = integrate(lambda w, t: torch.ones_like(w), torch.zeros(2, 3), 0.5, step=0.25,
        ...               return_states=True)
        >>> r.steps, r.times.tolist(), r.final[0].tolist()
        (2, [0.5, 0.75, 1.0], [0.5, 0.5, 0.5])
    """

    final: Tensor
    times: Tensor | None
    states: Tensor | None
    steps: int
    stopped_early: bool
    stop_times: Tensor | None = None


def _increment(field: Field, method: str, w: Tensor, t: Tensor, h: Tensor) -> Tensor:
    """Full step update ``Delta w`` of one step of size ``h`` ``(B,)`` from ``(w, t)``."""
    hc = h.unsqueeze(-1)
    if method == "euler":
        return hc * field(w, t)
    if method == "midpoint":
        k1 = field(w, t)
        return hc * field(w + 0.5 * hc * k1, t + 0.5 * h)
    k1 = field(w, t)
    k2 = field(w + 0.5 * hc * k1, t + 0.5 * h)
    k3 = field(w + 0.5 * hc * k2, t + 0.5 * h)
    k4 = field(w + hc * k3, t + h)
    return hc * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0


def integrate(
    field: Field,
    w0: Tensor,
    t0: Tensor | float,
    t1: float = 1.0,
    *,
    method: str = "euler",
    step: float | None = None,
    num_steps: int | None = None,
    tau: float = 1e-6,
    norm: str = "l2",
    return_states: bool = False,
) -> ODEResult:
    """Integrate ``dw/dt = field(w, t)`` from ``(w0, t0)`` to ``t1``.

    Args:
        field: ``field(w (B, D), t (B,)) -> (B, D)``; called under the caller's grad mode.
        w0: ``(B, D)`` start states.
        t0: start time, a float or ``(B,)`` tensor; each must be ``<= t1``.
        t1: end time.
        method: ``"euler"`` (the paper's), ``"midpoint"`` or ``"rk4"``.
        step: step size ``h``. Mutually exclusive with ``num_steps``.
        num_steps: number of equal steps over ``[t0, t1]`` (per sample, ``h = (t1 - t0) / num_steps``).
            When neither is given, ``num_steps = 100``.
        tau: early-stop tolerance on ``||h v||``; ``0`` disables early stopping.
        norm: ``"l2"`` (paper) or ``"rms"`` (l2 / sqrt(D)) for the tolerance test.
        return_states: also return every intermediate state (for Figure 2).

    Returns:
        An :class:`ODEResult`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown ODE method {method!r}; expected one of {METHODS}")
    if norm not in ("l2", "rms"):
        raise ValueError(f"unknown norm {norm!r}; expected 'l2' or 'rms'")
    if step is not None and num_steps is not None:
        raise ValueError("give either step or num_steps, not both")
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if w0.dim() != 2:
        raise ValueError(f"w0 must have shape (B, D), got {tuple(w0.shape)}")
    b, d = w0.shape
    per_sample = torch.is_tensor(t0) and t0.numel() > 1
    t = torch.as_tensor(t0, dtype=w0.dtype, device=w0.device).reshape(-1).expand(b).clone()
    span = t1 - t
    if bool((span < -_DONE_EPS).any()):
        raise ValueError(f"t0 must not exceed t1={t1} (got max t0={float(t.max())})")
    span = span.clamp(min=0.0)
    if step is not None:
        if not step > 0:
            raise ValueError(f"step must be positive, got {step}")
        h = torch.full_like(t, float(step))
    else:
        if num_steps is None:
            num_steps = 100
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        h = span / num_steps
    scale = 1.0 / math.sqrt(d) if norm == "rms" else 1.0
    # Times are computed as t0 + k h (not accumulated, so no round-off drift), and each
    # sample takes ceil(span / h) steps, the last one shortened to land on t1 exactly.
    t_start = t.double()
    h64 = h.double()
    n_steps = torch.where(span > _DONE_EPS, torch.ceil(span.double() / h64.clamp_min(1e-300) - 1e-6), torch.zeros_like(h64))
    n_steps = n_steps.clamp_min(0).long()

    w = w0.clone()
    active = n_steps > 0
    stop_times = torch.where(active, torch.full_like(t, float("nan")), t)
    stopped_early = False
    times_list = [t.clone()] if return_states else []
    states_list = [w.clone()] if return_states else []
    steps = 0
    while bool(active.any()):
        last = (steps + 1) >= n_steps
        t_next = torch.where(last, torch.full_like(t_start, t1), t_start + (steps + 1) * h64).to(t.dtype)
        h_eff = torch.where(active, t_next - t, torch.zeros_like(t))
        dw = _increment(field, method, w, t, h_eff)
        w = w + dw
        t = torch.where(active, t_next, t)
        steps += 1
        arrived = active & last
        if tau > 0:
            small = active & ~arrived & (dw.norm(dim=-1) * scale < tau)
            if bool(small.any()):
                stopped_early = True
            done = arrived | small
        else:
            done = arrived
        stop_times = torch.where(done, t, stop_times)
        active = active & ~done
        if return_states:
            times_list.append(t.clone())
            states_list.append(w.clone())
    times = states = None
    if return_states:
        times = torch.stack(times_list)
        times = times if per_sample else times[:, 0]
        states = torch.stack(states_list)
    return ODEResult(final=w, times=times, states=states, steps=steps, stopped_early=stopped_early,
                     stop_times=stop_times)
