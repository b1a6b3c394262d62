"""A CNN on real CIFAR-10 with GFMJump (``--dataset digits`` runs offline).

    python examples/cifar10_cnn.py --data-dir ~/data            # CIFAR-10 (torchvision layout)
    python examples/cifar10_cnn.py --dataset digits --epochs 4 --limit 300 --forecaster linear

``--data-dir`` must hold torchvision's ``cifar-10-batches-py``; nothing is downloaded (a
clear message says how to get it when it is missing). ``--compare`` also trains the same
model plainly, from the same initialization, and prints both.
"""

import argparse
import time

import torch

from _common import add_common_arguments, evaluate, fit, get_forecaster, load_data, periodic_schedule, print_summary
from gfm_accel import GFMJump
from gfm_accel.lab.demo import make_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("cifar10", "digits"), default="cifar10")
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--compare", action="store_true", help="also train plainly and print both")
    add_common_arguments(parser, epochs=15)
    args = parser.parse_args()

    data = load_data(args.dataset, args.data_dir, args.limit)
    channels, side = data["x_train"].shape[1], data["x_train"].shape[-1]
    print(f"{args.dataset}: {len(data['x_train'])} train / {len(data['x_guard'])} guard / {len(data['x_val'])} val images")

    def new_model():
        torch.manual_seed(args.seed)
        model = make_cnn(channels=channels, side=side, width=32 if side >= 32 else 16)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    if args.compare:
        model, opt = new_model()
        t0 = time.perf_counter()
        vl, va, secs = fit(model, opt, data, args.epochs, args.batch_size, seed=args.seed)
        print(f"plain: val_loss={vl:.4f} val_acc={100 * va:.1f}% time={secs:.1f}s")

    model, opt = new_model()
    jump = GFMJump(get_forecaster(args.forecaster), **periodic_schedule(args.epochs))
    gx, gy = data["x_guard"][:1000], data["y_guard"][:1000]
    jump.attach(model, opt, eval_fn=lambda m: evaluate(m, gx, gy)[0], total=args.epochs)
    vl, va, secs = fit(model, opt, data, args.epochs, args.batch_size, jump=jump, seed=args.seed)
    print_summary(jump.history, vl, va, secs)


if __name__ == "__main__":
    main()
