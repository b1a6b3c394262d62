"""GFMJump in a hand-written PyTorch loop (no framework), with the recommended configuration.

    python examples/plain_loop.py                  # small CNN on sklearn digits, 10 epochs of 38 steps
    python examples/plain_loop.py --epochs 10 --limit 300 --forecaster linear   # smoke test: 100 steps, 2 jumps

What it shows: ``GFMJump(forecaster)`` with the defaults (a snapshot every 5 optimizer
steps, a jump every 25 steps forecasting 50 steps ahead, kept only if it lowers the guard
loss by 1 %, jumping off after 3 attempts in a row not kept; see docs/jump.md), ``attach(model, optimizer, eval_fn=guard_loss, total=planned steps)`` once,
then ``jump.on_step_end()`` after every optimizer step. A run needs at least 75 optimizer
steps for one jump. ``guard_loss`` is the loss on a fixed held-out split (not the validation
split we report), so a jump that makes the model worse is undone. ``--forecaster`` is
``shipped`` (the default: GFMJump loads the forecaster that ships inside the package),
``linear`` (linear extrapolation, no model) or a forecaster file.
"""

import argparse
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from gfm_accel import GFMJump  # noqa: E402
from gfm_accel.lab.datasets import load_split  # noqa: E402
from gfm_accel.lab.forecasters import add_forecaster_argument, make_forecaster  # noqa: E402


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on ``(x, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="keep at most this many training images")
    add_forecaster_argument(parser)
    args = parser.parse_args()

    # sklearn digits, offline: 1197 train / 200 guard / 400 val images, (N, 1, 8, 8)
    data = load_split("digits", args.limit).as_images()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps_per_epoch = math.ceil(len(data.x_train) / args.batch_size)

    # The guard: the loss on the separate guard split, never on the val split reported below
    # (the guard chooses among candidates by it, so it is tuned on).
    def guard_loss(m: nn.Module) -> float:
        return evaluate(m, data.x_guard, data.y_guard)[0]

    forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
    jump = GFMJump(forecaster)  # the recommended configuration: the defaults
    jump.attach(model, optimizer, eval_fn=guard_loss, total=args.epochs * steps_per_epoch)

    shuffle = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(data.x_train), generator=shuffle).split(args.batch_size):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            record = jump.on_step_end()  # a JumpRecord when a jump was attempted now, else None
            if record is not None:
                print(f"step {record.step}: jump to m={record.m}: {record.reason}"
                      + (f" (alpha={record.alpha:g})" if record.accepted else ""), flush=True)
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        print(f"epoch {epoch + 1:3d}  val_loss {val_loss:.4f}  val_acc {100 * val_acc:.1f}%", flush=True)
    seconds = time.perf_counter() - t0

    print(jump.on_train_end(steps_per_epoch))  # also logged at INFO
    accepted = sum(1 for r in jump.history if r.accepted)
    print(f"jumps: {accepted} accepted / {len(jump.history)} tried")
    print(f"final: val_loss={val_loss:.4f} val_acc={100 * val_acc:.1f}% steps={args.epochs * steps_per_epoch} "
          f"time={seconds:.1f}s")


if __name__ == "__main__":
    main()
