"""Claim: neuron interaction (``pooled=1``) keeps the coordinate forecaster's inference budget:
a forecast of a 10M-parameter prefix (n = 4) in <= 5 s wall with <= 1 GB of extra peak memory
on one CPU thread, as ``pooled=0`` (bench_coordinate.py).

What it does (fixed seeds, nothing downloaded, no training: the pooled maps are given random
weights so every term is computed as a trained field would):

1. builds a ParamSpec of about ``--params`` parameters as a stack of square linear layers with
   biases (``--layers`` of them, so the layers are adjacent and every pooled term is live);
2. a random-walk prefix ``w_0..w_4`` of that size;
3. for each ``--pooled`` value, one warm-up then ``--trials`` timed forecasts to ``m = 199``:
   wall and CPU seconds, and the extra peak resident memory over the memory before the call
   (``VmHWM`` reset through ``/proc/self/clear_refs``; NaN where the kernel refuses).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pooled_context.py [--params 10000000]
        [--pooled 0 1 2] [--trials 3] [--out results.json]

The target is for the full size (the default ``--params 10000000``); smaller sizes are a
smoke test of the script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch

from bench_coordinate import timed_forecasts  # the one timing and peak-memory probe of the benchmarks
from gfm_accel.forecast.coordinate import CoordinateBackend
from gfm_accel.info import machine_line
from gfm_accel.params import ParamEntry, ParamSpec


def linear_stack(params: int, layers: int) -> ParamSpec:
    """``layers`` square ``(w, w)`` linear layers with biases, ``w`` chosen for ~``params`` in all."""
    width = max(2, int(math.sqrt(params / layers)))
    entries, off = [], 0
    for i in range(layers):
        for name, shape, kind in ((f"l{i}.weight", (width, width), "weight"), (f"l{i}.bias", (width,), "bias")):
            n = math.prod(shape)
            entries.append(ParamEntry(name=name, shape=shape, dtype="float32", offset=off, numel=n, kind=kind))
            off += n
    return ParamSpec(tuple(entries))


def measure(backend: CoordinateBackend, prefix: torch.Tensor, spec: ParamSpec, trials: int) -> dict:
    backend.forecast(prefix, 199, spec)  # warm-up (allocator, first-call costs)
    times, cpu, extras = timed_forecasts(backend, prefix, spec, trials)
    return {
        "seconds_mean": statistics.mean(times),
        "seconds_std": statistics.pstdev(times),
        "cpu_seconds_mean": statistics.mean(cpu),
        "extra_peak_rss_MB_max": max(extras) / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=int, default=10_000_000, help="size of the forecast vector D (about)")
    ap.add_argument("--layers", type=int, default=10, help="square linear layers in the stack")
    ap.add_argument("--pooled", type=int, nargs="+", default=[0, 1], help="pooled values to time")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    spec = linear_stack(args.params, args.layers)
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(spec.numel, generator=g) * 0.03
    steps = torch.randn(4, spec.numel, generator=g) * 1e-3
    prefix = torch.cat([w0.unsqueeze(0), w0 + torch.cumsum(steps, 0)]).contiguous()  # (5, D)
    del steps, w0
    results = {"command": " ".join([sys.executable, *sys.argv]), "machine": machine_line(),
               "load_average": os.getloadavg(), "threads": torch.get_num_threads(), "D": spec.numel,
               "tensors": len(spec), "n": 4, "output_MB": spec.numel * 4 / 2**20, "runs": {}}
    for pooled in args.pooled:
        backend = CoordinateBackend(pooled=pooled)
        with torch.no_grad():  # random pooled maps: a fresh field's are zero (all terms still computed)
            for name in ("pool_in", "pool2_in"):
                if hasattr(backend.net, name):
                    w = getattr(backend.net, name).weight
                    w.copy_(torch.randn(w.shape, generator=g) * 0.1)
        r = measure(backend, prefix, spec, args.trials)
        results["runs"][str(pooled)] = r
        print(f"pooled={pooled}: D={spec.numel} ({len(spec)} tensors), n=4, {results['threads']} thread(s): "
              f"{r['seconds_mean']:.2f} s +- {r['seconds_std']:.2f} wall, {r['cpu_seconds_mean']:.2f} s CPU, "
              f"extra peak RSS {r['extra_peak_rss_MB_max']:.0f} MB (output vector {results['output_MB']:.0f} MB)",
              flush=True)
    print(f"load average {results['load_average']}; {results['machine']}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
