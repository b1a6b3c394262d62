"""``gfm-accel bench sensitivity``: the beta / gamma / zeta grid of paper App. E (Tables 6-9).

GFM (dense, condition none, path paper) is fitted on the linreg data exactly as in Table 1
(n = 4, m = 199, 30/20 split, Adam 1e-4, batch 16) for every ``(beta, gamma, zeta)`` of the
grid, and the test MSE is printed beside the paper's Tables 7 (zeta = 1), 8 (zeta = 10) and
9 (zeta = 100); the best configuration per optimizer is printed beside Table 6.

Grids (``--grid``):

* ``tables`` (default): beta, gamma in {0.1, 1, 10} x zeta in {1, 10, 100}: the 27
  configurations the paper prints in Tables 7-9. 5 seeds, 1000 epochs (App. E).
* ``full``: App. E's whole stated range, beta, gamma, zeta in {0, 0.1, 1, 10} x
  {0, 0.1, 1, 10} x {0, 1, 10, 100} (64 configurations; the paper's Table 6 best configs
  use beta = 0 and gamma = 0, which Tables 7-9 do not show).
* ``--quick``: the 6 configurations (1,1,1), (1,1,10), (1,1,100), (0.1,1,10),
  (0.1,1,100), (1,0.1,100) (the default, its zeta ablation, and Table 6's most frequent
  winners), seeds 0,1, 200 epochs.

Example:
    >>> from gfm_accel.cli import main  # doctest: +SKIP
    >>> main(["bench", "sensitivity", "--quick"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import itertools

from . import _forecast_eval as fe
from .common import BenchResult
from .paper import SENSITIVITY, TABLE6, paper_cell

__all__ = ["add_arguments", "run", "GRIDS", "QUICK_GRID", "config_key"]

GRIDS: dict[str, list[tuple[float, float, float]]] = {
    "tables": [(b, g, z) for z in (1.0, 10.0, 100.0) for b in (0.1, 1.0, 10.0) for g in (0.1, 1.0, 10.0)],
    "full": [(b, g, z) for z in (0.0, 1.0, 10.0, 100.0) for b, g in itertools.product((0.0, 0.1, 1.0, 10.0), repeat=2)],
}
QUICK_GRID: list[tuple[float, float, float]] = [
    (1.0, 1.0, 1.0), (1.0, 1.0, 10.0), (1.0, 1.0, 100.0), (0.1, 1.0, 10.0), (0.1, 1.0, 100.0), (1.0, 0.1, 100.0),
]


def config_key(beta: float, gamma: float, zeta: float) -> str:
    """Row key, e.g. ``b0.1_g1_z100``."""
    f = lambda x: f"{x:g}"  # noqa: E731
    return f"b{f(beta)}_g{f(gamma)}_z{f(zeta)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fe.add_linreg_arguments(parser, models=None)
    parser.add_argument("--grid", default="tables", choices=tuple(GRIDS), help="tables (27 configs) or full (64)")


def run(args: argparse.Namespace) -> BenchResult:
    cfg = fe.linreg_settings(args)
    grid_cfgs = QUICK_GRID if args.quick else GRIDS[args.grid]
    specs = [fe.ModelSpec(config_key(*c), "gfm", {"beta": c[0], "gamma": c[1], "zeta": c[2]}) for c in grid_cfgs]
    cfg.update({"n": 4, "m": 199, "grid": "quick" if args.quick else args.grid,
                "configs": [list(c) for c in grid_cfgs]})
    grid = fe.run_linreg_grid(specs, cfg["optimizers"], cfg["seeds"], n=4, m=199, epochs=cfg["epochs"],
                              batch_size=cfg["batch_size"], lr=cfg["lr"], n_train=cfg["n_train"], n_test=cfg["n_test"],
                              show_progress=not args.no_progress, desc="sensitivity")
    opts = cfg["optimizers"]
    md = []
    if args.quick:
        md.append("**Quick run**: 6 configurations, seeds 0,1, 200 epochs (paper: 27+ configurations, 5 seeds, "
                  "1000 epochs).\n")
    md.append(f"GFM test MSE on linreg (n = 4, m = 199), mean (std) over seeds {cfg['seeds']}; {cfg['epochs']} "
              "epochs. 'paper' = Tables 7 (zeta 1), 8 (zeta 10), 9 (zeta 100); '-' where the paper has no row.")
    for zeta in sorted({c[2] for c in grid_cfgs}):
        rows = []
        for b, g, z in grid_cfgs:
            if z != zeta:
                continue
            key = config_key(b, g, z)
            row = [f"{b:g}", f"{g:g}"]
            for o in opts:
                row += [fe.cell_text(grid.cells[key].get(o)), paper_cell(SENSITIVITY.get((b, g, z), {}).get(o))]
            rows.append(row)
        md += ["", f"zeta = {zeta:g}", "",
               fe.markdown_table(["beta", "gamma"] + [f"{o} {w}" for o in opts for w in ("ours", "paper")], rows)]
    best_rows = []
    best = {}
    for o in opts:
        ranked = sorted((c[o]["mean"], k) for k, c in grid.cells.items() if c.get(o, {}).get("mean") is not None)
        if not ranked:
            continue
        key = ranked[0][1]
        spec = next(s for s in specs if s.key == key)
        best[o] = {"config": [spec.options["beta"], spec.options["gamma"], spec.options["zeta"]],
                   "cell": grid.cells[key][o]}
        p = TABLE6.get(o)
        best_rows.append([o, fe.cell_text(grid.cells[key][o]), f"{spec.options['beta']:g} / {spec.options['gamma']:g} / "
                          f"{spec.options['zeta']:g}", paper_cell(p[0]) if p else "-",
                          f"{p[1]:g} / {p[2]:g} / {p[3]:g}" if p else "-"])
    md += ["", "Best configuration per optimizer (ours over this grid vs the paper's Table 6):", "",
           fe.markdown_table(["Optimizer", "ours best", "ours beta / gamma / zeta", "paper best",
                              "paper beta / gamma / zeta"], best_rows)]
    results = {"cells": grid.cells, "best": best, "fit_seconds": grid.fit_seconds,
               "paper": {config_key(*k): {o: list(c) for o, c in v.items()} for k, v in SENSITIVITY.items()},
               "paper_best": {o: {"cell": list(v[0]), "config": list(v[1:])} for o, v in TABLE6.items()}}
    return BenchResult(results=results, table_md="\n".join(md), config=cfg, seeds=cfg["seeds"])
