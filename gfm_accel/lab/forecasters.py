"""The lab's forecasters by name: what a benchmark, the demo or an example jumps with.

========================  ==================================================================
name                      forecaster
========================  ==================================================================
``gfm`` (or ``shipped``)  the shipped coordinate GFM forecaster
                          (:func:`gfm_accel.pretrained_forecaster`), or the file given as
                          ``forecaster_path``
a file path               a :class:`~gfm_accel.forecast.forecaster.GFMForecaster` file
``linear``                linear extrapolation of the last two snapshots
``linefit``               a least-squares line through the whole window, extended to ``m``
``ridge_coord``           the least-squares reference (per-coordinate ridge), fitted here
``wnn``                   the WNN-style per-coordinate baseline, fitted here
========================  ==================================================================

``ridge_coord`` and ``wnn`` are fitted for one ``(n, m)`` on every window of ``m + 1``
consecutive snapshots of *source* trajectories (:func:`windows`).

Example:
    >>> type(make_forecaster("linefit")).__name__
    'LineFitForecaster'
    >>> forecaster_sha256("linear") is None
    True
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["FORECASTERS", "make_forecaster", "forecaster_sha256", "windows", "add_forecaster_argument"]

logger = logging.getLogger(__name__)

#: The registry's names (besides a file path, and ``shipped`` for ``gfm`` with the shipped file).
FORECASTERS: tuple[str, ...] = ("gfm", "linear", "linefit", "ridge_coord", "wnn")
_TRAINING_FREE = ("linear", "linefit")
_FITTED = ("ridge_coord", "wnn")


def windows(weights: torch.Tensor, length: int, stride: int = 1) -> torch.Tensor:
    """All windows of ``length`` consecutive snapshots, re-indexed from 0.

    Args:
        weights: ``(N, T, D)``.
        length: ``m + 1`` (prefix ``w_0..w_n`` plus the target ``w_m``).
        stride: epochs between window starts.

    Returns:
        ``(N * S, length, D)`` with ``S = (T - length) // stride + 1`` starts per trajectory.

    Raises:
        ValueError: ``weights`` is not ``(N, T, D)`` with ``T >= length``.
    """
    if weights.dim() != 3 or not 1 <= length <= weights.shape[1]:
        raise ValueError(f"need (N, T, D) weights with T >= length={length}, got {tuple(weights.shape)}")
    starts = range(0, weights.shape[1] - length + 1, stride)
    return torch.cat([weights[:, s : s + length] for s in starts])


def make_forecaster(name: str, *, n: int = 4, m: int | None = None, source: tuple[torch.Tensor, Any] | None = None,
                    forecaster_path: str | None = None, wnn_epochs: int | None = None) -> Any:
    """Build the forecaster called ``name``.

    Args:
        name: one of :data:`FORECASTERS`, ``"shipped"`` or a forecaster file path.
        n, m: the schedule's prefix index and target index (the fitted baselines are fitted for them).
        source: ``(weights (N, T, D), spec)`` source trajectories for the fitted baselines.
        forecaster_path: ``gfm`` from this file instead of the shipped one.
        wnn_epochs: training epochs of the wnn baseline (200 when None).

    Returns:
        An object with ``forecast(prefix, m, *, spec=None)``.

    Raises:
        ValueError: the forecaster cannot be built (no shipped forecaster, no source, an
            unknown name); benchmarks report it as "not run" with this message.
    """
    if name == "linear":
        from ..forecast.simple import LinearExtrapolationForecaster

        return LinearExtrapolationForecaster()
    if name == "linefit":
        from ..forecast.simple import LineFitForecaster

        return LineFitForecaster()
    if name in ("gfm", "shipped"):
        if forecaster_path:
            return _load(forecaster_path)
        try:
            from ..pretrained import pretrained_forecaster

            return pretrained_forecaster()
        except (ImportError, FileNotFoundError, OSError) as exc:
            raise ValueError(f"the shipped forecaster is not available ({exc})") from exc
    if name in _FITTED:
        return _fit_baseline(name, n, m, source, wnn_epochs)
    if Path(name).suffix == ".safetensors" or Path(name).exists():
        return _load(name)
    raise ValueError(f"unknown forecaster {name!r}; choose from {FORECASTERS}, 'shipped' or a forecaster file")


def _load(path: str) -> Any:
    from ..forecast.forecaster import GFMForecaster

    return GFMForecaster.load(path)


def _fit_baseline(name: str, n: int, m: int | None, source: tuple[torch.Tensor, Any] | None,
                  wnn_epochs: int | None) -> Any:
    try:
        from .baselines import make_baseline
    except ImportError as exc:
        raise ValueError(f"gfm_accel.lab.baselines.make_baseline is not available ({exc})") from exc
    if source is None or m is None:
        raise ValueError(f"{name} needs source trajectories and the target m to be fitted on")
    weights, spec = source
    if weights.shape[1] < m + 1:
        raise ValueError(f"source trajectories hold T={weights.shape[1]} snapshots, need m+1={m + 1}")
    # windows start every epoch (every 2nd for long sources, to bound memory)
    data = windows(weights, m + 1, stride=1 if weights.shape[0] * weights.shape[-1] < 200_000 else 2)
    # wnn: Adam at 1e-3 for 200 epochs over the windows (its paper-protocol default, 1000
    # epochs at 1e-4, costs minutes per (n, m) here and fits the same windows no better).
    kwargs = {"epochs": wnn_epochs or 200, "lr": 1e-3} if name == "wnn" else {}
    t0 = time.perf_counter()
    model = make_baseline(name).fit(data, n, m, spec=spec, **kwargs)
    logger.info("fitted %s for n=%d, m=%d on %s windows (%.1f s)", name, n, m, tuple(data.shape), time.perf_counter() - t0)
    return model


def forecaster_sha256(name: str | None) -> str | None:
    """SHA-256 of the forecaster file ``name`` stands for, so a result names its forecaster.

    Args:
        name: ``"gfm"``/``"shipped"``/None (the shipped file) or a file path.

    Returns:
        The hex digest; None for the training-free and fitted names, or an unreadable file.
    """
    if name in _TRAINING_FREE or name in _FITTED:
        return None
    if name in (None, "gfm", "shipped"):
        from ..pretrained import PRETRAINED_PATH

        name = str(PRETRAINED_PATH)
    try:
        return hashlib.sha256(Path(name).read_bytes()).hexdigest()
    except OSError:
        return None


def add_forecaster_argument(parser: argparse.ArgumentParser, default: str = "shipped") -> None:
    """Add ``--forecaster NAME`` (for :func:`make_forecaster`) to a command line: the demo's and the examples'."""
    parser.add_argument("--forecaster", default=default,
                        help="'shipped' (the forecaster inside the package), 'linear', 'linefit' or a forecaster file "
                             f"(default {default!r})")
