"""``gfm-accel bench mlp``: train on [2,2,1] MLPs, forecast [4,1] MLPs (paper Sec. 5.2, Figure 3).

Data (App. C, via :mod:`gfm_accel.lab.generate.mlp`): per optimizer and seed, 50 runs of the
regression task with 15-parameter MLPs, mini-batch 64, 199 epochs, T = 200 snapshots; the
first 30 runs use the [2,2,1] net (arch 0), the last 20 the [4,1] net (arch 1).

Protocol: GFM (dense, paper default) is fitted on the 30 [2,2,1] trajectories to map
``w_0..w_n`` to ``w_199`` and forecasts the 20 [4,1] trajectories (same D = 15, a different
architecture: the field never saw a [4,1] net), for n = 1..4. The forecast weights are
loaded into the [4,1] nets and their task loss (full-data MSE on the run's 100 points) is
compared with the true loss curve, in particular the true final loss at epoch 199.

Reported per (optimizer, n), mean (std) over seeds:

* ``param_mse``: parameter-space MSE of the forecast;
* ``loss_forecast``: mean task loss of the forecast weights;
* ``loss_true_final``: mean task loss of the true ``w_199``;
* ``loss_at_n``: mean task loss at ``w_n`` (what you have without forecasting);
* ``frac_le_true``: fraction of test runs whose forecast loss <= the true final loss
  (the paper: "often comparable, and occasionally better").

The references ``last`` (= ``w_n``) and ``ridge`` (fitted on the [2,2,1] runs) are scored
the same way. The paper gives Figure 3 only (no numbers), so there is no paper column.

Choices: learning rate App. C (0.01; Adagrad 0.1; Sec. 5.2's 0.001 is ``--data-lr``), all
5 optimizers (Sec. 5.2 lists 4, App. C 5), tanh activations (the paper does not say; the
same default as ``gfm-accel generate mlp``; ``--activation relu`` switches).

Defaults: seeds 0-4, n = 1,2,3,4, 1000 epochs. ``--quick``: seed 0, n = 1,4, 200 epochs.
Figure: ``figure3.png`` (n = 4, first seed): the 20 true loss curves per optimizer (blue)
and the forecast losses at epoch 199 (red stars).

Example:
    >>> from gfm_accel.cli import main  # doctest: +SKIP
    >>> main(["bench", "mlp", "--quick"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import logging
import time
from functools import lru_cache

import torch

from . import _forecast_eval as fe
from ..._progress import progress
from .common import BenchResult

__all__ = ["add_arguments", "run", "mlp_task_loss", "METRICS"]

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("param_mse", "loss_forecast", "loss_true_final", "loss_at_n", "frac_le_true")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", default=None, help="seeds (default 0-4; --quick 0)")
    parser.add_argument("--optimizers", default="sgd,adam,adamw,rmsprop,adagrad", help="comma-separated optimizers")
    parser.add_argument("--ns", default=None, help="forecast points n (default 1,2,3,4; --quick 1,4)")
    parser.add_argument("--models", default="gfm,last,ridge", help="models (default gfm,last,ridge)")
    parser.add_argument("--epochs", type=int, default=None, help="GFM epochs (default 1000; --quick 200)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (App. A)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (App. A)")
    parser.add_argument("--data-lr", type=float, default=None, help="learning rate of the data runs (default App. C)")
    parser.add_argument("--n-traj", type=int, default=50, help="runs per file (first 60%% are [2,2,1])")
    parser.add_argument("--activation", default="tanh", choices=("tanh", "relu"),
                        help="hidden activation (default tanh, as `gfm-accel generate mlp` writes)")
    parser.add_argument("--no-figures", action="store_true", help="skip figure3.png")


@lru_cache(maxsize=32)
def _data(optimizer: str, seed: int, n_traj: int, data_lr: float | None, activation: str = "tanh"):
    from ..generate.linreg import RegressionConfig
    from ..generate.mlp import sample_mlp_tasks, train_mlp_batched

    mt = sample_mlp_tasks(RegressionConfig(n_trajectories=n_traj, batch_size=64), seed=seed,
                          activation=activation)
    run = train_mlp_batched(mt, optimizer, data_lr)
    return mt, run.weights, run.loss


def mlp_task_loss(weights: torch.Tensor, mt, rows: torch.Tensor) -> torch.Tensor:
    """Full-data task MSE of flat weights ``(B, 15)`` loaded into the nets of ``rows``.

    Args:
        weights: ``(B, 15)`` canonical-order weights, one per row.
        mt: the :class:`~gfm_accel.lab.generate.mlp.MLPTasks` of the file.
        rows: ``(B,)`` trajectory indices (their task data and architecture are used).

    Returns:
        ``(B,)`` losses.
    """
    from ..generate.mlp import MLP_ARCHS, mlp_forward

    out = torch.empty(len(rows))
    for aid, (_, hidden) in MLP_ARCHS.items():
        sel = (mt.arch_id[rows] == aid).nonzero().reshape(-1)
        if len(sel) == 0:
            continue
        r = rows[sel]
        pred = mlp_forward(weights[sel].float(), hidden, mt.tasks.x[r], mt.activation)
        out[sel] = ((pred - mt.tasks.y[r]) ** 2).mean(dim=1)
    return out


def run(args: argparse.Namespace) -> BenchResult:
    from ..optim import parse_optimizers

    seeds = fe.parse_seed_list(args.seeds, (0,) if args.quick else (0, 1, 2, 3, 4))
    ns = [int(x) for x in fe.parse_list(args.ns, ("1", "4") if args.quick else ("1", "2", "3", "4"))]
    if any(n < 0 or n >= 199 for n in ns):
        raise ValueError(f"--ns must lie in [0, 198], got {ns}")
    epochs = args.epochs if args.epochs is not None else (200 if args.quick else 1000)
    opts = parse_optimizers(args.optimizers)
    specs = fe.resolve_models(fe.parse_list(args.models, ("gfm", "last", "ridge")))
    m = 199
    cfg = {"seeds": seeds, "optimizers": opts, "ns": ns, "epochs": epochs, "m": m, "batch_size": args.batch_size,
           "lr": args.lr, "data_lr": args.data_lr, "n_traj": args.n_traj, "activation": args.activation,
           "models": [s.key for s in specs],
           "train_arch": "[2,2,1] (arch 0)", "test_arch": "[4,1] (arch 1)"}
    per = {s.key: {o: {n: {k: [] for k in METRICS} for n in ns} for o in opts} for s in specs}
    fig_panels = {}
    fit_seconds = {s.key: 0.0 for s in specs}
    jobs = [(o, sd, n, s) for o in opts for sd in seeds for n in ns for s in specs]
    for opt, seed, n, spec in progress(jobs, total=len(jobs), desc="mlp", enabled=not args.no_progress):
        mt, w, loss = _data(opt, seed, args.n_traj, args.data_lr, args.activation)
        train_rows = (mt.arch_id == 0).nonzero().reshape(-1)
        test_rows = (mt.arch_id == 1).nonzero().reshape(-1)
        if len(train_rows) < 2 or len(test_rows) < 1:
            raise ValueError(f"need both architectures in each file; got {len(train_rows)} and {len(test_rows)} runs")
        t0 = time.perf_counter()
        model = fe.fit_model(spec, w[train_rows], n=n, m=m, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=seed)
        pred = fe.predict(model, w[test_rows, : n + 1])
        fit_seconds[spec.key] += time.perf_counter() - t0
        fl = mlp_task_loss(pred, mt, test_rows)
        true_final = loss[test_rows, m]
        rec = per[spec.key][opt][n]
        rec["param_mse"].append(fe.mse(pred, w[test_rows, m]))
        rec["loss_forecast"].append(float(fl.mean()))
        rec["loss_true_final"].append(float(true_final.mean()))
        rec["loss_at_n"].append(float(loss[test_rows, n].mean()))
        rec["frac_le_true"].append(float((fl <= true_final + 1e-12).float().mean()))
        if spec.key == "gfm" and seed == seeds[0] and n == max(ns):
            fig_panels[opt] = (loss[test_rows], fl, m)

    cells = {k: {o: {str(n): {met: fe.summarize(v) for met, v in per[k][o][n].items()} for n in ns} for o in opts}
             for k in per}
    figures = []
    if not args.no_figures and fig_panels:
        from . import figures as F

        figures.append(F.figure3(fig_panels, args.out / "figure3.png",
                                 title=f"[4,1] MLPs: true task loss (blue) and GFM forecast at epoch {m} from "
                                       f"n = {max(ns)} (red stars), GFM trained on [2,2,1] nets"))

    header = ["Optimizer", "n", "Model", "param MSE", "forecast loss", "true final loss", "loss at w_n",
              "share forecast <= true"]
    rows = []
    for o in opts:
        for n in ns:
            for s in specs:
                c = cells[s.key][o][str(n)]
                rows.append([o, n, s.label] + [fe.cell_text(c[k]) for k in METRICS])
    md = [
        f"GFM fitted on 30 [2,2,1] runs, forecasting w_{m} of 20 [4,1] runs from w_0..w_n; task loss = full-data "
        f"MSE of the forecast weights in the [4,1] net. Mean (std) over seeds {seeds}; {epochs} epochs. The paper "
        "shows this only as Figure 3 (no numbers).",
        "",
        fe.markdown_table(header, rows),
        "",
        *_mlp_verdicts(cells, opts, ns, [s.key for s in specs]),
    ]
    if args.quick:
        md.insert(0, "**Quick run** (one seed, n = 1 and 4, 200 epochs).\n")
    results = {"cells": cells, "fit_seconds": {k: round(v, 2) for k, v in fit_seconds.items()}}
    return BenchResult(results=results, table_md="\n".join(md), config=cfg, seeds=seeds, figures=figures)


def _mlp_verdicts(cells, opts, ns, keys) -> list[str]:
    out = ["Plainly:"]
    if "gfm" not in keys:
        return []
    for o in opts:
        n = max(ns)
        g = cells["gfm"][o][str(n)]
        gl, tl = g["loss_forecast"]["mean"], g["loss_true_final"]["mean"]
        line = (f"- {o}, n = {n}: GFM forecast loss {gl:.3f} vs true final loss {tl:.3f} "
                f"({g['frac_le_true']['mean']:.0%} of runs at or below the true final loss)")
        beaten = [k for k in keys if k != "gfm" and cells[k][o][str(n)]["loss_forecast"]["mean"] < gl]
        if beaten:
            line += "; lower task loss than GFM: " + ", ".join(f"`{k}`" for k in beaten)
        out.append(line + ".")
    return out
