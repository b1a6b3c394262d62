"""``gfm-accel bench table4``: forecasting from the initialization only, n = 0 (paper Table 4).

GFM (dense, paper default) sees only ``w_0`` and forecasts ``w_199`` of the linreg runs
(30/20 split, as Table 1). With ``n = 0`` the paper's path has no observed prefix (Z = 0
everywhere), so the field learns the straight flow ``w_0 -> w_m`` of Sec. 4.2.

The paper's arrows compare with n = 4; we fit GFM at n = 4 on the same data too
(``--compare-n``, 0 disables) and print the arrow against our own n = 4 number. The simple
references at n = 0 (``last`` = ``w_0``, the train mean, ridge from ``w_0``) show what the
initialization alone is worth.

Defaults: seeds 0-4, 1000 epochs. ``--quick``: seeds 0,1, 200 epochs.

Example:
    >>> from gfm_accel.cli import main  # doctest: +SKIP
    >>> main(["bench", "table4", "--quick"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse

from . import _forecast_eval as fe
from .common import BenchResult
from .paper import TABLE4, paper_cell

__all__ = ["add_arguments", "run", "DEFAULT_MODELS"]

DEFAULT_MODELS: tuple[str, ...] = ("gfm", "last", "mean", "ridge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fe.add_linreg_arguments(parser, models=DEFAULT_MODELS)
    parser.add_argument("--compare-n", type=int, default=4, help="also fit GFM at this n for the arrows (0: skip)")


def run(args: argparse.Namespace) -> BenchResult:
    cfg = fe.linreg_settings(args)
    names = fe.parse_list(args.models, DEFAULT_MODELS)
    specs = fe.resolve_models(names)
    cfg.update({"n": 0, "m": 199, "models": names, "compare_n": args.compare_n})
    common = dict(m=199, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], n_train=cfg["n_train"],
                  n_test=cfg["n_test"], show_progress=not args.no_progress)
    grid = fe.run_linreg_grid(specs, cfg["optimizers"], cfg["seeds"], n=0, desc="table4 n=0", **common)
    compare = None
    if args.compare_n > 0:
        compare = fe.run_linreg_grid([fe.ModelSpec("gfm", "gfm")], cfg["optimizers"], cfg["seeds"], n=args.compare_n,
                                     desc=f"table4 n={args.compare_n}", **common)
    opts = cfg["optimizers"]
    header = ["Model (n = 0)"] + [f"{o} {w}" for o in opts for w in ("ours", "paper")]
    rows = []
    for s in specs:
        row = [s.label]
        for o in opts:
            c = grid.cells[s.key].get(o, {})
            arrow = ""
            if s.key == "gfm" and compare is not None:
                ref = compare.cells["gfm"].get(o, {}).get("mean")
                if c.get("mean") is not None and ref is not None:
                    arrow = " ↑" if c["mean"] > ref else " ↓"
            row += [fe.cell_text(c) + arrow, paper_cell(TABLE4.get(o)) if s.key == "gfm" else "n/a"]
        rows.append(row)
    if compare is not None:
        rows.append([f"GFM at n = {args.compare_n} (same data)"]
                    + [x for o in opts for x in (fe.cell_text(compare.cells["gfm"].get(o)), "")])
    md = [
        f"Test MSE of w_199 forecast from w_0 alone (n = 0), mean (std) over seeds {cfg['seeds']}; {cfg['epochs']} "
        f"epochs. Arrows: GFM at n = 0 vs our GFM at n = {args.compare_n} (paper: vs its n = 4).",
        "",
        fe.markdown_table(header, rows),
        "",
        "Where GFM (n = 0) stands:",
        *fe.verdicts(grid.cells, opts),
    ]
    if args.quick:
        md.insert(0, "**Quick run** (fewer seeds and epochs than the paper).\n")
    results = {"cells": grid.cells, "fit_seconds": grid.fit_seconds,
               "compare": None if compare is None else {"n": args.compare_n, "cells": compare.cells},
               "paper": {o: list(c) for o, c in TABLE4.items()}}
    return BenchResult(results=results, table_md="\n".join(md), config=cfg, seeds=cfg["seeds"])
