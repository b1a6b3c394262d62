"""Claim: one WeightRecorder snapshot costs within 2x of a bare torch.cat of the same
parameters, and uses no memory beyond the snapshot itself.

Prints, for MLPs of ~1M, 10M and 100M parameters: the median time of one snapshot
(WeightRecorder.record, float32, CPU) and of `torch.cat([p.detach().reshape(-1) ...])`,
and the resident-memory growth of holding one snapshot, beside its size D*4 bytes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_recorder.py [--out benchmarks/results/recorder]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from gfm_accel import WeightRecorder
from gfm_accel.info import machine_line

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def model_of(n_params: int, width: int = 1024) -> nn.Module:
    layers = max(1, round(n_params / (width * width + width)))
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7,1e8")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        model = model_of(size)
        D = sum(p.numel() for p in model.parameters())
        rec = WeightRecorder(model, record_initial=False, keep=1)
        params = [p for p in model.parameters()]
        bare = lambda: torch.cat([p.detach().reshape(-1) for p in params])  # noqa: E731
        step = iter(range(1, 10**9))
        t_rec = timed(lambda: rec.record(next(step)), args.repeats)
        t_cat = timed(bare, args.repeats)
        # memory: growth of RSS when one more snapshot is held
        rec2 = WeightRecorder(model, record_initial=False)
        gc.collect()
        before = rss()
        rec2.record(1)
        grown = rss() - before
        del rec2
        gc.collect()
        before = rss()
        held = bare()
        grown_cat = rss() - before
        del held
        row = {
            "D": D, "snapshot_ms": t_rec * 1e3, "bare_cat_ms": t_cat * 1e3, "ratio": t_rec / t_cat,
            "snapshot_MB": D * 4 / 2**20, "rss_growth_MB": grown / 2**20, "bare_cat_rss_growth_MB": grown_cat / 2**20,
        }
        rows.append(row)
        print(
            f"D={D:>11,d}  recorder {row['snapshot_ms']:8.1f} ms  bare cat {row['bare_cat_ms']:8.1f} ms  "
            f"ratio {row['ratio']:.2f}x  | snapshot {row['snapshot_MB']:7.1f} MB, RSS growth {row['rss_growth_MB']:7.1f} MB "
            f"(bare cat {row['bare_cat_rss_growth_MB']:7.1f} MB)",
            flush=True,
        )
        del model, rec, params
        gc.collect()
    ok = all(r["ratio"] <= 2.0 for r in rows)
    mem_ok = all(r["rss_growth_MB"] <= 1.05 * r["snapshot_MB"] + 1 for r in rows)
    print(f"target time <= 2x bare cat: {'met' if ok else 'NOT met'}; memory <= snapshot size (+5%): {'met' if mem_ok else 'NOT met'}")
    print(machine_line())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine_line(),
            "rows": rows, "time_target_met": ok, "memory_target_met": mem_ok}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
