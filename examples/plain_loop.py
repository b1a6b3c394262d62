"""GFMJump in a hand-written PyTorch loop (no framework).

    python examples/plain_loop.py                  # small CNN on sklearn digits, 20 epochs
    python examples/plain_loop.py --epochs 6 --limit 300 --forecaster linear   # smoke test

What it shows: ``GFMJump(...).attach(model, optimizer, eval_fn=..., total=epochs)`` once,
then ``jump.on_epoch_end(epoch)`` after every epoch. ``eval_fn`` is the guard: the loss on
a fixed held-out split (not the validation split we report), so a jump that makes the
model worse is undone. ``--forecaster`` is ``shipped`` (the default: GFMJump loads the
forecaster that ships inside the package), ``linear`` (linear extrapolation, no model) or
a forecaster file.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from gfm_accel import GFMJump  # noqa: E402
from gfm_accel.lab.datasets import add_data_arguments, load_split  # noqa: E402
from gfm_accel.lab.demo import make_cnn  # noqa: E402
from gfm_accel.lab.forecasters import add_forecaster_argument, make_forecaster  # noqa: E402
from gfm_accel.lab.training import evaluate_classifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    add_data_arguments(parser, datasets=("digits",))  # --limit
    add_forecaster_argument(parser)
    args = parser.parse_args()

    data = load_split("digits", args.limit).as_images()  # train / guard / val, (N, 1, 8, 8)
    torch.manual_seed(0)
    model = make_cnn(channels=1, side=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    # Periodic jumps: every 5 epochs, forecast 10 epochs ahead from the last 5 snapshots. GFMJump
    # skips a jump whose target lies past the planned end, so a shorter run forecasts to its end.
    forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
    jump = GFMJump(forecaster, mode="periodic", n=4, every=5, horizon=max(1, min(10, args.epochs - 5)))
    jump.attach(model, optimizer, eval_fn=lambda m: evaluate_classifier(m, data.x_guard, data.y_guard)[0],
                total=args.epochs)

    shuffle = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(data.x_train), generator=shuffle).split(64):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        record = jump.on_epoch_end(epoch)  # a JumpRecord when a jump was due, else None
        val_loss, val_acc = evaluate_classifier(model, data.x_val, data.y_val)
        note = "" if record is None else f"  jump to m={record.m}: " + (
            f"accepted, alpha={record.alpha:g}" if record.accepted else record.reason)
        print(f"epoch {epoch + 1:3d}  val_loss {val_loss:.4f}  val_acc {100 * val_acc:.1f}%{note}", flush=True)
    seconds = time.perf_counter() - t0

    accepted = sum(1 for r in jump.history if r.accepted)
    print(f"jumps: {accepted} accepted / {len(jump.history)} tried")
    print(f"final: val_loss={val_loss:.4f} val_acc={100 * val_acc:.1f}% time={seconds:.1f}s")


if __name__ == "__main__":
    main()
