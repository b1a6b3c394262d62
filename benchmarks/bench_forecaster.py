"""Claim: the dense (paper) GFM forecaster trains on a Table 1 split (30 linreg trajectories,
D = 2, 1000 epochs) in <= 20 s on this CPU and beats last value / linear extrapolation on the
linreg forecast w_4 -> w_199; the coordinate forecaster forecasts a 10M-parameter prefix
(n = 4) in <= 5 s with <= 1 GB of extra memory. Also prints the train/test forecast MSE of
every variant (dense: condition none|prefix x path paper|from_last; coordinate) so the
ambiguous choices of the paper are decided by numbers.

Protocol (fixed seeds, data generated inline, nothing downloaded):

* Data: for each optimizer (sgd, adam, rmsprop, adamw, adagrad) and seed, 50 linreg
  trajectories of 199 full-batch steps (``gfm_accel.lab.generate.linreg``, paper App. B; an inline
  fallback if that module is missing), split 30 train / 20 test as in Sec. 5.1.
* Dense variants: one forecaster per (optimizer, seed, variant), paper hyperparameters
  (beta = gamma = 1, zeta = 100, Adam 1e-4, batch 16, ``--epochs`` 1000), n = 4, m = 199.
* Coordinate variant: one forecaster per seed, trained on the train splits of *all*
  optimizers (it is model-agnostic; ``--coord-epochs`` epochs of its window training),
  evaluated on each optimizer's splits.
* MSE: mean over trajectories and the 2 coordinates of ``(w_hat_199 - w_199)^2``; reported as
  mean (std) over seeds.
* Speed: dense fit wall and CPU seconds (after one warm-up fit, which also pays torch's
  one-time optimizer import), ``--speed-trials`` trials; dense forecast of 20 trajectories;
  coordinate forecast of a (5, 10M) prefix in a fresh subprocess, extra peak RSS measured
  there. The 1-minute load average is printed beside the timings: other jobs share the CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_forecaster.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from gfm_accel.forecast import GFMForecaster, LastValueForecaster, LinearExtrapolationForecaster
from gfm_accel.info import machine_line

OPTIMIZERS = ("sgd", "adam", "rmsprop", "adamw", "adagrad")
DENSE_VARIANTS = {
    "dense none/paper (paper)": dict(condition="none", path="paper"),
    "dense prefix/paper": dict(condition="prefix", path="paper"),
    "dense none/from_last": dict(condition="none", path="from_last"),
    "dense prefix/from_last": dict(condition="prefix", path="from_last"),
}
N, M = 4, 199
LINES: list[str] = []


def log(msg: str = "") -> None:
    print(msg, flush=True)
    LINES.append(msg)


def linreg(optimizer: str, seed: int) -> torch.Tensor:
    """(50, 200, 2) linreg trajectories (paper App. B)."""
    try:
        from gfm_accel.lab.generate.linreg import RegressionConfig, sample_regression_tasks, train_linreg_batched
    except ImportError:  # inline fallback: same protocol, fewer options
        g = torch.Generator().manual_seed(seed)
        a = 2 + 0.1 * torch.randn(50, 1, generator=g)
        b = 1 + 0.1 * torch.randn(50, 1, generator=g)
        x = torch.rand(50, 100, generator=g) * 2 - 1
        y = a * x + b + 0.1**0.5 * torch.randn(50, 100, generator=g)
        w = torch.randn(50, 2, generator=g).requires_grad_()
        lr = 0.1 if optimizer == "adagrad" else 0.01
        opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
               "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad}[optimizer]([w], lr=lr)
        out = [w.detach().clone()]
        for _ in range(199):
            loss = ((w[:, :1] * x + w[:, 1:] - y) ** 2).mean(1).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(w.detach().clone())
        return torch.stack(out, 1)
    return train_linreg_batched(sample_regression_tasks(RegressionConfig(), seed=seed), optimizer).weights


def mse(forecaster, w: torch.Tensor) -> float:
    return float(((forecaster.forecast(w[:, : N + 1], M) - w[:, M]) ** 2).mean())


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ({statistics.stdev(values):.4f})"


COORD_SPEED = r"""
import resource, sys, time, torch
torch.set_num_threads(1)
from gfm_accel.forecast import GFMForecaster
d = int(sys.argv[1])
prefix = torch.randn(5, d) * 0.01 + torch.linspace(0, 1, 5)[:, None]
f = GFMForecaster("coordinate", n=4, m=199)
f.forecast(prefix[:, :1000])  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); c0 = time.process_time()
out = f.forecast(prefix)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(wall, cpu, (peak - base) / 1024, float(out.abs().mean()))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=1000, help="dense epochs (paper: 1000)")
    p.add_argument("--coord-epochs", type=int, default=100, help="coordinate variant epochs")
    p.add_argument("--speed-trials", type=int, default=3)
    p.add_argument("--coord-dim", type=int, default=10_000_000)
    p.add_argument("--skip-coordinate", action="store_true")
    p.add_argument("--quick", action="store_true", help="1 optimizer, 1 seed, 100 epochs, 1M coordinates")
    p.add_argument("--out", default="benchmarks/results/forecaster")
    args = p.parse_args()
    torch.set_num_threads(1)
    optimizers = args.optimizers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        optimizers, seeds, args.epochs, args.coord_epochs, args.speed_trials = optimizers[:1], seeds[:1], 100, 5, 1
        args.coord_dim = 1_000_000
    command = shlex.join(["python", *sys.argv])
    log(f"# {command}")
    log(f"# {machine_line()}")
    results: dict = {"command": command, "machine": machine_line(), "args": vars(args), "mse": {}, "speed": {}}

    # ---------------------------------------------------------------- data
    t0 = time.perf_counter()
    data = {(o, s): linreg(o, s) for o in optimizers for s in seeds}
    log(f"data: {len(data)} files of (50, 200, 2) in {time.perf_counter() - t0:.1f} s")

    # ---------------------------------------------------------------- speed (dense)
    tr = data[(optimizers[0], seeds[0])][:30]
    GFMForecaster(n=N, m=M).fit(tr, epochs=5, progress=False)  # warm-up: torch's one-time imports
    walls, cpus = [], []
    for trial in range(args.speed_trials):
        w0, c0 = time.perf_counter(), time.process_time()
        f = GFMForecaster(n=N, m=M).fit(tr, epochs=args.epochs, seed=trial, progress=False)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    te = data[(optimizers[0], seeds[0])][30:]
    w0 = time.perf_counter()
    for _ in range(10):
        f.forecast(te[:, : N + 1], M)
    fc_ms = (time.perf_counter() - w0) / 10 * 1e3
    load = os.getloadavg()[0]
    log(f"dense fit, 30 trajectories, D=2, {args.epochs} epochs, batch 16: wall {fmt(walls)} s, CPU {fmt(cpus)} s "
        f"(target <= 20 s; load avg {load:.1f} on {os.cpu_count()} cores)")
    log(f"dense forecast, 20 trajectories, Euler h=1/199 (195 steps): {fc_ms:.1f} ms")
    results["speed"]["dense_fit_wall_s"] = walls
    results["speed"]["dense_fit_cpu_s"] = cpus
    results["speed"]["dense_forecast_ms"] = fc_ms
    results["speed"]["load_avg"] = load

    # ---------------------------------------------------------------- speed (coordinate)
    if not args.skip_coordinate:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", COORD_SPEED, str(args.coord_dim)], capture_output=True, text=True,
                             env=env)
        if out.returncode == 0:
            wall, cpu, extra_mb, _ = (float(v) for v in out.stdout.split()[-4:])
            log(f"coordinate forecast, prefix (5, {args.coord_dim:,}): wall {wall:.2f} s, CPU {cpu:.2f} s, extra peak RSS "
                f"{extra_mb:.0f} MB (targets <= 5 s, <= 1024 MB; load avg {os.getloadavg()[0]:.1f})")
            results["speed"]["coordinate_forecast"] = {"D": args.coord_dim, "wall_s": wall, "cpu_s": cpu,
                                                       "extra_peak_rss_mb": extra_mb}
        else:
            log(f"coordinate forecast timing failed: {out.stderr.strip().splitlines()[-1:]}")

    # ---------------------------------------------------------------- MSE
    table: dict[str, dict[str, dict[str, list[float]]]] = {}

    def record(name: str, opt: str, split: str, value: float) -> None:
        table.setdefault(name, {}).setdefault(opt, {}).setdefault(split, []).append(value)

    coord = {}
    if not args.skip_coordinate:
        for s in seeds:
            w0 = time.perf_counter()
            coord[s] = GFMForecaster("coordinate", n=N, m=M).fit([data[(o, s)][:30] for o in optimizers],
                                                                 epochs=args.coord_epochs, seed=s, progress=False)
            log(f"coordinate fit (seed {s}, {30 * len(optimizers)} trajectories, {args.coord_epochs} epochs): "
                f"{time.perf_counter() - w0:.1f} s")
    for o in optimizers:
        for s in seeds:
            w = data[(o, s)]
            splits = {"train": w[:30], "test": w[30:]}
            for name, fc in (("last value", LastValueForecaster()), ("linear extrapolation", LinearExtrapolationForecaster())):
                for split, ws in splits.items():
                    record(name, o, split, mse(fc, ws))
            for name, kw in DENSE_VARIANTS.items():
                f = GFMForecaster(n=N, m=M, **kw).fit(splits["train"], epochs=args.epochs, seed=s, progress=False)
                for split, ws in splits.items():
                    record(name, o, split, mse(f, ws))
            if s in coord:
                for split, ws in splits.items():
                    record("coordinate (all optimizers)", o, split, mse(coord[s], ws))
        log(f"{o}: done")
    log()
    log(f"Forecast MSE of w_{M} from w_0..w_{N}, mean (std) over seeds {seeds}; train = the 30 fitted trajectories, "
        f"test = 20 held out")
    header = f"{'model':30s} {'split':5s} " + " ".join(f"{o:>16s}" for o in optimizers)
    log(header)
    for name, per_opt in table.items():
        for split in ("train", "test"):
            log(f"{name:30s} {split:5s} " + " ".join(f"{fmt(per_opt[o][split]):>16s}" for o in optimizers))
    results["mse"] = table

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "output.txt").write_text("\n".join(LINES) + "\n")
    log(f"wrote {out_dir}/results.json and output.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
