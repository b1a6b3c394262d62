"""Probe: how the guard's tolerance and the snapshot unit change the held-out speedups.

Runs every held-out task of ``gfm-accel bench accel`` (seeds 0-2) under periodic jumps with
K = 10 ahead every P = 5 snapshots, for several forecasters, guard tolerances and snapshot
units, and prints one block per configuration: the mean speedup to the plain run's best
val loss over tasks (a target not reached counts as plain epochs / B), and per task the
per-seed speedups, the speedups to the B/4 and B/2 losses, the val-loss change at B
(jump - plain) and the guard's accept rate.

This is how the benchmark's main schedule (``steps=5, tol=0.3, opt=keep``) was chosen;
``benchmarks/results/accel/probe_guard_and_steps/`` holds its output.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/probe_accel_guard.py [--seeds 0,1,2] [--only "NAME;NAME"]
        [--forecaster F.safetensors] [--tasks heldout,validation]
"""

from __future__ import annotations

import argparse
import logging
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from gfm_accel.lab.bench.accel import expand_task_names, probe_line, probe_task  # noqa: E402
from gfm_accel.lab.forecasters import make_forecaster  # noqa: E402
from gfm_accel.lab.jumps import jump_config  # noqa: E402
from gfm_accel.lab.tasks.accel import ALL_TASKS  # noqa: E402
from gfm_accel.jump import GFMJump  # noqa: E402

EPOCH = dict(mode="periodic", n=4, horizon=10, every=5)
STEP = dict(EPOCH, unit="step", every_n_steps=5)
CONFIGS = {
    # name: (forecaster, jump options)
    "gfm epoch tol=0.01 reset (old main)": ("gfm", dict(EPOCH, tolerance=0.01, optimizer_state="reset")),
    "gfm epoch tol=0 keep": ("gfm", dict(EPOCH, tolerance=0.0, optimizer_state="keep")),
    "gfm epoch tol=0.3 keep": ("gfm", dict(EPOCH, tolerance=0.3, optimizer_state="keep")),
    "linefit epoch tol=0.01 reset": ("linefit", dict(EPOCH, tolerance=0.01, optimizer_state="reset")),
    "linefit epoch tol=0.3 keep": ("linefit", dict(EPOCH, tolerance=0.3, optimizer_state="keep")),
    "gfm epoch no guard alpha=0.5 keep": ("gfm", dict(EPOCH, guard=False, alpha=0.5, optimizer_state="keep")),
    "linefit epoch no guard alpha=1 keep": ("linefit", dict(EPOCH, guard=False, alpha=1.0, optimizer_state="keep")),
    "gfm step5 tol=0.01 keep": ("gfm", dict(STEP, tolerance=0.01, optimizer_state="keep")),
    "gfm step5 tol=0.1 keep": ("gfm", dict(STEP, tolerance=0.1, optimizer_state="keep")),
    "gfm step5 tol=0.3 keep (new main)": ("gfm", dict(STEP, tolerance=0.3, optimizer_state="keep")),
    "gfm step5 tol=0.3 reset": ("gfm", dict(STEP, tolerance=0.3, optimizer_state="reset")),
    "linefit step5 tol=0.3 keep": ("linefit", dict(STEP, tolerance=0.3, optimizer_state="keep")),
    "linear step5 tol=0.3 keep": ("linear", dict(STEP, tolerance=0.3, optimizer_state="keep")),
    "avg(gfm, linefit) step5 tol=0.3 keep": ("avg", dict(STEP, tolerance=0.3, optimizer_state="keep")),
    "gfm step5 tol=0.3 keep alpha=0.5": ("gfm", dict(STEP, tolerance=0.3, optimizer_state="keep", alpha=0.5)),
    "linefit step5 tol=0.3 keep alpha=0.5": ("linefit", dict(STEP, tolerance=0.3, optimizer_state="keep", alpha=0.5)),
    # a doubled first candidate, then the usual ones: fractions 2, 1, 0.5, 0.25
    "gfm step5 tol=0.3 keep alpha=2": ("gfm", dict(STEP, tolerance=0.3, optimizer_state="keep", alpha=2.0,
                                                   alphas=(1.0, 0.5, 0.25, 0.125))),
    "linefit step5 tol=0.3 keep alpha=2": ("linefit", dict(STEP, tolerance=0.3, optimizer_state="keep", alpha=2.0,
                                                           alphas=(1.0, 0.5, 0.25, 0.125))),
    "gfm step5 tol=0.15 keep alpha=2": ("gfm", dict(STEP, tolerance=0.15, optimizer_state="keep", alpha=2.0,
                                                    alphas=(1.0, 0.5, 0.25, 0.125))),
    "gfm step5 tol=0.3 keep alpha=1.5": ("gfm", dict(STEP, tolerance=0.3, optimizer_state="keep", alpha=1.5,
                                                     alphas=(1.0, 2 / 3, 1 / 3, 1 / 6))),
}


class _Average:
    """The mean of two forecasters' predictions (a probe, not a product forecaster)."""

    expected_dim = None

    def __init__(self, a, b) -> None:
        self.a, self.b = a, b

    def forecast(self, prefix, m, *, spec=None):
        return 0.5 * (self.a.forecast(prefix, m, spec=spec) + self.b.forecast(prefix, m, spec=spec))


def _forecaster(method: str, path: str | None):
    if method == "avg":
        return _Average(make_forecaster("gfm", n=4, m=14, forecaster_path=path), make_forecaster("linefit", n=4, m=14))
    return make_forecaster(method, n=4, m=14, forecaster_path=path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default=None, help="';'-separated configuration names (default all)")
    parser.add_argument("--forecaster", default=None, help="a GFM forecaster file to use as 'gfm' (default: the shipped one)")
    parser.add_argument("--tasks", default="heldout",
                        help="comma list of task names or sets ('heldout', 'validation', 'test'); default heldout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.only.split(";") if args.only else list(CONFIGS)
    tasks = {t: ALL_TASKS[t] for t in expand_task_names(args.tasks.split(","))}
    plain = {}
    for name in names:
        method, opts = CONFIGS[name]
        fc = _forecaster(method, args.forecaster)
        t0 = time.time()
        means, worse, lines = [], 0, []
        for tn, task in tasks.items():
            res = probe_task(task, seeds, lambda: GFMJump(fc, config=jump_config(**opts)), method=method, plain=plain)
            means.append(sum(res["best"]) / len(res["best"]))
            worse += sum(res["dloss"]) > 0
            lines.append(probe_line(tn, res))
        print(f"{name}: mean {sum(means) / len(means):.2f}x, tasks worse @B {worse}/{len(tasks)} ({time.time() - t0:.0f} s)")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
