"""``gfm-accel train``: fit a GFM forecaster on trajectory files and save it.

Example:
    gfm-accel train --data adam_seed0.safetensors --out gfm.safetensors --n 4 --m 199 --epochs 1000

Every trajectory of every file gives one training pair ``(w_0..w_n, w_m)``; n and m index
the T (steps) axis, ``m`` defaults to ``T - 1``. Variant-specific options go through the
repeatable ``--option KEY=VALUE`` (the value is read as JSON when it parses, else as a
string), e.g. ``--option normalization=standardize --option t_per_traj=4``. Options left
unset take the variant's defaults. For ``dense`` that is the prefix-conditioned field (Eq. 2)
with ``skip=auto`` (the field alone or a linear skip alone, least squares or the prefix's own
linear dynamics, whichever is best on held-out training pairs) and otherwise the paper's
values (Table 1, Table 5, Appendices A and E); ``--condition none`` is the ablation that
trains the field exactly as Algorithm 1 states, ``v(w, t)`` without the prefix, and
``--option skip=none`` the field alone (``docs/forecaster.md``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

__all__ = ["add_arguments", "run", "parse_options"]


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: json(v) or v}``; raises ValueError on an item without ``=``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="trajectory files to train on")
    parser.add_argument("--out", required=True, metavar="F.safetensors", help="where to write the forecaster")
    parser.add_argument("--variant", choices=["dense", "coordinate"], default="dense")
    parser.add_argument("--condition", choices=["none", "prefix"], default=None,
                        help="'prefix' (default): the field also sees w_0..w_n (Eq. 2; the dense default --option "
                             "skip=auto may replace the field by a linear skip where held-out training pairs say "
                             "it is better; skip=none keeps the field alone); 'none': the ablation, v(w, t) "
                             "trained exactly as Algorithm 1 states")
    parser.add_argument("--path", choices=["paper", "from_last"], default=None,
                        help="training path: Algorithm 1 literally (dense default), or the consistent path from w_n")
    parser.add_argument("--n", type=int, default=4, help="last observed snapshot index (prefix w_0..w_n)")
    parser.add_argument("--m", type=int, default=None, help="target snapshot index (default: T-1)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (dense default: 1000, App. E)")
    parser.add_argument("--batch-size", type=int, default=None, help="trajectories per step (dense default: 16, App. A)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (dense default: 1e-4, App. A)")
    parser.add_argument("--beta", type=float, default=None, help="weight of the prefix term (paper: 1)")
    parser.add_argument("--gamma", type=float, default=None, help="weight of the extrapolation term (paper: 1)")
    parser.add_argument("--zeta", type=float, default=None, help="weight of the midpoint consistency term (paper: 100)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width of the field (dense default: 64, Table 5)")
    parser.add_argument("--solver", choices=["euler", "midpoint", "rk4"], default=None,
                        help="ODE method (dense default: euler, Sec. 4.4)")
    parser.add_argument("--step", type=float, default=None, help="ODE step h (dense default: 1/m)")
    parser.add_argument("--tau", type=float, default=None, help="early-stop tolerance on ||h v|| (default 1e-6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", metavar="KEY=VALUE", help="variant option (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _init_distributed() -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1). Returns True if joined."""
    import os

    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


def run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from .forecaster import GFMForecaster

    options = parse_options(args.option)
    named = {k: getattr(args, k) for k in ("condition", "path", "beta", "gamma", "zeta", "hidden", "solver", "step", "tau")}
    named = {k: v for k, v in named.items() if v is not None}
    clash = sorted(set(named) & set(options))
    if clash:
        raise ValueError(f"{clash} given both as a flag and as --option")
    forecaster = GFMForecaster(args.variant, n=args.n, m=args.m, **named, **options)
    command = shlex.join(["gfm-accel", *sys.argv[1:]]) if sys.argv and sys.argv[0] else None
    joined = _init_distributed()
    try:
        forecaster.fit(args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       progress=not args.no_progress, command=command)
        rank = dist.get_rank() if dist.is_initialized() else 0
        if rank == 0:  # every rank holds the same network; one writes it
            path = forecaster.save(args.out)
            prov = forecaster.provenance
            print(f"trained {forecaster!r} on {prov['num_trajectories']} trajectories in {prov['fit_seconds']:.1f} s "
                  f"({prov['world_size']} process(es)); final loss {prov['final_loss']:.6g}")
            print(f"wrote {path}")
        if joined:
            dist.barrier()
    finally:
        if joined:
            dist.destroy_process_group()
    return 0
