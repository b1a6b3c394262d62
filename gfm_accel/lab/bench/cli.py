"""``gfm-accel bench NAME [--quick] [--out DIR] [--seeds ...]``.

Each benchmark is a module ``gfm_accel.lab.bench.<name>`` exposing
``add_arguments(parser)`` (its own options) and ``run(args) -> BenchResult``. The harness
times it and writes ``results.json`` and ``table.md`` through
:func:`gfm_accel.lab.bench.common.write_result`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from pathlib import Path

from .common import git_commit, write_result

__all__ = ["BENCHMARKS", "add_arguments", "run"]

logger = logging.getLogger(__name__)

#: name -> (module, one-line description)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "table1": ("gfm_accel.lab.bench.table1", "linreg forecasting, 5 optimizers x all models (paper Table 1)"),
    "table3": ("gfm_accel.lab.bench.table3", "initialization ablation (paper Table 3)"),
    "table4": ("gfm_accel.lab.bench.table4", "forecasting from w_0 only, n = 0 (paper Table 4)"),
    "sensitivity": ("gfm_accel.lab.bench.sensitivity", "beta/gamma/zeta grid (paper App. E, Tables 6-9)"),
    "mlp": ("gfm_accel.lab.bench.mlp", "train on [2,2,1] MLPs, forecast [4,1] MLPs (paper Sec. 5.2, Fig. 3)"),
    "cifar": ("gfm_accel.lab.bench.cifar", "CNN cells and Transformers (paper Sec. 5.3, Table 2)"),
    "accel": ("gfm_accel.lab.bench.accel", "live acceleration: epochs to target with GFMJump vs plain runs"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="name", metavar="NAME", required=True)
    for name, (module, help_) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--quick", action="store_true", help="a documented, smaller configuration")
        p.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/results/<name>[_quick])")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1") or 1))
    module = importlib.import_module(BENCHMARKS[args.name][0])
    # a benchmark with several protocols names its own folder (``accel --protocol tuned``: accel_tuned)
    name = getattr(module, "output_name", lambda a: a.name)(args)
    out = args.out or Path("benchmarks/results") / (name + ("_quick" if args.quick else ""))
    args.out = out
    commit = git_commit()  # the code that runs, even if HEAD moves during a long run
    t0 = time.perf_counter()
    result = module.run(args)
    wall = time.perf_counter() - t0
    path = write_result(name, result, out, quick=args.quick, wall_time_s=wall, commit=commit)
    print(result.table_md)
    print(f"\nwall time {wall:.1f} s; wrote {path} and {path.parent / 'table.md'}")
    return 0
