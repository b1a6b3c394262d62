"""``gfm-accel demo``: train a small CNN twice, plainly and with GFMJump, and compare.

The README's first command. Offline and in well under 3 minutes on a laptop CPU it

1. loads sklearn's 8x8 digits (embedded in scikit-learn, no download) and cuts them into
   train / guard / val (:func:`gfm_accel.lab.datasets.load_split`; the guard split is what
   the jump guard evaluates; val is only reported);
2. trains (:func:`gfm_accel.lab.training.run_classifier`) a small CNN for ``--epochs`` epochs plainly, then again from the same
   initialization and batch order with :class:`~gfm_accel.jump.GFMJump` and the shipped
   forecaster (``--forecaster linear``, ``linefit`` or a file path to use another one);
3. prints a side-by-side table (epochs and seconds to reach the plain run's best val loss,
   final val loss and accuracy, jumps accepted) and writes ``loss_curves.png``,
   ``results.json`` and ``table.md`` into ``--out`` (default ``runs/demo``).

``--dataset cifar10 --data-dir DIR`` runs the same on real CIFAR-10 (torchvision's
``cifar-10-batches-py`` under DIR; nothing is downloaded) with a CIFAR-sized CNN.
``--epochs`` and ``--batch-size`` must be at least 1 (``--epochs 0`` is an error, not the default).

Example:
    >>> from gfm_accel.lab.demo import DemoConfig
    >>> DemoConfig(epochs=30).schedule
    'periodic:n=4,K=10,P=5'
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._config import JsonConfig
from .datasets import Split, add_data_arguments, load_split
from .forecasters import add_forecaster_argument, forecaster_sha256, make_forecaster
from .jumps import jump_config, parse_schedule
from .training import RunLog, epochs_to_reach, run_classifier

__all__ = ["DemoConfig", "make_cnn", "train", "run_demo", "add_arguments", "run", "DEMO_SCHEDULE"]

logger = logging.getLogger(__name__)

#: The jump schedule of the demo (picked by ``gfm-accel bench accel --probe``, docs/acceleration.md).
DEMO_SCHEDULE = "periodic:n=4,K=10,P=5"


@dataclass
class DemoConfig(JsonConfig):
    """What the demo trains.

    Attributes:
        dataset: ``"digits"`` (offline) or ``"cifar10"`` (needs ``data_dir``).
        data_dir: folder holding torchvision's ``cifar-10-batches-py``.
        epochs: budget of both runs.
        batch_size: mini-batch size.
        lr: Adam learning rate.
        seed: initialization and batch-order seed (the same for both runs).
        limit: keep at most this many training images (None = all).
        forecaster: ``"shipped"``, ``"linear"`` (the last two snapshots extended), ``"linefit"``
            (a least-squares line through the window, the strongest training-free competitor)
            or a forecaster file path.
        schedule: jump schedule, ``"periodic:n=4,K=10,P=5"`` or ``"far:n=4"``.

    Example:
        >>> DemoConfig.from_json(DemoConfig(epochs=5).to_json()).epochs
        5
    """

    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    limit: int | None = None
    forecaster: str = "shipped"
    schedule: str = DEMO_SCHEDULE

    def __post_init__(self) -> None:
        if self.dataset not in ("digits", "cifar10"):
            raise ValueError(f"dataset must be 'digits' or 'cifar10', got {self.dataset!r}")
        if self.dataset == "cifar10" and not self.data_dir:
            raise ValueError("--dataset cifar10 needs --data-dir DIR (the folder holding cifar-10-batches-py)")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be a positive integer, got {self.limit!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        parse_schedule(self.schedule)


# --------------------------------------------------------------------------- model and runs
def make_cnn(channels: int = 1, side: int = 8, classes: int = 10, width: int = 16) -> nn.Module:
    """A small CNN: two 3x3 conv blocks (the second pools), then a linear head; deeper for 32x32 inputs."""
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    out_side = side // 2
    if side >= 32:
        layers += [nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                   nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * width * (side // 8) ** 2, classes))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * width * out_side * out_side, classes))


def train(cfg: DemoConfig, split: Split, jump: Any = None) -> RunLog:
    """One run of the demo's CNN (with ``jump`` attached if given); same seed, same batches.

    Args:
        cfg: the demo's configuration (seed, epochs, batch size, learning rate).
        split: ``(N, C, H, W)`` images (:meth:`~gfm_accel.lab.datasets.Split.as_images`).
        jump: an unattached ``GFMJump``, or None for the plain run.

    Returns:
        The :class:`~gfm_accel.lab.training.RunLog`, ``method`` ``"plain"`` or ``"GFMJump"``.
    """
    torch.manual_seed(cfg.seed)
    model = make_cnn(split.shape[0], split.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return run_classifier(model, opt, split, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed, jump=jump,
                          task=f"demo_{cfg.dataset}", method="plain" if jump is None else "GFMJump")


def _make_jump(cfg: DemoConfig):
    from ..jump import GFMJump

    options = parse_schedule(cfg.schedule)
    if cfg.schedule == DEMO_SCHEDULE:
        # GFMJump skips periodic jumps whose target lies past the planned end, so a run shorter
        # than 15 epochs (the CIFAR-10 default of 10, or a smoke test) forecasts to its end instead.
        options["horizon"] = max(1, min(options["horizon"], cfg.epochs - options["every"]))
    # the shipped forecaster is loaded here, so that a missing file is reported before any training
    return GFMJump(make_forecaster(cfg.forecaster), config=jump_config(options))


def run_demo(cfg: DemoConfig, out: Path | None = None) -> dict[str, Any]:
    """Train both runs, print nothing; returns the numbers (and writes files into ``out``)."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    split = load_split(cfg.dataset, cfg.limit, cfg.data_dir).as_images()
    jump = _make_jump(cfg)  # loads the forecaster: a missing one fails before any training
    plain = train(cfg, split)
    jumped = train(cfg, split, jump)
    target = min(plain.val_loss[1:])
    rows = []
    for r in (plain, jumped):
        e = epochs_to_reach(r.val_loss, target)
        rows.append({
            "run": r.method,
            "epochs_to_target": e,
            "seconds_to_target": r.wall[e] if e is not None else None,
            "total_seconds": r.wall[-1],
            "final_val_loss": r.val_loss[-1],
            "final_val_acc": r.val_acc[-1],
            "best_val_loss": min(r.val_loss[1:]),
            "jumps_accepted": sum(1 for j in r.jumps if j.get("accepted")),
            "jumps_tried": len(r.jumps),
        })
    pe, je = rows[0]["epochs_to_target"], rows[1]["epochs_to_target"]
    result = {
        "config": cfg.to_dict(),
        "target_val_loss": target,
        "speedup": (pe / je) if (pe and je) else None,
        "rows": rows,
        "curves": {r.method: {"val_loss": r.val_loss, "val_acc": r.val_acc, "wall": r.wall} for r in (plain, jumped)},
        "jumps": jumped.jumps,
        "forecaster": _forecaster_desc(jump.forecaster),
        "forecaster_sha256": forecaster_sha256(cfg.forecaster),
    }
    if out is not None:
        _write(result, plain, jumped, out)
    return result


def _forecaster_desc(f: Any) -> str:
    meta = getattr(f, "metadata", None) or getattr(f, "provenance", None)
    return f"{type(f).__name__}" + (f" ({meta})" if isinstance(meta, str) else "")


def format_table(result: dict[str, Any]) -> str:
    """The side-by-side Markdown table of a :func:`run_demo` result."""
    cfg = result["config"]
    lines = [
        f"Target: the plain run's best val loss {result['target_val_loss']:.4f} "
        f"({cfg['dataset']}, {cfg['epochs']} epochs, seed {cfg['seed']}, schedule `{cfg['schedule']}`, "
        f"forecaster {cfg['forecaster']})",
        "",
        "| run | epochs to target | seconds to target | total seconds | final val loss | final val acc | jumps accepted |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        e = "not reached" if r["epochs_to_target"] is None else str(r["epochs_to_target"])
        s = "-" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f}"
        jumps = f"{r['jumps_accepted']}/{r['jumps_tried']}" if r["run"] != "plain" else "-"
        lines.append(f"| {r['run']} | {e} | {s} | {r['total_seconds']:.1f} | {r['final_val_loss']:.4f} | "
                     f"{100 * r['final_val_acc']:.1f}% | {jumps} |")
    sp = result["speedup"]
    lines.append("")
    lines.append(f"speedup (epochs to target, plain / GFMJump): {sp:.2f}x" if sp else
                 "speedup: n/a (GFMJump did not reach the target within the budget)")
    return "\n".join(lines)


def _write(result: dict[str, Any], plain: RunLog, jumped: RunLog, out: Path) -> None:
    from ..info import machine_line

    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["gfm-accel demo", _cli_args(result["config"]), f"--out {out}"]).replace("  ", " ")
    record = {**result, "machine": machine_line(), "command": command}
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "table.md").write_text(f"# gfm-accel demo\n\n- command: `{record['command']}`\n- machine: "
                                  f"{record['machine']}\n\n" + format_table(result) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'gfm_accel[plot]'): no loss_curves.png")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    # GFMJump solid underneath, plain dashed on top: where the runs coincide both stay visible.
    for r, color, style, z in ((jumped, "tab:orange", "-", 2), (plain, "tab:blue", "--", 3)):
        epochs = list(range(len(r.val_loss)))
        ax1.plot(epochs, r.val_loss, style, color=color, lw=2, label=r.method, zorder=z)
        ax2.plot(epochs, [100 * a for a in r.val_acc], style, color=color, lw=2, label=r.method, zorder=z)
    for j in jumped.jumps:
        if j.get("accepted"):
            for ax in (ax1, ax2):
                ax.axvline(j["epoch"], color="tab:orange", alpha=0.6, lw=1.2, ls=":")
    ax1.axhline(result["target_val_loss"], color="0.5", ls="--", lw=1, label="target (plain best)")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation loss (log)")
    ax1.set_title("validation loss (dotted: accepted jumps)")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.set_ylim(max(0, min(100 * min(plain.val_acc[1:] + jumped.val_acc[1:]) - 5, 100)), 100)
    ax2.set_title("validation accuracy")
    ax2.legend(loc="lower right")
    fig.suptitle(f"gfm-accel demo: {result['config']['dataset']}, plain vs GFMJump")
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=100)
    plt.close(fig)


def _cli_args(cfg: dict[str, Any]) -> str:
    default = DemoConfig().to_dict()
    parts = []
    for k, v in cfg.items():
        if v != default.get(k) and v is not None:
            parts.append(f"--{k.replace('_', '-')} {v}")
    return " ".join(parts)


# --------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DemoConfig()
    add_data_arguments(parser, ("digits", "cifar10"), default=d.dataset)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of each run, >= 1 (default 30 digits, 10 cifar10)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (digits), 256 (cifar10)")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--seed", type=int, default=d.seed)
    add_forecaster_argument(parser, d.forecaster)
    parser.add_argument("--schedule", default=d.schedule, help="jump schedule, e.g. 'periodic:n=4,K=10,P=5' or 'far:n=4'")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="where to write loss_curves.png, table.md, results.json")


def run(args: argparse.Namespace) -> int:
    cifar = args.dataset == "cifar10"
    # "is None", not "or": --epochs 0 must reach DemoConfig's check, not become the default
    cfg = DemoConfig(
        dataset=args.dataset, data_dir=args.data_dir,
        epochs=args.epochs if args.epochs is not None else (10 if cifar else DemoConfig.epochs),
        batch_size=args.batch_size if args.batch_size is not None else (256 if cifar else DemoConfig.batch_size),
        lr=args.lr, seed=args.seed, limit=args.limit, forecaster=args.forecaster, schedule=args.schedule,
    )
    t0 = time.perf_counter()
    result = run_demo(cfg, args.out)
    print(format_table(result))
    print(f"\nwrote {args.out / 'loss_curves.png'}, {args.out / 'table.md'} and {args.out / 'results.json'} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0
