"""``gfm-accel demo``: train a small CNN twice, plainly and with GFMJump, and compare.

The README's first command. Offline and in well under 3 minutes on a laptop CPU it

1. loads sklearn's 8x8 digits (embedded in scikit-learn, no download) and cuts them into
   train / guard / val (the guard split is what the jump guard evaluates; val is only
   reported);
2. trains a small CNN for ``--epochs`` epochs plainly, then again from the same
   initialization and batch order with :class:`~gfm_accel.jump.GFMJump` and the shipped
   forecaster (``--forecaster linear``, ``linefit`` or a file path to use another one);
3. prints a side-by-side table (epochs and seconds to reach the plain run's best val loss,
   final val loss and accuracy, jumps accepted) and writes ``loss_curves.png``,
   ``results.json`` and ``table.md`` into ``--out`` (default ``runs/demo``).

``--dataset cifar10 --data-dir DIR`` runs the same on real CIFAR-10 (torchvision's
``cifar-10-batches-py`` under DIR; nothing is downloaded) with a CIFAR-sized CNN.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .training import evaluate_classifier

__all__ = ["DemoConfig", "DemoRun", "load_images", "make_cnn", "train", "run_demo", "add_arguments", "run", "DEMO_SCHEDULE"]

logger = logging.getLogger(__name__)

#: The jump schedule of the demo (picked by ``gfm-accel bench accel --probe``, docs/acceleration.md).
DEMO_SCHEDULE = "periodic:n=4,K=10,P=5"


@dataclass
class DemoConfig:
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
        from .bench.accel import parse_schedule

        parse_schedule(self.schedule)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> "DemoConfig":
        return cls(**json.loads(s))


# --------------------------------------------------------------------------- data and model
def load_images(dataset: str, data_dir: str | None = None, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Images as ``(N, C, H, W)`` float tensors, cut into train / guard / val.

    Args:
        dataset: ``"digits"`` (1797 8x8 images; 1197 train, 200 guard, 400 val; fixed
            permutation) or ``"cifar10"`` (its 50k train images minus 2000 for the
            guard; val = the 10k test images).
        data_dir: folder holding ``cifar-10-batches-py`` (cifar10 only).
        limit: keep at most this many training images.

    Returns:
        ``{"x_train", "y_train", "x_guard", "y_guard", "x_val", "y_val"}``, inputs
        standardized per channel with training statistics.

    Raises:
        FileNotFoundError: CIFAR-10 is not under ``data_dir`` (with how to get it).
    """
    g = torch.Generator().manual_seed(0)
    if dataset == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.as_tensor(d.data, dtype=torch.float32).view(-1, 1, 8, 8)
        y = torch.as_tensor(d.target, dtype=torch.long)
        perm = torch.randperm(len(x), generator=g)
        x, y = x[perm], y[perm]
        parts = {"x_val": x[:400], "y_val": y[:400], "x_guard": x[400:600], "y_guard": y[400:600],
                 "x_train": x[600:], "y_train": y[600:]}
    elif dataset == "cifar10":
        root = Path(data_dir or ".")
        if not (root / "cifar-10-batches-py").is_dir():
            raise FileNotFoundError(
                f"CIFAR-10 not found under {root} (expected {root / 'cifar-10-batches-py'}). Download it once with "
                f"`python -c \"import torchvision; torchvision.datasets.CIFAR10('{root}', download=True)\"`, "
                "or run offline with --dataset digits"
            )
        from torchvision.datasets import CIFAR10

        def arrays(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
            ds = CIFAR10(str(root), train=train, download=False)
            xs = torch.as_tensor(ds.data).permute(0, 3, 1, 2).float() / 255.0
            return xs, torch.as_tensor(ds.targets, dtype=torch.long)

        x, y = arrays(True)
        x_val, y_val = arrays(False)
        perm = torch.randperm(len(x), generator=g)
        x, y = x[perm], y[perm]
        parts = {"x_val": x_val, "y_val": y_val, "x_guard": x[:2000], "y_guard": y[:2000],
                 "x_train": x[2000:], "y_train": y[2000:]}
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose 'digits' or 'cifar10'")
    if limit is not None:
        parts["x_train"], parts["y_train"] = parts["x_train"][:limit], parts["y_train"][:limit]
    mean = parts["x_train"].mean(dim=(0, 2, 3), keepdim=True)
    std = parts["x_train"].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    for k in ("x_train", "x_guard", "x_val"):
        parts[k] = (parts[k] - mean) / std
    return parts


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


@dataclass
class DemoRun:
    """Per-epoch numbers of one run (index 0 = initialization).

    Attributes:
        name: ``"plain"`` or ``"GFMJump"``.
        val_loss, val_acc: ``(epochs + 1,)``.
        wall: cumulative training seconds, jump overhead included.
        jumps: JumpRecord dicts (GFMJump run).
    """

    name: str
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    jumps: list[dict[str, Any]] = field(default_factory=list)


def train(cfg: DemoConfig, data: dict[str, torch.Tensor], jump: Any = None) -> DemoRun:
    """One run of the demo's CNN (with ``jump`` attached if given); same seed, same batches."""
    torch.manual_seed(cfg.seed)
    x_train, y_train = data["x_train"], data["y_train"]
    model = make_cnn(x_train.shape[1], x_train.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    run = DemoRun("plain" if jump is None else "GFMJump")
    t_attach = 0.0
    if jump is not None:
        t0 = time.perf_counter()
        guard_x, guard_y = data["x_guard"], data["y_guard"]
        total = jump.config.planned_total(cfg.epochs, math.ceil(len(x_train) / cfg.batch_size))
        jump.attach(model, opt, eval_fn=lambda m: evaluate_classifier(m, guard_x, guard_y)[0], total=total)
        t_attach = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(1000 + cfg.seed)
    elapsed = t_attach
    for epoch in range(cfg.epochs + 1):
        if epoch > 0:
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(x_train), generator=gen)
            for i in range(0, len(x_train), cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if jump is not None:
                    jump.on_step_end()  # records and jumps only with unit="step"
            if jump is not None:
                jump.on_epoch_end(epoch - 1)
            elapsed += time.perf_counter() - t0
        vl, va = evaluate_classifier(model, data["x_val"], data["y_val"])
        run.val_loss.append(vl)
        run.val_acc.append(va)
        run.wall.append(elapsed)
    if jump is not None:
        run.jumps = [r.to_dict() for r in jump.history]
    return run


def _make_jump(cfg: DemoConfig):
    from .bench.accel import parse_schedule
    from ..jump import GFMJump, JumpConfig

    options = parse_schedule(cfg.schedule)
    if cfg.schedule == DEMO_SCHEDULE:
        # GFMJump skips periodic jumps whose target lies past the planned end, so a run shorter
        # than 15 epochs (the CIFAR-10 default of 10, or a smoke test) forecasts to its end instead.
        options["horizon"] = max(1, min(options["horizon"], cfg.epochs - options["every"]))
    config = JumpConfig(**options)
    if cfg.forecaster == "shipped":
        from ..pretrained import pretrained_forecaster

        # the same forecaster GFMJump() picks when given none; loaded here so that a
        # missing file is reported before any training
        return GFMJump(pretrained_forecaster(), config=config)
    if cfg.forecaster == "linear":
        from ..forecast.simple import LinearExtrapolationForecaster

        return GFMJump(LinearExtrapolationForecaster(), config=config)
    if cfg.forecaster == "linefit":
        from ..forecast.simple import LineFitForecaster

        return GFMJump(LineFitForecaster(), config=config)
    from ..forecast.forecaster import GFMForecaster

    return GFMJump(GFMForecaster.load(cfg.forecaster), config=config)


def run_demo(cfg: DemoConfig, out: Path | None = None) -> dict[str, Any]:
    """Train both runs, print nothing; returns the numbers (and writes files into ``out``)."""
    from .bench.accel import epochs_to_reach

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    data = load_images(cfg.dataset, cfg.data_dir, cfg.limit)
    jump = _make_jump(cfg)  # loads the forecaster: a missing one fails before any training
    plain = train(cfg, data)
    jumped = train(cfg, data, jump)
    target = min(plain.val_loss[1:])
    rows = []
    for r in (plain, jumped):
        e = epochs_to_reach(r.val_loss, target)
        rows.append({
            "run": r.name,
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
        "config": asdict(cfg),
        "target_val_loss": target,
        "speedup": (pe / je) if (pe and je) else None,
        "rows": rows,
        "curves": {r.name: {"val_loss": r.val_loss, "val_acc": r.val_acc, "wall": r.wall} for r in (plain, jumped)},
        "jumps": jumped.jumps,
        "forecaster": _forecaster_desc(jump.forecaster),
        "forecaster_sha256": _sha256(cfg.forecaster),
    }
    if out is not None:
        _write(result, plain, jumped, out)
    return result


def _sha256(forecaster: str) -> str | None:
    """Hash of the forecaster file used (None for ``linear``/``linefit``), so a result names its forecaster."""
    import hashlib

    if forecaster in ("linear", "linefit"):
        return None
    if forecaster == "shipped":
        from ..pretrained import PRETRAINED_PATH

        forecaster = str(PRETRAINED_PATH)
    try:
        return hashlib.sha256(Path(forecaster).read_bytes()).hexdigest()
    except OSError:
        return None


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


def _write(result: dict[str, Any], plain: DemoRun, jumped: DemoRun, out: Path) -> None:
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
        ax1.plot(epochs, r.val_loss, style, color=color, lw=2, label=r.name, zorder=z)
        ax2.plot(epochs, [100 * a for a in r.val_acc], style, color=color, lw=2, label=r.name, zorder=z)
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
    default = asdict(DemoConfig())
    parts = []
    for k, v in cfg.items():
        if v != default.get(k) and v is not None:
            parts.append(f"--{k.replace('_', '-')} {v}")
    return " ".join(parts)


# --------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DemoConfig()
    parser.add_argument("--dataset", choices=("digits", "cifar10"), default=d.dataset)
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py (for --dataset cifar10)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of each run (default 30 digits, 10 cifar10)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (digits), 256 (cifar10)")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--limit", type=int, default=None, help="keep at most this many training images")
    parser.add_argument("--forecaster", default=d.forecaster, help="'shipped' (default), 'linear', 'linefit' or a forecaster file")
    parser.add_argument("--schedule", default=d.schedule, help="jump schedule, e.g. 'periodic:n=4,K=10,P=5' or 'far:n=4'")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="where to write loss_curves.png, table.md, results.json")


def run(args: argparse.Namespace) -> int:
    cifar = args.dataset == "cifar10"
    cfg = DemoConfig(
        dataset=args.dataset, data_dir=args.data_dir,
        epochs=args.epochs or (10 if cifar else DemoConfig.epochs),
        batch_size=args.batch_size or (256 if cifar else DemoConfig.batch_size),
        lr=args.lr, seed=args.seed, limit=args.limit, forecaster=args.forecaster, schedule=args.schedule,
    )
    t0 = time.perf_counter()
    result = run_demo(cfg, args.out)
    print(format_table(result))
    print(f"\nwrote {args.out / 'loss_curves.png'}, {args.out / 'table.md'} and {args.out / 'results.json'} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0
