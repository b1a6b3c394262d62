"""Claim: the batched linreg generator runs the paper's full protocol (5 optimizers x 5 seeds
x 50 trajectories x 199 updates) >= 10x faster than a one-trajectory-at-a-time loop with
the same numbers, and in <= 15 s on a 2-core CPU.

Method: for each (optimizer, seed) the tasks are drawn once; the batched trainer runs all
50 trajectories as one ``(50, 2)`` parameter; the reference loop trains each trajectory
alone with its own optimizer. The loop is timed on ``--loop-subset`` trajectories per
(optimizer, seed) and extrapolated linearly to 50 (it is a plain loop, so its cost is
linear in N; the output says so); the batched protocol is timed in full, ``--trials``
times (mean and std). Equality: max |batched - loop| over every trajectory the loop ran.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_generate.py [--trials 3] [--loop-subset 5] [--save]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from gfm_accel.lab.generate.linreg import (  # noqa: E402
    RegressionConfig,
    sample_regression_tasks,
    train_linreg_batched,
    train_linreg_sequential,
)
from gfm_accel.lab.optim import PAPER_OPTIMIZERS as OPTIMIZERS  # noqa: E402
from gfm_accel.info import machine_line  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--loop-subset", type=int, default=5, help="trajectories per (optimizer, seed) the loop runs")
    ap.add_argument("--trajectories", type=int, default=50)
    ap.add_argument("--save", action="store_true", help="write the output to benchmarks/results/generate/")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = RegressionConfig(n_trajectories=args.trajectories)
    lines = [f"# bench_generate: linreg protocol {len(OPTIMIZERS)} optimizers x {len(SEEDS)} seeds x "
             f"{cfg.n_trajectories} trajectories x {cfg.steps} updates",
             f"# command: OMP_NUM_THREADS=1 python {' '.join(sys.argv)}",
             f"# machine: {machine_line()}; load average {os.getloadavg()[0]:.1f} (CPU shared with other jobs)",
             f"# config: {cfg.to_json()}"]

    def say(s: str) -> None:
        lines.append(s)
        print(s, flush=True)

    for line in lines:
        print(line)
    tasks = {s: sample_regression_tasks(cfg, s) for s in SEEDS}
    # Warm-up (allocator, first-call dispatch).
    train_linreg_batched(tasks[0], "adam")

    batched_times, results = [], {}
    for trial in range(args.trials):
        t0 = time.perf_counter()
        for opt in OPTIMIZERS:
            for s in SEEDS:
                results[opt, s] = train_linreg_batched(tasks[s], opt).weights
        batched_times.append(time.perf_counter() - t0)
    b_mean = statistics.mean(batched_times)
    b_std = statistics.stdev(batched_times) if len(batched_times) > 1 else 0.0
    say(f"batched full protocol: {b_mean:.2f} s +- {b_std:.2f} (n={args.trials} trials)")

    k = min(args.loop_subset, cfg.n_trajectories)
    max_diff, t_loop = 0.0, 0.0
    for opt in OPTIMIZERS:
        for s in SEEDS:
            t0 = time.perf_counter()
            ref = train_linreg_sequential(tasks[s], opt, indices=range(k)).weights
            t_loop += time.perf_counter() - t0
            max_diff = max(max_diff, float((ref - results[opt, s][:k]).abs().max()))
    loop_full = t_loop * cfg.n_trajectories / k
    say(f"one-at-a-time loop: {t_loop:.2f} s for {k} of {cfg.n_trajectories} trajectories per file, "
        f"extrapolated (linear in N) to the full protocol: {loop_full:.1f} s")
    say(f"max |batched - loop| over {k * len(OPTIMIZERS) * len(SEEDS)} trajectories x {cfg.steps + 1} steps: {max_diff:.3e}")
    ratio = loop_full / b_mean
    ok_eq = max_diff <= 1e-5
    say(f"speed-up: {ratio:.1f}x (target >= 10x: {'PASS' if ratio >= 10 else 'FAIL'}); "
        f"full protocol {b_mean:.2f} s (target <= 15 s: {'PASS' if b_mean <= 15 else 'FAIL'}); "
        f"equal within 1e-5: {'PASS' if ok_eq else 'FAIL'}")
    if args.save:
        out = Path(__file__).resolve().parent / "results" / "generate"
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_generate.txt").write_text("\n".join(lines) + "\n")
        print(f"saved {out / 'bench_generate.txt'}")
    return 0 if (ratio >= 10 and ok_eq) else 1


if __name__ == "__main__":
    sys.exit(main())
