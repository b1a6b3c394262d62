"""A small Vision Transformer on real CIFAR-10 with GFMJump and the recommended configuration (``--dataset digits`` runs offline).

    python examples/cifar10_transformer.py --data-dir ~/data                # 375 steps an epoch
    python examples/cifar10_transformer.py --dataset digits                 # offline: 15 epochs of 10 steps
    python examples/cifar10_transformer.py --dataset digits --epochs 5 --limit 300 --batch-size 16 --forecaster linear

``GFMJump(forecaster)`` with the defaults (a snapshot every 5 optimizer steps, a jump every
25 forecasting 50 ahead; a run needs at least 75 optimizer steps for one jump,
docs/jump.md), ``jump.on_step_end(loss=...)`` after every optimizer step; the guard is the
loss on the separate guard split.

The model (:class:`gfm_accel.lab.tasks.accel.PatchTransformer`): non-overlapping patches
(4x4 on CIFAR-10, 2x2 on 8x8 digits), a class token, learned positions, pre-norm Transformer
blocks, a linear head. AdamW with gradient clipping. ``--data-dir`` must hold torchvision's
``cifar-10-batches-py``; nothing is downloaded. ``--forecaster`` is ``shipped`` (the
default), ``linear`` or a forecaster file.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from gfm_accel import GFMJump  # noqa: E402
from gfm_accel.lab.datasets import add_data_arguments, load_split  # noqa: E402
from gfm_accel.lab.forecasters import add_forecaster_argument, make_forecaster  # noqa: E402
from gfm_accel.lab.tasks.accel import PatchTransformer  # noqa: E402
from gfm_accel.lab.training import evaluate_classifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    add_data_arguments(parser, datasets=("cifar10", "digits"))  # --dataset, --data-dir, --limit
    add_forecaster_argument(parser)
    args = parser.parse_args()

    try:
        data = load_split(args.dataset, args.limit, args.data_dir).as_images()
    except FileNotFoundError as exc:
        sys.exit(f"error: {exc}")
    print(f"{args.dataset}: {len(data.x_train)} train / {len(data.x_guard)} guard / {len(data.x_val)} val images")
    big = data.shape[-1] >= 32
    torch.manual_seed(0)
    model = PatchTransformer(data.shape, patch=4 if big else 2, dim=64 if big else 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))

    forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
    jump = GFMJump(forecaster)  # the recommended configuration: the defaults
    # The guard: up to 1000 images of the separate guard split, never the val split reported
    # (the guard chooses among candidates by it, so it is tuned on).
    gx, gy = data.x_guard[:1000], data.y_guard[:1000]
    jump.attach(model, optimizer, eval_fn=lambda m: evaluate_classifier(m, gx, gy)[0],
                total=args.epochs * len(loader))

    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            record = jump.on_step_end(loss=float(loss.detach()))  # the loss is kept beside the snapshot
            if record is not None:
                print(f"epoch {epoch + 1}, step {record.step}: jump to m={record.m}: {record.reason}"
                      + (f" (alpha={record.alpha:g})" if record.accepted else ""), flush=True)
    seconds = time.perf_counter() - t0

    val_loss, val_acc = evaluate_classifier(model, data.x_val, data.y_val)
    print(jump.on_train_end(len(loader)))  # also logged at INFO
    print(f"jumps: {sum(r.accepted for r in jump.history)} accepted / {len(jump.history)} tried")
    print(f"final: val_loss={val_loss:.4f} val_acc={100 * val_acc:.1f}% steps={args.epochs * len(loader)} "
          f"time={seconds:.1f}s")


if __name__ == "__main__":
    main()
