"""``gfm-accel generate {linreg,mlp,cnn,transformer} --out DIR ...``.

Writes one trajectory file per (task, optimizer, seed) into ``--out``; see
``docs/datasets.md`` for every choice and the presets.

Examples::

    gfm-accel generate linreg --out data/linreg                      # 5 optimizers x 5 seeds x 50
    gfm-accel generate linreg --out data/xn --init xavier_normal --trajectories 100
    gfm-accel generate mlp --out data/mlp --lr 0.001 --optimizers sgd,adam,adamw,rmsprop
    gfm-accel generate cnn --out data/cnn --preset cpu               # sklearn digits, minutes
    gfm-accel generate transformer --out data/tf --preset paper --data-dir ~/cifar10 --device cuda
"""

from __future__ import annotations

import argparse
import logging
import time

from ._util import parse_seeds
from ..optim import OPTIMIZERS, PAPER_OPTIMIZERS, parse_optimizers

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``generate`` arguments on ``parser``."""
    p = parser
    p.add_argument("task", choices=("linreg", "mlp", "cnn", "transformer"), help="which dataset family")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--optimizers", default=None,
                   help=f"comma list from {','.join(OPTIMIZERS)} (default: the paper's five for linreg/mlp, sgd for cnn/transformer)")
    p.add_argument("--seeds", default=None, help="comma list or range, e.g. 0,1,2 or 0-4 (default 0-4; cnn/transformer: 0)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate for every optimizer (default: the paper's per optimizer; cnn/transformer: preset)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("linreg / mlp")
    g.add_argument("--trajectories", type=int, default=50, help="N trajectories (tasks) per file (default 50)")
    g.add_argument("--init", choices=("normal", "xavier_normal", "xavier_uniform"), default="normal")
    g.add_argument("--init-scale", type=float, default=1.0, help="std of the normal init (default 1)")
    g.add_argument("--noise-std", type=float, default=None, help="label noise std (default sqrt(0.1) = 0.316)")
    g.add_argument("--points", type=int, default=100, help="data points per task (default 100)")
    g.add_argument("--steps", type=int, default=199, help="updates (linreg) or epochs (mlp); T = steps + 1")
    g.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (linreg default: full batch; mlp default: 64; cnn/transformer: preset)")
    g.add_argument("--mlp-first", type=int, default=None,
                   help="mlp: how many leading trajectories use the [2,2,1] net (default 60%%, 30 of 50)")
    g.add_argument("--activation", choices=("tanh", "relu"), default="tanh", help="mlp hidden activation (default tanh)")
    v = p.add_argument_group("cnn / transformer")
    v.add_argument("--preset", choices=("cpu", "paper"), default="cpu",
                   help="cpu: digits, small (minutes); paper: CIFAR-10, 100 runs x 200 epochs (GPU)")
    v.add_argument("--dataset", choices=("cifar10", "digits", "fake"), default=None, help="override the preset's dataset")
    v.add_argument("--data-dir", default=None, help="CIFAR-10 root (holding cifar-10-batches-py/)")
    v.add_argument("--download", action="store_true", help="let torchvision download CIFAR-10 into --data-dir")
    v.add_argument("--runs", type=int, default=None, help="trajectories (init seeds) per file")
    v.add_argument("--epochs", type=int, default=None, help="epochs per run")
    v.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0.9)")
    v.add_argument("--arch-seed", type=int, default=None,
                   help="seed of the fixed sampled architecture (default: the preset's; cpu 0, paper cnn 10)")
    v.add_argument("--cell", default=None, help="cnn: a NAS-Bench-201 cell string instead of sampling")
    v.add_argument("--channels", type=int, default=None, help="cnn width")
    v.add_argument("--depth", type=int, default=None, help="transformer depth")
    v.add_argument("--hidden", type=int, default=None, help="transformer hidden size")
    v.add_argument("--dropout", type=float, default=None, help="transformer dropout")
    v.add_argument("--runs-per-file", type=int, default=None, help="shard runs over several files")
    v.add_argument("--snapshot-every", type=int, default=None, help="record every k epochs")
    v.add_argument("--device", default="cpu", help="training device, e.g. cuda")


def run(args: argparse.Namespace) -> int:
    """Generate the requested files; returns 0 on success (errors raise ValueError)."""
    from .generate import VisionConfig, generate_linreg, generate_mlp, generate_vision
    from .linreg import RegressionConfig

    vision = args.task in ("cnn", "transformer")
    optimizers = parse_optimizers(args.optimizers if args.optimizers is not None else ("sgd" if vision else ",".join(PAPER_OPTIMIZERS)))
    seeds = parse_seeds(args.seeds if args.seeds is not None else ("0" if vision else "0-4"))
    t0 = time.perf_counter()
    paths = []
    if not vision:
        import math

        batch = args.batch_size if args.batch_size is not None else (64 if args.task == "mlp" else None)
        if batch is not None:
            batch = min(batch, args.points)
        cfg = RegressionConfig(
            n_trajectories=args.trajectories, n_points=args.points, steps=args.steps, batch_size=batch,
            noise_std=math.sqrt(0.1) if args.noise_std is None else args.noise_std,
            init=args.init, init_scale=args.init_scale,
        )
        from ..._progress import progress

        jobs = [(o, s) for o in optimizers for s in seeds]
        for opt, seed in progress(jobs, total=len(jobs), desc=f"generate {args.task}", enabled=not args.no_progress):
            if args.task == "linreg":
                paths.append(generate_linreg(args.out, optimizer=opt, seed=seed, config=cfg, lr=args.lr))
            else:
                paths.append(generate_mlp(args.out, optimizer=opt, seed=seed, config=cfg, lr=args.lr,
                                          n_first=args.mlp_first, activation=args.activation))
    else:
        overrides = {
            k: v for k, v in {
                "dataset": args.dataset, "runs": args.runs, "epochs": args.epochs, "batch_size": args.batch_size,
                "lr": args.lr, "cell": args.cell, "channels": args.channels, "depth": args.depth,
                "hidden": args.hidden, "dropout": args.dropout, "runs_per_file": args.runs_per_file,
                "snapshot_every": args.snapshot_every, "arch_seed": args.arch_seed,
            }.items() if v is not None
        }
        if args.momentum is not None:
            overrides["optimizer_kwargs"] = {"momentum": args.momentum}
        cfg = VisionConfig.preset(args.preset, args.task, **overrides)
        from ..datasets import load_image_dataset

        data = load_image_dataset(cfg.dataset, data_dir=args.data_dir, download=args.download)
        for opt in optimizers:
            for seed in seeds:
                paths += generate_vision(args.out, cfg, seed=seed, optimizer=opt, data=data, device=args.device,
                                         show_progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    for p in paths:
        log.info("wrote %s", p)
    log.info("%d file(s) in %.1f s", len(paths), elapsed)
    return 0
