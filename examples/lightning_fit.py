"""GFMJump as a Lightning callback: ``Trainer(callbacks=[GFMJump()]).fit(...)`` (offline).

    python examples/lightning_fit.py                        # small CNN on sklearn digits, 10 epochs of 38 steps
    python examples/lightning_fit.py --epochs 10 --limit 300 --forecaster linear   # smoke test: 100 steps, 2 jumps

``GFMJump()`` with the defaults, the recommended configuration (a snapshot every 5 optimizer
steps, a jump every 25 forecasting 50 ahead; a run needs at least 75 optimizer steps for one
jump, docs/jump.md). The callback's guard evaluates the first ``eval_batches`` (4) batches
of the fit's validation dataloader with the module's own ``validation_step`` (which returns
the loss): here that loader holds the guard split, and the numbers reported at the end come
from ``trainer.validate`` on the separate validation split.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from gfm_accel.integrations.lightning import GFMJump  # noqa: E402
from gfm_accel.lab.datasets import add_data_arguments, load_split  # noqa: E402
from gfm_accel.lab.forecasters import add_forecaster_argument, make_forecaster  # noqa: E402


class Classifier(L.LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        loss = F.cross_entropy(out, y)
        self.log("val_loss", loss, prog_bar=False)
        self.log("val_acc", (out.argmax(1) == y).float().mean(), prog_bar=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    add_data_arguments(parser, datasets=("digits",))  # --limit
    add_forecaster_argument(parser)
    args = parser.parse_args()

    data = load_split("digits", args.limit).as_images()
    L.seed_everything(0, verbose=False)
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=args.batch_size, shuffle=True)
    # The guard evaluates the fit's val dataloader, so it gets the separate guard split; the
    # val split is only reported (the guard chooses among candidates by its data: tuned on).
    guard = DataLoader(TensorDataset(data.x_guard, data.y_guard), batch_size=50)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=200)

    forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
    jump = GFMJump(forecaster)  # the recommended configuration: the defaults
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, callbacks=[jump], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = Classifier()
    t0 = time.perf_counter()
    trainer.fit(model, train, guard)  # the callback logs its summary line at the end (INFO)
    seconds = time.perf_counter() - t0
    metrics = trainer.validate(model, val, verbose=False)[0]

    for r in jump.history:
        print(f"step {r.step}: jump to m={r.m}: {r.reason}" + (f" (alpha={r.alpha:g})" if r.accepted else ""))
    print(jump.core.summary(len(train)))
    print(f"jumps: {sum(1 for r in jump.history if r.accepted)} accepted / {len(jump.history)} tried")
    print(f"final: val_loss={metrics['val_loss']:.4f} val_acc={100 * metrics['val_acc']:.1f}% "
          f"steps={trainer.global_step} time={seconds:.1f}s")


if __name__ == "__main__":
    main()
