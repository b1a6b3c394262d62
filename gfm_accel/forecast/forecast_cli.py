"""``gfm-accel forecast``: forecast ``w_m`` for every trajectory of a file.

Example:
    gfm-accel forecast --forecaster gfm.safetensors --data test.safetensors --n 4 --out pred.safetensors

Writes a safetensors file with ``"weights"`` ``(N, D)`` (the forecast ``w_m`` of each
trajectory from its first n+1 snapshots) and metadata ``format="gfm_accel.forecast"``,
``version="1"``, ``n``, ``m``, ``forecaster``, ``data`` (and ``spec`` when the data has one). When the file holds snapshot m it
prints the MSE of the forecast against it (mean over trajectories and coordinates), next
to the MSE of the last observed snapshot ``w_n`` (the no-jump baseline).
"""

from __future__ import annotations

import argparse

__all__ = ["FORMAT", "VERSION", "add_arguments", "run"]

FORMAT = "gfm_accel.forecast"
VERSION = "1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--forecaster", required=True, metavar="F", help="a file written by 'gfm-accel train'")
    parser.add_argument("--data", required=True, metavar="FILE", help="trajectory file")
    parser.add_argument("--n", type=int, default=None, help="last observed snapshot index (default: trained n)")
    parser.add_argument("--m", type=int, default=None, help="target snapshot index (default: trained m)")
    parser.add_argument("--out", required=True, metavar="PRED.safetensors", help="where to write the forecasts")
    parser.add_argument("--batch-size", type=int, default=4096, help="trajectories per forecast call")


def run(args: argparse.Namespace) -> int:
    import torch

    from .._io import atomic_save_file, encode_metadata
    from ..trajectories import load_trajectories
    from .forecaster import GFMForecaster

    forecaster = GFMForecaster.load(args.forecaster)
    data = load_trajectories(args.data)
    n = forecaster.n if args.n is None else args.n
    m = forecaster.m if args.m is None else args.m
    if n < 0 or n >= data.T:
        raise ValueError(f"n={n} is outside the file's {data.T} snapshots")
    if m <= n:
        raise ValueError(f"m={m} must be larger than n={n}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    spec = data.spec
    preds = []
    for start in range(0, data.N, args.batch_size):
        prefix = data.weights[start : start + args.batch_size, : n + 1]
        preds.append(forecaster.forecast(prefix, m, spec=spec))
    pred = torch.cat(preds)
    atomic_save_file({"weights": pred}, args.out, {
        **encode_metadata({"n": n, "m": m, "forecaster": str(args.forecaster), "data": str(args.data),
                           "spec": data.metadata.get("spec")}),
        "format": FORMAT, "version": VERSION,
    })
    print(f"wrote {args.out}: weights {tuple(pred.shape)} (n={n}, m={m})")
    if data.T > m:
        truth = data.weights[:, m]
        mse = float(((pred - truth) ** 2).mean())
        base = float(((data.weights[:, n] - truth) ** 2).mean())
        print(f"MSE vs snapshot m={m}: {mse:.6g} (last observed w_n: {base:.6g})")
    else:
        print(f"the file has T={data.T} snapshots, no snapshot m={m} to compare with")
    return 0
