"""Helpers shared by the examples (data, evaluation, forecaster choice); not part of the library.

Every example accepts ``--forecaster shipped|linear|PATH``: ``shipped`` (the default) lets
``GFMJump`` load the forecaster that ships inside the package, ``linear`` uses linear
extrapolation (no model needed), and a path loads a ``GFMForecaster`` file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from gfm_accel.lab.training import evaluate_classifier  # noqa: E402

__all__ = ["add_common_arguments", "get_forecaster", "load_data", "evaluate", "fit", "print_summary"]

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


def add_common_arguments(parser: argparse.ArgumentParser, *, epochs: int) -> None:
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    parser.add_argument("--limit", type=int, default=None, help="keep at most this many training samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forecaster", default="shipped", help="'shipped' (default), 'linear' or a forecaster file")


def periodic_schedule(epochs: int) -> dict:
    """Jump every 5 epochs to 10 epochs ahead, or only as far as the end of a shorter run.

    ``GFMJump`` skips a periodic jump whose target lies past the planned end of the run
    (``jump_past_end=False``), so a short run (the smoke-test settings, or the HF example's
    8 epochs) forecasts to its last epoch instead of 10 epochs ahead.
    """
    return dict(mode="periodic", n=4, every=5, horizon=max(1, min(10, epochs - 5)))


def get_forecaster(name: str):
    """None for the shipped forecaster (GFMJump's default), else the forecaster object."""
    if name == "shipped":
        return None
    if name == "linear":
        from gfm_accel.forecast.simple import LinearExtrapolationForecaster

        return LinearExtrapolationForecaster()
    from gfm_accel import GFMForecaster

    return GFMForecaster.load(name)


def load_data(dataset: str, data_dir: str | None, limit: int | None) -> dict[str, torch.Tensor]:
    """train / guard / val image tensors; exits with a clear message when CIFAR-10 is missing."""
    from gfm_accel.lab.demo import load_images

    if dataset == "cifar10" and not data_dir:
        sys.exit("error: --dataset cifar10 needs --data-dir DIR (the folder holding cifar-10-batches-py); "
                 "or run offline with --dataset digits")
    try:
        return load_images(dataset, data_dir, limit)
    except FileNotFoundError as exc:
        sys.exit(f"error: {exc}")


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``(x, y)``; restores train mode."""
    return evaluate_classifier(model, x, y)


def fit(model, optimizer, data, epochs: int, batch_size: int, jump=None, seed: int = 0) -> tuple[float, float, float]:
    """A plain training loop; calls ``jump.on_epoch_end(epoch)`` after each epoch when given."""
    gen = torch.Generator().manual_seed(seed)
    x, y = data["x_train"], data["y_train"]
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        record = jump.on_epoch_end(epoch) if jump is not None else None
        vl, va = evaluate(model, data["x_val"], data["y_val"])
        note = ""
        if record is not None:
            note = f"  jump to m={record.m}: {'accepted, alpha=%g' % record.alpha if record.accepted else record.reason}"
        print(f"epoch {epoch + 1:3d}  val_loss {vl:.4f}  val_acc {100 * va:.1f}%{note}", flush=True)
    return vl, va, time.perf_counter() - t0


def print_summary(history, val_loss: float, val_acc: float, seconds: float) -> None:
    """The two result lines the CI smoke tests look for."""
    accepted = sum(1 for r in history if r.accepted)
    print(f"jumps: {accepted} accepted / {len(history)} tried")
    print(f"final: val_loss={val_loss:.4f} val_acc={100 * val_acc:.1f}% time={seconds:.1f}s")
