"""Claim: the default ``optimizer_state="reset"`` is at least as good as ``"keep"`` after jumps.

A tiny digits MLP (64-64-10, sklearn digits, 1297 train / 500 val) is trained for 20 epochs
with SGD+momentum, Adam and AdamW, with guarded periodic jumps (n=4, K=4,
LinearExtrapolationForecaster, guard on the validation set) and with each optimizer-state
policy; the baseline has no jumps. Prints the final validation loss and accuracy (mean and
std over seeds) and the number of accepted jumps.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_jump_optimizer_state.py [--seeds 3] \
        [--out benchmarks/results/jump_optimizer_state]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from gfm_accel.forecast.simple import LinearExtrapolationForecaster
from gfm_accel.info import machine_line
from gfm_accel.jump import GFMJump
from gfm_accel.lab.bench.common import write_script_result
from gfm_accel.lab.jumps import jump_config

OPTIMIZERS = {
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
}


def data():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1297], y[:1297], x[1297:], y[1297:]


def run(opt_name: str, policy: str | None, seed: int, epochs: int, x, y, xv, yv) -> dict:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = OPTIMIZERS[opt_name](model.parameters())

    def eval_fn(m):
        m.eval()
        return float(nn.functional.cross_entropy(m(xv), yv))

    jump = None
    if policy is not None:
        jump = GFMJump(LinearExtrapolationForecaster(), config=jump_config(mode="periodic", n=4, horizon=4, optimizer_state=policy))
        jump.attach(model, opt, eval_fn=eval_fn, total=epochs)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if jump is not None:
            jump.on_epoch_end(epoch)
    with torch.no_grad():
        model.eval()
        out = model(xv)
        val_loss = float(nn.functional.cross_entropy(out, yv))
        acc = float((out.argmax(1) == yv).float().mean())
    return {"val_loss": val_loss, "val_acc": acc, "accepted": jump.jumps if jump else 0,
            "attempts": len(jump.history) if jump else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y, xv, yv = data()
    rows = []
    lines = []
    for opt_name in OPTIMIZERS:
        for policy in (None, "keep", "reset"):
            res = [run(opt_name, policy, s, args.epochs, x, y, xv, yv) for s in range(args.seeds)]
            loss = [r["val_loss"] for r in res]
            acc = [r["val_acc"] for r in res]
            row = {
                "optimizer": opt_name,
                "policy": policy or "no jump",
                "val_loss_mean": statistics.mean(loss),
                "val_loss_std": statistics.pstdev(loss),
                "val_acc_mean": statistics.mean(acc),
                "val_acc_std": statistics.pstdev(acc),
                "val_loss": loss,
                "val_acc": acc,
                "accepted_jumps": [r["accepted"] for r in res],
                "attempts": [r["attempts"] for r in res],
            }
            rows.append(row)
            line = (
                f"{opt_name:13s} {row['policy']:8s} val loss {row['val_loss_mean']:.4f} ± {row['val_loss_std']:.4f}  "
                f"acc {row['val_acc_mean']:.4f} ± {row['val_acc_std']:.4f}  accepted/attempts "
                f"{row['accepted_jumps']}/{row['attempts']}"
            )
            lines.append(line)
            print(line, flush=True)
    lines.append(machine_line())
    print(lines[-1])
    if args.out:
        write_script_result(args.out, lines, {"args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
