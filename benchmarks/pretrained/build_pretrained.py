"""Rebuild the forecaster that ships in the package, from scratch.

1. Generates the trajectory zoo (`gfm_accel.lab.zoo`: MLPs and CNNs on sklearn digits,
   a tiny char GPT on stdlib text; SGD, SGD+momentum, Adam, AdamW, RMSprop at two learning
   rates, two seeds; 120 runs x 40 epochs) into `runs/zoo/` unless it is there already.
2. Trains the model-agnostic (coordinate) GFM forecaster on random windows of every zoo
   trajectory (several n, strides and horizons), so it serves any (n, m).
3. Writes `gfm_accel/pretrained/gfm_coordinate.safetensors` with the zoo description, the
   command and the runtime in its metadata, and `benchmarks/results/pretrained/build.json`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pretrained/build_pretrained.py

Runtime on the 2-core CPU machine is recorded in benchmarks/results/pretrained/build.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch

from gfm_accel.lab.bench.common import git_commit
from gfm_accel.forecast.forecaster import GFMForecaster
from gfm_accel.info import machine_line
from gfm_accel.pretrained import PRETRAINED_PATH
from gfm_accel.lab.zoo import ZOO_SEEDS, build_zoo, zoo_runs
from gfm_accel.trajectories import load_trajectories

DEFAULT_OPTIONS = {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("runs/zoo"))
    ap.add_argument("--rebuild-zoo", action="store_true")
    ap.add_argument("--zoo-every-steps", type=int, default=None,
                    help="when (re)building the zoo, record every K optimizer steps instead of every epoch")
    ap.add_argument("--zoo-seeds", default=",".join(map(str, ZOO_SEEDS)),
                    help="comma list of zoo run seeds (with --rebuild-zoo or when the zoo is built)")
    ap.add_argument("--out", type=Path, default=PRETRAINED_PATH)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="coordinate-variant option")
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/pretrained"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    from gfm_accel.forecast.train_cli import parse_options

    seeds = tuple(int(x) for x in args.zoo_seeds.split(",") if x.strip())
    t0 = time.perf_counter()
    files = sorted(args.zoo.glob("zoo_*.safetensors"))
    zoo_seconds = 0.0
    if args.rebuild_zoo or not files:
        args.zoo.mkdir(parents=True, exist_ok=True)
        files = build_zoo(args.zoo, every_steps=args.zoo_every_steps, seeds=seeds)
        zoo_seconds = time.perf_counter() - t0
    data = [load_trajectories(f) for f in files]
    # What the files on disk hold (each zoo file lists its runs), else what the zoo would run.
    runs = [r for t in data for r in t.metadata.get("runs", [])] or [asdict(r) for r in zoo_runs(seeds=seeds)]
    zoo_info = {
        "files": [f.name for f in files],
        "trajectories": sum(t.N for t in data),
        "families": dict(Counter(r["family"] for r in runs)),
        "optimizers": sorted({r["optimizer"] for r in runs}),
        "seeds": sorted({r["seed"] for r in runs}),
        "epochs_per_run": runs[0]["epochs"],
        "snapshot_unit": sorted({str(t.metadata.get("unit", "epoch")) for t in data}),
        "data": {"mlp": "sklearn digits", "cnn": "sklearn digits", "gpt": "Python stdlib source text"},
        "D": {f.name: t.D for f, t in zip(files, data)},
    }
    options = {**DEFAULT_OPTIONS, **parse_options(args.option)}
    command = shlex.join(["python", *sys.argv])
    f = GFMForecaster("coordinate", **options)
    t1 = time.perf_counter()
    f.fit(data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, command=command)
    fit_seconds = time.perf_counter() - t1
    f.provenance["zoo"] = zoo_info
    f.provenance["built_by"] = "benchmarks/pretrained/build_pretrained.py"
    f.provenance["git_commit"] = git_commit()
    f.provenance["machine"] = machine_line()
    path = f.save(args.out)
    size = path.stat().st_size
    record = {
        "command": command, "machine": machine_line(), "git_commit": git_commit(),
        "zoo_seconds": round(zoo_seconds, 1), "fit_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - t0, 1), "file": str(path), "file_bytes": size,
        "config": f.backend.config_dict(), "final_loss": f.history[-1] if f.history else None, "zoo": zoo_info,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("zoo_seconds", "fit_seconds", "file", "file_bytes", "final_loss")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
