"""``gfm-accel bench table3``: the initialization ablation (paper Table 3, Sec. 5.4).

The linreg data are regenerated with each initialization of the two weights
(``normal``: N(0, 1); ``xavier_normal`` / ``xavier_uniform``: Glorot scaling of the model
read as one linear map R^2 -> R, see :mod:`gfm_accel.lab.generate.linreg`), and GFM (dense, paper
default) is fitted and scored exactly as in Table 1 (n = 4, m = 199, 30/20 split). The
arrows compare each Xavier row with *our* ``normal`` row, as the paper's arrows compare with
its Table 1.

The simple references (last value, train mean, ridge) are run on the same data (they cost
nothing) so the table says whether GFM beats them under each initialization.

Defaults: seeds 0-4, 1000 epochs. ``--quick``: seeds 0,1, 200 epochs.

Example:
    >>> from gfm_accel.cli import main  # doctest: +SKIP
    >>> main(["bench", "table3", "--quick"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse

from . import _forecast_eval as fe
from .common import BenchResult
from .paper import TABLE3, paper_cell

__all__ = ["add_arguments", "run", "INITS", "DEFAULT_MODELS"]

INITS: tuple[str, ...] = ("normal", "xavier_normal", "xavier_uniform")
DEFAULT_MODELS: tuple[str, ...] = ("gfm", "last", "mean", "ridge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fe.add_linreg_arguments(parser, models=DEFAULT_MODELS)
    parser.add_argument("--inits", default=",".join(INITS), help="initializations (normal is the arrows' reference)")


def _arrow(value: float | None, ref: float | None) -> str:
    if value is None or ref is None:
        return ""
    return " ↓" if value < ref else (" ↑" if value > ref else " =")


def run(args: argparse.Namespace) -> BenchResult:
    cfg = fe.linreg_settings(args)
    names = fe.parse_list(args.models, DEFAULT_MODELS)
    specs = fe.resolve_models(names)
    inits = fe.parse_list(args.inits, INITS)
    for i in inits:
        if i not in INITS:
            raise ValueError(f"unknown init {i!r}; choose from {', '.join(INITS)}")
    cfg.update({"n": 4, "m": 199, "models": names, "inits": inits})
    cells: dict[str, dict] = {}
    fit_seconds: dict[str, dict] = {}
    for init in inits:
        grid = fe.run_linreg_grid(specs, cfg["optimizers"], cfg["seeds"], n=4, m=199, init=init, epochs=cfg["epochs"],
                                  batch_size=cfg["batch_size"], lr=cfg["lr"], n_train=cfg["n_train"],
                                  n_test=cfg["n_test"], show_progress=not args.no_progress, desc=f"table3 {init}")
        cells[init] = grid.cells
        fit_seconds[init] = grid.fit_seconds

    opts = cfg["optimizers"]
    header = ["Init", "Model"] + [f"{o} {w}" for o in opts for w in ("ours", "paper")]
    rows = []
    for init in inits:
        for s in specs:
            row = [init, s.label]
            for o in opts:
                c = cells[init][s.key].get(o, {})
                ref = cells.get("normal", {}).get(s.key, {}).get(o, {}).get("mean")
                arrow = _arrow(c.get("mean"), ref) if init != "normal" else ""
                row.append(fe.cell_text(c) + arrow)
                row.append(paper_cell(TABLE3[init].get(o)) if s.key == "gfm" else "n/a")
            rows.append(row)
    md = [
        f"Test MSE (n = 4, m = 199), mean (std) over seeds {cfg['seeds']}; {cfg['epochs']} epochs. Arrows: "
        "ours vs our `normal` row of the same model (paper: vs its Table 1). 'paper' = Table 3 (its normal row "
        "is Table 1's GFM row).",
        "",
        fe.markdown_table(header, rows),
        "",
    ]
    for init in inits:
        md.append(f"Where GFM stands under {init}:")
        md.extend(fe.verdicts(cells[init], opts))
        md.append("")
    if args.quick:
        md.insert(0, "**Quick run** (fewer seeds and epochs than the paper).\n")
    results = {"cells": cells, "fit_seconds": fit_seconds,
               "paper": {k: {o: list(c) for o, c in v.items()} for k, v in TABLE3.items()}}
    return BenchResult(results=results, table_md="\n".join(md), config=cfg, seeds=cfg["seeds"])
