"""A CNN on real CIFAR-10 with GFMJump and the recommended configuration (``--dataset digits`` runs offline).

    python examples/cifar10_cnn.py --data-dir ~/data            # CIFAR-10 (torchvision layout), 375 steps an epoch
    python examples/cifar10_cnn.py --dataset digits --compare   # offline: 15 epochs of 10 steps, and a plain run
    python examples/cifar10_cnn.py --dataset digits --epochs 5 --limit 300 --batch-size 16 --forecaster linear

``GFMJump(forecaster)`` with the defaults (a snapshot every 5 optimizer steps, a jump every
25 forecasting 50 ahead; a run needs at least 75 optimizer steps for one jump,
docs/jump.md), ``jump.on_step_end()`` after every optimizer step. ``--data-dir`` must hold
torchvision's ``cifar-10-batches-py``; nothing is downloaded (a clear message says how to
get it when it is missing). ``--compare`` also trains the same model plainly, from the same
initialization and batch order, and prints both. ``--forecaster`` is ``shipped`` (the
default), ``linear`` or a forecaster file.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from gfm_accel import GFMJump  # noqa: E402
from gfm_accel.lab.datasets import add_data_arguments, load_split  # noqa: E402
from gfm_accel.lab.forecasters import add_forecaster_argument, make_forecaster  # noqa: E402
from gfm_accel.lab.training import evaluate_classifier  # noqa: E402


def make_cnn(channels: int, side: int, width: int) -> nn.Module:
    """3x3 conv blocks, then a linear head: two blocks (one pooling) for 8x8 digits, four (three pooling) for 32x32."""
    layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
              nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    if side < 32:
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * width * (side // 2) ** 2, 10))
    layers += [nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
               nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * width * (side // 8) ** 2, 10))


def train(model, optimizer, loader: DataLoader, epochs: int, data, jump=None) -> tuple[float, float, float]:
    """``epochs`` passes over ``loader``; ``jump.on_step_end()`` after each optimizer step.

    Returns:
        ``(val loss, val accuracy, seconds)`` at the end.
    """
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            record = jump.on_step_end() if jump is not None else None  # a JumpRecord when one was attempted
            if record is not None:
                print(f"step {record.step}: jump to m={record.m}: {record.reason}"
                      + (f" (alpha={record.alpha:g})" if record.accepted else ""), flush=True)
        vl, va = evaluate_classifier(model, data.x_val, data.y_val)
        print(f"epoch {epoch + 1:3d}  val_loss {vl:.4f}  val_acc {100 * va:.1f}%", flush=True)
    return vl, va, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser, datasets=("cifar10", "digits"))  # --dataset, --data-dir, --limit
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--compare", action="store_true", help="also train plainly and print both")
    add_forecaster_argument(parser)
    args = parser.parse_args()

    try:
        data = load_split(args.dataset, args.limit, args.data_dir).as_images()
    except FileNotFoundError as exc:  # CIFAR-10 is not under --data-dir: say how to get it
        sys.exit(f"error: {exc}")
    channels, side = data.shape[0], data.shape[-1]
    print(f"{args.dataset}: {len(data.x_train)} train / {len(data.x_guard)} guard / {len(data.x_val)} val images")

    def new_run():
        """The same initialization and the same batch order for every run."""
        torch.manual_seed(0)
        model = make_cnn(channels=channels, side=side, width=32 if side >= 32 else 16)
        loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=args.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), loader

    if args.compare:
        model, opt, loader = new_run()
        vl, va, secs = train(model, opt, loader, args.epochs, data)
        print(f"plain: val_loss={vl:.4f} val_acc={100 * va:.1f}% time={secs:.1f}s")

    model, opt, loader = new_run()
    forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
    jump = GFMJump(forecaster)  # the recommended configuration: the defaults
    # The guard: up to 1000 images of the separate guard split, never the val split reported
    # (the guard chooses among candidates by it, so it is tuned on).
    gx, gy = data.x_guard[:1000], data.y_guard[:1000]
    jump.attach(model, opt, eval_fn=lambda m: evaluate_classifier(m, gx, gy)[0], total=args.epochs * len(loader))
    vl, va, secs = train(model, opt, loader, args.epochs, data, jump=jump)
    print(jump.on_train_end(len(loader)))  # also logged at INFO
    print(f"jumps: {sum(1 for r in jump.history if r.accepted)} accepted / {len(jump.history)} tried")
    print(f"final: val_loss={vl:.4f} val_acc={100 * va:.1f}% steps={args.epochs * len(loader)} time={secs:.1f}s")


if __name__ == "__main__":
    main()
