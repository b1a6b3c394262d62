"""GFMJump in a hand-written PyTorch loop (no framework).

    python examples/plain_loop.py                  # small CNN on sklearn digits, 20 epochs
    python examples/plain_loop.py --epochs 6 --limit 300 --forecaster linear   # smoke test

What it shows: ``GFMJump(...).attach(model, optimizer, eval_fn=..., total=epochs)`` once,
then ``jump.on_epoch_end(epoch)`` after every epoch. ``eval_fn`` is the guard: the loss on
a fixed held-out split (not the validation split we report), so a jump that makes the
model worse is undone.
"""

import argparse

import torch

from _common import add_common_arguments, evaluate, fit, get_forecaster, load_data, periodic_schedule, print_summary
from gfm_accel import GFMJump
from gfm_accel.lab.demo import make_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, epochs=20)
    args = parser.parse_args()

    data = load_data("digits", None, args.limit)
    torch.manual_seed(args.seed)
    model = make_cnn(channels=1, side=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    # Periodic jumps: every 5 epochs, forecast 10 epochs ahead (or to the end of a shorter run)
    # from the last 5 snapshots.
    jump = GFMJump(get_forecaster(args.forecaster), **periodic_schedule(args.epochs))
    guard_x, guard_y = data["x_guard"], data["y_guard"]
    jump.attach(model, optimizer, eval_fn=lambda m: evaluate(m, guard_x, guard_y)[0], total=args.epochs)

    val_loss, val_acc, seconds = fit(model, optimizer, data, args.epochs, batch_size=64, jump=jump, seed=args.seed)
    print_summary(jump.history, val_loss, val_acc, seconds)


if __name__ == "__main__":
    main()
