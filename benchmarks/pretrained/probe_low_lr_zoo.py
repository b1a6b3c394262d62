"""Probe (not the shipped recipe): the zoo plus a third, low learning rate per optimizer.

Builds the zoo's 60 low-learning-rate runs (the lower zoo lr / 5 for every optimizer: SGD 0.01,
SGD+momentum 0.002, Adam and AdamW 2e-4, RMSprop 6e-5; seeds 0 and 1) into ``--out`` as
``zoo_<arch>_low_s<seed>.safetensors`` and links the existing zoo files (``--zoo``) beside them,
so that ``build_pretrained.py --zoo OUT`` trains on all 180 runs. The question it answered
(``benchmarks/results/accel/probe_low_lr_zoo/``): does GFM under-shoot on budget-limited
held-out runs because every zoo run converges within its 40 epochs?

Usage:
    OMP_NUM_THREADS=1 python benchmarks/pretrained/probe_low_lr_zoo.py --zoo runs/zoo --out runs/zoo3
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from gfm_accel.lab import zoo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("runs/zoo"), help="the existing zoo (linked, not copied)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO)
    originals = dict(zoo.ZOO_LRS)
    try:
        for name, lrs in originals.items():
            zoo.ZOO_LRS[name] = (round(min(lrs) / 5, 12),)
        args.out.mkdir(parents=True, exist_ok=True)
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                for f in zoo.build_zoo(tmp, seeds=(seed,), progress=False):
                    shutil.move(str(f), args.out / f"{f.stem}_low_s{seed}.safetensors")
    finally:
        zoo.ZOO_LRS.update(originals)
    for f in sorted(args.zoo.glob("zoo_*.safetensors")):
        link = args.out / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    print("\n".join(sorted(p.name for p in args.out.glob("zoo_*.safetensors"))))


if __name__ == "__main__":
    main()
