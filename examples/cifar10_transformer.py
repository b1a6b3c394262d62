"""A small Vision Transformer on real CIFAR-10 with GFMJump (``--dataset digits`` runs offline).

    python examples/cifar10_transformer.py --data-dir ~/data
    python examples/cifar10_transformer.py --dataset digits --epochs 4 --limit 300 --forecaster linear

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
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=128, shuffle=True,
                        generator=torch.Generator().manual_seed(0))

    forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
    jump = GFMJump(forecaster, mode="periodic", n=4, every=5, horizon=max(1, min(10, args.epochs - 5)))
    gx, gy = data.x_guard[:1000], data.y_guard[:1000]
    jump.attach(model, optimizer, eval_fn=lambda m: evaluate_classifier(m, gx, gy)[0], total=args.epochs)

    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        train_loss = 0.0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            train_loss += float(loss.detach()) * len(y) / len(data.y_train)
        record = jump.on_epoch_end(epoch, loss=train_loss)
        if record is not None:
            print(f"epoch {epoch + 1}: jump to m={record.m}: {record.reason}", flush=True)
    seconds = time.perf_counter() - t0

    val_loss, val_acc = evaluate_classifier(model, data.x_val, data.y_val)
    print(f"jumps: {sum(r.accepted for r in jump.history)} accepted / {len(jump.history)} tried")
    print(f"final: val_loss={val_loss:.4f} val_acc={100 * val_acc:.1f}% time={seconds:.1f}s")


if __name__ == "__main__":
    main()
