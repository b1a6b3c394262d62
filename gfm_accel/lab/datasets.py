"""Image datasets as in-memory tensors: CIFAR-10 (the paper's), sklearn digits (offline),
and torchvision FakeData (smoke tests).

* ``cifar10``: the real ``torchvision.datasets.CIFAR10`` under ``data_dir`` (50,000 train,
  10,000 test images, 3x32x32), normalized with the usual per-channel mean/std. Missing
  data raises :class:`FileNotFoundError` naming ``--data-dir`` and ``--download``.
* ``digits``: ``sklearn.datasets.load_digits`` (ships with scikit-learn, no download):
  1,797 8x8 grey images, 10 classes; pixel values /16, then standardized with the training
  mean/std; a fixed 80/20 split from a permutation seeded with 0 (1,438 / 359).
* ``fake``: ``torchvision.datasets.FakeData`` (random images, 3x32x32, 10 classes), 512
  train / 128 val; no learnable signal, only for plumbing tests.

Example:
    >>> ds = load_image_dataset("digits")
    >>> tuple(ds.train_x.shape), ds.num_classes, ds.input_shape
    ((1438, 1, 8, 8), 10, (1, 8, 8))
    >>> train_x, train_y, val_x, val_y, num_classes, input_shape = ds  # unpacks like a tuple
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["DATASETS", "ImageDataset", "load_image_dataset"]

DATASETS: tuple[str, ...] = ("cifar10", "digits", "fake")
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass
class ImageDataset:
    """Train/validation tensors of an image classification dataset.

    Attributes:
        train_x: ``(N_train, C, H, W)`` float32.
        train_y: ``(N_train,)`` int64.
        val_x: ``(N_val, C, H, W)`` float32.
        val_y: ``(N_val,)`` int64.
        num_classes: number of classes.
        input_shape: ``(C, H, W)``.
        name: dataset name.

    Example:
        >>> ds = load_image_dataset("digits")
        >>> ds.name, len(ds.val_y)
        ('digits', 359)
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, int, int]
    name: str = ""

    def __iter__(self):
        # Unpacks as (train_x, train_y, val_x, val_y, num_classes, input_shape).
        return iter((self.train_x, self.train_y, self.val_x, self.val_y, self.num_classes, self.input_shape))

    def subset(self, n_train: int | None = None, n_val: int | None = None) -> "ImageDataset":
        """The first ``n_train`` / ``n_val`` examples (a cheap preset knob)."""
        return ImageDataset(
            self.train_x[:n_train], self.train_y[:n_train], self.val_x[:n_val], self.val_y[:n_val],
            self.num_classes, self.input_shape, self.name,
        )


def _digits() -> ImageDataset:
    if importlib.util.find_spec("sklearn") is None:
        raise ImportError("the 'digits' dataset needs scikit-learn: pip install 'gfm_accel[data]'")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_train = int(round(0.8 * len(y)))
    tr, va = perm[:n_train], perm[n_train:]
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return ImageDataset(x[tr], y[tr], x[va], y[va], 10, (1, 8, 8), "digits")


def _to_tensor_images(data, mean, std) -> torch.Tensor:
    x = torch.as_tensor(data).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def _cifar10(data_dir: str | os.PathLike | None, download: bool) -> ImageDataset:
    from torchvision.datasets import CIFAR10

    if data_dir is None:
        raise FileNotFoundError(
            "CIFAR-10 needs --data-dir DIR (a folder holding cifar-10-batches-py/), "
            "and --download to fetch it there (needs internet); offline, use --dataset digits"
        )
    root = Path(data_dir)
    if not download and not (root / "cifar-10-batches-py").is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 not found in {root} (expected {root / 'cifar-10-batches-py'}/). Pass --download to fetch it "
            "(needs internet), or copy the extracted 'cifar-10-python.tar.gz' there; offline, use --dataset digits"
        )
    try:
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(f"CIFAR-10 in {root} is missing or corrupt ({exc}); re-run with --download") from exc
    return ImageDataset(
        _to_tensor_images(train.data, _CIFAR_MEAN, _CIFAR_STD), torch.as_tensor(train.targets, dtype=torch.long),
        _to_tensor_images(test.data, _CIFAR_MEAN, _CIFAR_STD), torch.as_tensor(test.targets, dtype=torch.long),
        10, (3, 32, 32), "cifar10",
    )


def _fake() -> ImageDataset:
    import numpy as np
    from torchvision.datasets import FakeData

    def grab(ds):
        xs = np.stack([np.asarray(ds[i][0]) for i in range(len(ds))])
        ys = torch.tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.long)
        return _to_tensor_images(xs, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), ys

    tx, ty = grab(FakeData(size=512, image_size=(3, 32, 32), num_classes=10, random_offset=0))
    vx, vy = grab(FakeData(size=128, image_size=(3, 32, 32), num_classes=10, random_offset=10_000))
    return ImageDataset(tx, ty, vx, vy, 10, (3, 32, 32), "fake")


def load_image_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = False) -> ImageDataset:
    """Load a dataset as tensors.

    Args:
        name: ``cifar10``, ``digits`` or ``fake``.
        data_dir: CIFAR-10 root folder.
        download: let torchvision download CIFAR-10 (needs internet).

    Returns:
        :class:`ImageDataset` (also unpacks as a 6-tuple).

    Raises:
        ValueError: unknown dataset name.
        FileNotFoundError: CIFAR-10 is not under ``data_dir`` (says how to get it).
    """
    if name == "digits":
        return _digits()
    if name == "cifar10":
        return _cifar10(data_dir, download)
    if name == "fake":
        return _fake()
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
