"""The tuned comparison shared by the GPU scripts (``tuned_cifar_resnet18.py``, ``tuned_gpt2_small.py``).

Protocol (issue 14's coarse protocol for larger tasks):

1. Tune the plain optimizer's lr on a log2 grid (``--grid-points``, centred on the workload's
   lr) with the workload's schedule (warmup + cosine), ``--seeds`` seeds each; widen the grid
   (at most ``--max-widen`` times) until the best point is interior.
2. The tuned baseline is the grid point with the lowest median best validation loss; the
   target is that median.
3. Every method runs with the tuned baseline's optimizer, lr and schedule at its
   recommended settings (its defaults), on the same seeds.
4. Speedup in steps and in seconds to the target (median over seeds, bootstrap 90%
   interval), validation loss and accuracy at equal budget, worse flags.

Writes ``results.json`` (grid, seeds, every run's curve, command, commit, machine),
``summary.json`` (the issue's shape) and ``table.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.jump import JumpConfig
from gfm_accel.lab.bench import stats
from gfm_accel.lab.bench.curves import RunCurve, run_curve
from gfm_accel.lab.methods import EMA, Jump, Method, build_method

logger = logging.getLogger("tuned_gpu")

#: The base optimizers these scripts use, by the workloads' names.
OPTIMIZERS: dict[str, Callable[[float, float], Callable]] = {
    "adamw": lambda lr, wd: (lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=wd)),
    "sgdm": lambda lr, wd: (lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)),
}

METHODS = ("ema", "lookahead", "schedulefree", "outer_nesterov", "linefit", "gfm")


def add_args(parser: argparse.ArgumentParser) -> None:
    """The options every GPU tuned script shares."""
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--grid-points", type=int, default=5, help="log2 lr grid points (default 5)")
    parser.add_argument("--max-widen", type=int, default=2, help="grid widenings allowed until the best lr is interior")
    parser.add_argument("--steps", type=int, default=None, help="budget in optimizer steps (default: the workload's)")
    parser.add_argument("--eval-every", type=int, default=None, help="validate every N steps (default: steps // 20)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list from {','.join(METHODS)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny CPU smoke run (small model, few steps)")


def _method(name: str, total_steps: int) -> Method:
    if name in ("linefit", "gfm"):
        every = max(1, total_steps // 50)
        cfg = JumpConfig(unit="step", every_n_steps=every, n=4)
        forecaster = LinearExtrapolationForecaster() if name == "linefit" else None  # None: the shipped GFM
        return Jump(forecaster, cfg, name=name)
    if name == "ema":
        return EMA.for_budget(total_steps)  # the library's 0.999 is too slow for short budgets
    return build_method(name)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _machine(device: str) -> dict[str, Any]:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "device": device, "threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _write(path: Path, text: str) -> None:
    """Write atomically: a temporary file beside ``path``, then a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def compare(workload: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run the protocol on ``workload`` and write the three result files; returns the summary dict."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = args.steps or workload.total_steps
    eval_every = args.eval_every or max(1, steps // 20)
    seeds = list(range(args.seeds))
    factory = OPTIMIZERS[workload.optimizer]
    if args.device.startswith("cuda"):
        torch.set_float32_matmul_precision("high")  # TF32 matmuls: the same for every method

    def curve(method: Method, lr: float, seed: int) -> RunCurve:
        c = run_curve(workload.build(seed), method, factory(lr, workload.weight_decay), total_steps=steps,
                      schedule=workload.schedule, warmup=workload.warmup, eval_every=eval_every, device=args.device)
        logger.info("%s lr=%.3g seed=%d: best %.4f final %.4f (%.1f s)", method.NAME, lr, seed,
                    stats.best_loss(c.records), c.final.loss, c.records[-1][1])
        return c

    grid: dict[float, list[RunCurve]] = {}
    lrs = stats.log2_grid(workload.lr, args.grid_points)
    for _ in range(args.max_widen + 1):
        for lr in lrs:
            if lr not in grid:
                grid[lr] = [curve(build_method("plain"), lr, s) for s in seeds]
        choice = stats.choose_baseline(
            [stats.GridPoint(workload.schedule, lr, tuple(stats.best_loss(c.records) for c in cs)) for lr, cs in grid.items()]
        )
        if choice.interior:
            break
        lrs = stats.widen(sorted(grid), choice.widen)
    base = grid[choice.lr]
    target = choice.median
    reach = lambda cs: [stats.time_to_target(c.records, target) for c in cs]  # noqa: E731
    base_reach = reach(base)
    per_method: dict[str, dict[str, stats.TaskResult]] = {}
    rows, runs = [], {}
    for name in [m for m in args.methods.split(",") if m]:
        if name not in METHODS:
            raise SystemExit(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        cs = [curve(_method(name, steps), choice.lr, s) for s in seeds]
        r = reach(cs)
        s_steps = stats.speedup([x.steps for x in base_reach], [x.steps for x in r])
        s_secs = stats.speedup([x.seconds for x in base_reach], [x.seconds for x in r])
        worse = stats.is_worse([c.final.loss for c in base], [c.final.loss for c in cs])
        per_method[name] = {workload.name: stats.TaskResult.from_speedup(s_steps, worse)}
        runs[name] = [c.to_dict() for c in cs]
        rows.append((name, s_steps, s_secs, float(np.median([c.final.loss for c in cs])),
                     float(np.median([c.final.accuracy for c in cs])), sum(x.reached for x in r), worse))
    summary = stats.summary([workload.name], per_method)
    results = {
        "protocol": "tuned", "task": workload.name, "workload": workload.to_dict(), "steps": steps,
        "eval_every": eval_every, "seeds": seeds, "target": target,
        "baseline": {"schedule": choice.schedule, "lr": choice.lr, "interior": choice.interior, "widen": choice.widen,
                     "grid": choice.grid, "reach": [vars(x) for x in base_reach]},
        "grid_runs": {repr(lr): [c.to_dict() for c in cs] for lr, cs in grid.items()},
        "method_runs": runs, "command": [sys.executable] + sys.argv, "commit": _git_commit(),
        "machine": _machine(args.device),
    }
    _write(out / "results.json", json.dumps(results, indent=1))
    _write(out / "summary.json", json.dumps(summary, indent=1))
    base_final = float(np.median([c.final.loss for c in base]))
    base_acc = float(np.median([c.final.accuracy for c in base]))
    lines = [
        f"# Tuned comparison: {workload.name} ({steps} steps, seeds {seeds})",
        "",
        f"Tuned baseline: {workload.optimizer} lr {choice.lr:.3g} with {choice.schedule}"
        f"{'' if choice.interior else f' (NOT interior: widen {choice.widen})'}; target val loss {target:.4f}; "
        f"baseline at the budget: val loss {base_final:.4f}, accuracy {base_acc:.4f}.",
        "Methods at their recommended settings; coarse protocol (issue 14): "
        f"{len(grid)}-point lr grid, warmup+cosine only, {len(seeds)} seeds.",
        "",
        "| method | speedup (steps) [90% CI] | speedup (seconds) [90% CI] | val loss @ budget | val acc @ budget | seeds reached | worse |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s1, s2, loss, acc, reached, worse in rows:
        lines.append(f"| {name} | {s1.speedup:.2f}x [{s1.lo:.2f}, {s1.hi:.2f}] | {s2.speedup:.2f}x [{s2.lo:.2f}, {s2.hi:.2f}] "
                     f"| {loss:.4f} | {acc:.4f} | {reached}/{len(seeds)} | {'yes' if worse else 'no'} |")
    _write(out / "table.md", "\n".join(lines) + "\n")
    return summary
