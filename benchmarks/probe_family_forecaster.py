"""Probe: a GFM forecaster trained on a small sweep of the user's own task, against the line.

The shipped forecaster is trained on a zoo of *other* families (digits MLPs/CNNs, a char GPT);
on the held-out tasks it loses to a training-free least-squares line. In the paper's setting
the forecaster is trained on trajectories of the family it forecasts. This probe measures
that setting: for each held-out task it

1. records a small "sweep" of the same task: learning rate x {0.5, 1, 2}, run seeds 100 and
   101 (never the benchmark's pair seeds), a snapshot every 5 optimizer steps
   (:class:`~gfm_accel.recorder.WeightRecorder`), saved as a trajectory file;
2. trains the coordinate GFM on those 6 runs with the shipped recipe (8 steps per epoch, so
   the shipped 8,000 steps);
3. runs schedule A pairs (plain vs GFMJump with that forecaster), seeds 0-2, and prints the
   same per-task lines as ``probe_accel_guard.py``, with the sweep's and the fit's seconds.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/probe_family_forecaster.py [--tasks heldout,validation,test]
        [--seeds 0,1,2] [--work runs/family]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from gfm_accel import GFMForecaster, WeightRecorder, load_trajectories, save_trajectories  # noqa: E402
from gfm_accel.lab.bench.accel import expand_task_names, probe_line, probe_task  # noqa: E402
from gfm_accel.lab.tasks.accel import ALL_TASKS, AccelTask, train_run  # noqa: E402
from gfm_accel.jump import GFMJump  # noqa: E402
from gfm_accel.lab.jumps import jump_config  # noqa: E402

SCHEDULE_A = dict(mode="periodic", unit="step", every_n_steps=5, n=4, horizon=10, every=5, tolerance=0.3,
                  optimizer_state="keep")
LR_FACTORS = (0.5, 1.0, 2.0)
SWEEP_SEEDS = (100, 101)


def record_sweep(task: AccelTask, path: Path, every: int = 5) -> Path:
    """Train the task at each (lr factor, sweep seed) and save the step snapshots to ``path``."""
    runs, spec = [], None
    for factor in LR_FACTORS:
        for seed in SWEEP_SEEDS:
            holder: dict[str, WeightRecorder] = {}

            def start(model, epoch, holder=holder):
                if epoch == 0:
                    holder["rec"] = WeightRecorder(model, every=every)

            train_run(dataclasses.replace(task, lr=task.lr * factor), seed, record_fn=start,
                      step_fn=lambda model, holder=holder: holder["rec"].on_step())
            runs.append(holder["rec"].weights())
            spec = holder["rec"].spec
    t = min(w.shape[0] for w in runs)
    return save_trajectories(path, torch.stack([w[:t] for w in runs]), spec=spec, task=f"sweep/{task.name}",
                             unit=f"{every} steps", lr_factors=list(LR_FACTORS), seeds=list(SWEEP_SEEDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="heldout,validation,test")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--work", type=Path, default=Path("runs/family"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    args.work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    means, worse = [], 0
    for name in expand_task_names(args.tasks.split(",")):
        task = ALL_TASKS[name]
        t0 = time.perf_counter()
        data = record_sweep(task, args.work / f"{name}_sweep.safetensors")
        t_rec = time.perf_counter() - t0
        fc = GFMForecaster("coordinate", steps_per_epoch=8)
        t0 = time.perf_counter()
        fc.fit([load_trajectories(data)], seed=0, progress=False)
        t_fit = time.perf_counter() - t0
        fc.save(args.work / f"{name}_gfm.safetensors")
        res = probe_task(task, seeds, lambda: GFMJump(fc, config=jump_config(**SCHEDULE_A)), method="gfm_family")
        means.append(sum(res["best"]) / len(res["best"]))
        worse += sum(res["dloss"]) > 0
        print(probe_line(name, res, width=18) + f"  (sweep {t_rec:.0f} s, fit {t_fit:.0f} s)", flush=True)
    print(f"family GFM, schedule A: mean {sum(means) / len(means):.2f}x over {len(means)} tasks, tasks worse @B {worse}/{len(means)}")


if __name__ == "__main__":
    main()
