"""``gfm-accel bench table1``: paper Table 1, linreg forecasting, 5 optimizers x all models.

Protocol (Sec. 5.1, App. A, B): for each optimizer and seed, the linreg file
``linreg_<opt>_seed<k>`` (50 trajectories, T = 200, D = 2, generated in memory with
:mod:`gfm_accel.lab.generate.linreg`) is split 30 train / 20 test; every model is fitted on the 30
to map ``w_0..w_4`` to ``w_199`` and scored by the test MSE. Cell = mean (std) over seeds,
printed beside the paper's number.

Models (``--models``): the paper's six baselines, the simple references (last value,
train mean, ridge), and the GFM variants: ``gfm`` (dense, paper default: condition none,
path paper, beta = gamma = 1, zeta = 100), ``gfm_prefix`` (prefix-conditioned),
``gfm_from_last`` (path from ``w_n``) and ``gfm_coord`` (the coordinate variant).

Defaults (full run): seeds 0-4, 1000 epochs for GFM and the trained baselines (App. E:
1000; App. A gives no epoch count for the baselines, we use the same), ``gfm_coord`` at
``--coord-epochs`` (default 200: it trains on per-coordinate windows and is ~6x slower per
epoch than the dense field; see docs/benchmarks.md).

``--quick``: seeds 0,1; 200 epochs; ``gfm_coord`` left out (the slowest model). Targets
<= 2 minutes on an idle 2-core machine.

Figures: ``figure2.png`` (GFM forecast trajectories of the 20 test runs of the first seed,
per optimizer) and ``figure4.png`` (the 50 trajectories of the first seed's files).

Example:
    >>> from gfm_accel.cli import main  # doctest: +SKIP
    >>> main(["bench", "table1", "--quick"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import logging

from . import _forecast_eval as fe
from .common import BenchResult
from .paper import OPTIMIZERS, TABLE1, paper_cell

__all__ = ["add_arguments", "run", "QUICK_MODELS"]

logger = logging.getLogger(__name__)

#: --quick leaves out the coordinate variant (the slowest fit).
QUICK_MODELS: tuple[str, ...] = tuple(k for k in fe.DEFAULT_TABLE1_MODELS if k != "gfm_coord")

#: Options of the coordinate variant used here (its own defaults; fixed (n, m) training).
COORD_OPTIONS = {"condition": "prefix", "path": "from_last", "windows": False, "hidden": 32, "solver": "midpoint"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fe.add_linreg_arguments(parser, models=fe.DEFAULT_TABLE1_MODELS)
    parser.add_argument("--coord-epochs", type=int, default=200, help="epochs of the gfm_coord variant (default 200)")
    parser.add_argument("--n", type=int, default=4, help="last observed index (paper 4)")
    parser.add_argument("--m", type=int, default=199, help="target index (paper 199)")
    parser.add_argument("--no-figures", action="store_true", help="skip figure2.png / figure4.png")


def _specs(names: list[str], coord_epochs: int) -> list[fe.ModelSpec]:
    specs = []
    for s in fe.resolve_models(names):
        if s.key == "gfm_coord":
            s = fe.ModelSpec(s.key, s.base, dict(COORD_OPTIONS))
        specs.append(s)
    return specs


def run(args: argparse.Namespace) -> BenchResult:
    cfg = fe.linreg_settings(args)
    names = fe.parse_list(args.models, QUICK_MODELS if args.quick else fe.DEFAULT_TABLE1_MODELS)
    specs = _specs(names, args.coord_epochs)
    cfg.update({"n": args.n, "m": args.m, "models": names, "coord_epochs": args.coord_epochs,
                "coord_options": COORD_OPTIONS, "init": "normal", "figures": not args.no_figures})
    first = cfg["seeds"][0]
    coord = [s for s in specs if s.key == "gfm_coord"]
    rest = [s for s in specs if s.key != "gfm_coord"]
    common = dict(n=args.n, m=args.m, batch_size=cfg["batch_size"], lr=cfg["lr"], n_train=cfg["n_train"],
                  n_test=cfg["n_test"], show_progress=not args.no_progress)
    grid = fe.run_linreg_grid(rest, cfg["optimizers"], cfg["seeds"], epochs=cfg["epochs"],
                              keep=lambda k, o, s: k == "gfm" and s == first and not args.no_figures,
                              desc="table1", **common)
    if coord:
        g2 = fe.run_linreg_grid(coord, cfg["optimizers"], cfg["seeds"], epochs=args.coord_epochs,
                                desc="table1 gfm_coord", **common)
        grid.cells.update(g2.cells)
        grid.fit_seconds.update(g2.fit_seconds)

    figures = []
    if not args.no_figures:
        figures = _figures(grid, cfg, args)

    opts = cfg["optimizers"]
    header = ["Model"] + [f"{o} {w}" for o in opts for w in ("ours", "paper")]
    rows = []
    firsts = {o: fe.best_keys(grid.cells, o)[0] for o in opts}
    for s in specs:
        row = [s.label]
        for o in opts:
            text = fe.cell_text(grid.cells[s.key].get(o))
            if firsts[o] == s.key:
                text = f"**{text}**"
            paper = TABLE1.get(s.key, {}).get(o) if o in OPTIMIZERS else None
            row += [text, paper_cell(paper) if s.key in TABLE1 else "n/a"]
        rows.append(row)
    epochs_note = (f"{cfg['epochs']} epochs for GFM (dense) and the trained baselines"
                   + (f", {args.coord_epochs} for gfm_coord" if coord else ""))
    md = [
        f"Test MSE of the forecast w_{args.m} from w_0..w_{args.n}, mean (std) over seeds {cfg['seeds']}; "
        f"{cfg['n_train']}/{cfg['n_test']} split per file; {epochs_note}; Adam lr {cfg['lr']}, batch "
        f"{cfg['batch_size']}. Bold: our best per optimizer. 'paper' = the paper's Table 1 (n/a: not in the paper).",
        "",
        fe.markdown_table(header, rows),
        "",
        "Where GFM stands (our numbers):",
        *fe.verdicts(grid.cells, opts),
        "",
        "Fit time per model (s, all cells): " + ", ".join(f"{k} {v:.1f}" for k, v in grid.fit_seconds.items()),
    ]
    if args.quick:
        md.insert(0, "**Quick run** (fewer seeds and epochs than the paper; not comparable in detail).\n")
    results = {
        "cells": grid.cells,
        "fit_seconds": grid.fit_seconds,
        "paper": {k: {o: list(c) for o, c in v.items()} for k, v in TABLE1.items()},
        "verdicts": fe.verdicts(grid.cells, opts),
    }
    return BenchResult(results=results, table_md="\n".join(md), config=cfg, seeds=cfg["seeds"], figures=figures)


def _figures(grid: fe.LinregGrid, cfg: dict, args) -> list:
    from . import figures as F

    out = []
    first = cfg["seeds"][0]
    fc = {}
    for opt in cfg["optimizers"]:
        model = grid.fitted.get(("gfm", opt, first))
        w = grid.data.get((opt, first))
        if model is None or w is None:
            continue
        test = w[cfg["n_train"] : cfg["n_train"] + cfg["n_test"]]
        res = model.trajectory(test[:, : args.n + 1])
        times = res.times if res.times.dim() == 1 else res.times[:, 0]
        fc[opt] = (times, res.states, test[:, args.m])
    if fc:
        out.append(F.figure2(fc, args.out / "figure2.png"))
    data = {o: fe.linreg_weights(o, first, n_traj=50) for o in cfg["optimizers"]}
    out.append(F.figure4(data, args.out / "figure4.png"))
    return out
