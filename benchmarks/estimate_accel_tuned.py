"""Estimate the wall time of the full tuned protocol (``bench accel --protocol tuned``) from measured run times.

Per-run seconds come from two measurements on this machine:

- the ``--quick`` run's ``results.json`` (half budgets on its three tasks, scaled to the full
  budget): the median run time of every (task, method), hence each method's cost relative
  to plain on that task;
- one plain run of every other task, timed here at a quarter of its budget (scaled by 4).

A method's run on a task not in the quick run costs the task's plain run times the method's
median cost ratio over the quick tasks. The run counts are the full plan's
(:func:`gfm_accel.lab.bench.accel_tuned.build_plan`): the baseline grid (plus ``widen``
expected widenings of one point per schedule-grid seed), the target seeds, every method's
recipe row, the competitors' grids and tuned rows (minus nothing: a tuned point equal to the
recipe is still counted). Total worker-seconds are divided by the worker count.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/estimate_accel_tuned.py \\
        --quick-results benchmarks/results/accel_tuned_quick/results.json --out benchmarks/results/accel_tuned_estimate
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from gfm_accel.lab.bench.accel_tuned import COMPETITORS, _eval_every, _factory, build_plan
from gfm_accel.lab.bench.common import write_script_result
from gfm_accel.lab.bench.curves import run_curve
from gfm_accel.lab.methods import METHODS, build_method


def _plain_seconds(w, fraction: int = 4) -> float:
    short = replace(w, total_steps=max(1, w.total_steps // fraction))
    t0 = time.perf_counter()
    run_curve(short.build(0), build_method("plain"), _factory(short, "plain", short.lr), total_steps=short.total_steps,
              schedule="warmup_cosine", warmup=short.warmup, eval_every=_eval_every(w))
    return (time.perf_counter() - t0) * w.total_steps / short.total_steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick-results", type=Path, default=Path("benchmarks/results/accel_tuned_quick/results.json"))
    p.add_argument("--widen", type=float, default=1.0, help="expected widenings per task (one lr, grid seeds)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/accel_tuned_estimate"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    record = json.loads(args.quick_results.read_text())
    quick = record["results"]["timing"]
    quick_steps = {w["name"]: w["total_steps"] for w in record["config"]["plan"]["workloads"]}
    ratios = {m: statistics.median(t[m]["median_seconds"] / t["plain"]["median_seconds"] for t in quick.values())
              for m in next(iter(quick.values())) if m != "plain"}
    plan = build_plan()
    lines, total, per_task = [], 0.0, {}
    for w in plan.workloads:
        grid_seeds, report = plan.seeds(w.name)
        if w.name in quick:
            scale = w.total_steps / quick_steps[w.name]  # the quick run has half budgets
            plain, source = quick[w.name]["plain"]["median_seconds"] * scale, f"quick run x {scale:g}"
            cost = {m: quick[w.name][m]["median_seconds"] * scale for m in quick[w.name]}
        else:
            plain, source = _plain_seconds(w), "timed here at 1/4 budget"
            cost = {"plain": plain, **{m: plain * r for m, r in ratios.items()}}
        n_grid = (plan.task_points(w.name) * len(plan.task_schedules(w.name)) + args.widen) * len(grid_seeds)
        seconds = (n_grid + len(report)) * cost["plain"]
        for m in plan.methods:
            seconds += len(report) * cost[m]
            if plan.tune_methods and m in COMPETITORS and w.name not in plan.coarse:
                seconds += len(METHODS[m].grid()) * (len(grid_seeds) * cost[m]) + len(report) * cost[m]
        per_task[w.name] = {"plain_run_seconds": plain, "source": source, "worker_seconds": seconds}
        total += seconds
        lines.append(f"{w.name:20s} plain run {plain:7.2f} s ({source}); {seconds / 60:7.1f} worker-min")
    wall = total / plan.workers
    lines.append(f"method cost / plain (median over the quick tasks): "
                 + ", ".join(f"{m} {r:.2f}" for m, r in sorted(ratios.items())))
    lines.append(f"total {total / 3600:.2f} worker-hours -> {wall / 3600:.2f} h wall on {plan.workers} workers")
    print("\n".join(lines))
    write_script_result(args.out, lines, {"per_task": per_task, "ratios": ratios, "worker_seconds": total,
                                          "wall_hours": wall / 3600, "workers": plan.workers, "argv": sys.argv[1:]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
