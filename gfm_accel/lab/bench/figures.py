"""The paper's figures as PNG files (matplotlib, imported lazily, Agg backend).

* :func:`figure2` - GFM forecast trajectories in the (slope, intercept) plane, one row per
  optimizer, one column per time point from ``t_n`` to 1 (paper Figure 2).
* :func:`figure3` - the true task-loss curves of the test MLPs (blue) and the loss of the
  forecast weights at the target epoch (red stars), one panel per optimizer (Figure 3).
* :func:`figure4` - the linreg training trajectories: slope and intercept against the step,
  one column per optimizer (Figure 4).

matplotlib is imported inside each function so that ``import gfm_accel.lab.bench.figures``
costs nothing and the library runs without it; a missing matplotlib raises an ImportError
naming the extra to install.

Example:
    >>> import torch, tempfile, pathlib
    >>> w = torch.randn(3, 10, 2).cumsum(1)
    >>> p = figure4({"sgd": w}, pathlib.Path(tempfile.mkdtemp()) / "f4.png")
    >>> p.suffix
    '.png'
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

__all__ = ["figure2", "figure3", "figure4"]


def _plt():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the bench extra
        raise ImportError("figures need matplotlib: pip install 'gfm_accel[bench]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, title: str = "") -> Path:
    """Give ``fig`` its title, write it to ``path`` as a PNG (folders created) and close it; returns ``path``."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def figure2(
    forecasts: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    path: Path,
    *,
    columns: int = 8,
    optimum: tuple[float, float] | None = (2.0, 1.0),
) -> Path:
    """GFM forecast trajectories (paper Figure 2).

    Args:
        forecasts: optimizer -> ``(times (S,), states (S, B, 2), true_final (B, 2))``: the
            ODE states of B test trajectories from ``t_n`` to 1, and their true ``w_m``.
        path: PNG file to write.
        columns: time points shown, evenly spaced over the integrated interval.
        optimum: the task distribution's mean optimum, drawn as a black cross.

    Returns:
        ``path``.
    """
    plt = _plt()
    rows = list(forecasts)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.9 * columns, 1.9 * len(rows)), squeeze=False,
                             sharex=True, sharey=True)
    for r, opt in enumerate(rows):
        times, states, true = forecasts[opt]
        idx = torch.linspace(0, states.shape[0] - 1, columns).round().long()
        for c, k in enumerate(idx.tolist()):
            ax = axes[r][c]
            ax.scatter(true[:, 0], true[:, 1], s=10, marker="x", color="0.6", linewidths=0.8, label="true $w_m$")
            ax.scatter(states[k, :, 0], states[k, :, 1], s=9, color="tab:blue", label="GFM state")
            if optimum is not None:
                ax.plot(*optimum, marker="+", color="black", markersize=8)
            if r == 0:
                ax.set_title(f"t = {float(times[k]):.2f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{opt}\nintercept", fontsize=9)
            if r == len(rows) - 1:
                ax.set_xlabel("slope", fontsize=9)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6, loc="lower right")
    return _save(fig, path, "GFM forecast trajectories of 20 test runs from $t_n$ (n = 4) to t = 1 (cf. paper Figure 2)")


def figure3(
    panels: Mapping[str, tuple[torch.Tensor, torch.Tensor, int]],
    path: Path,
    *,
    title: str = "",
) -> Path:
    """Task-loss curves vs forecast loss (paper Figure 3).

    Args:
        panels: optimizer -> ``(true_loss (B, T), forecast_loss (B,), m)``.
        path: PNG file to write.
        title: figure title.

    Returns:
        ``path``.
    """
    names = list(panels)
    fig, axes = _plt().subplots(1, len(names), figsize=(3.3 * len(names), 3.0), squeeze=False)
    for ax, opt in zip(axes[0], names):
        loss, pred, m = panels[opt]
        epochs = torch.arange(loss.shape[1])
        for b in range(loss.shape[0]):
            ax.plot(epochs, loss[b], color="tab:blue", alpha=0.35, linewidth=0.8)
        ax.scatter(torch.full((pred.shape[0],), float(m)), pred, marker="*", color="tab:red", s=40, zorder=3,
                   label="GFM forecast")
        ax.set_yscale("log")
        ax.set_title(opt, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("task MSE (log)", fontsize=9)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path, title)


def figure4(weights: Mapping[str, torch.Tensor], path: Path, *, names: Sequence[str] = ("slope", "intercept")) -> Path:
    """Linreg training trajectories (paper Figure 4).

    Args:
        weights: optimizer -> ``(N, T, 2)`` trajectories.
        path: PNG file to write.
        names: coordinate names.

    Returns:
        ``path``.
    """
    opts = list(weights)
    fig, axes = _plt().subplots(2, len(opts), figsize=(2.9 * len(opts), 4.6), squeeze=False, sharex=True)
    for c, opt in enumerate(opts):
        w = weights[opt]
        steps = torch.arange(w.shape[1])
        for d in range(2):
            ax = axes[d][c]
            for i in range(w.shape[0]):
                ax.plot(steps, w[i, :, d], linewidth=0.6, alpha=0.5)
            if d == 0:
                ax.set_title(opt, fontsize=10)
            if c == 0:
                ax.set_ylabel(names[d], fontsize=9)
            if d == 1:
                ax.set_xlabel("step", fontsize=9)
            ax.tick_params(labelsize=7)
    return _save(fig, path, f"{w.shape[0]} linear-regression trajectories per optimizer (cf. paper Figure 4)")
