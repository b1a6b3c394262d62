"""A residual CNN with BatchNorm on offline images (sklearn digits), or real CIFAR-10 from ``data_dir``.

Data:

- ``"digits"`` (default, offline): sklearn's ``load_digits``, 1797 8x8 grey images. A fixed
  permutation (``torch.Generator`` seed 0) gives 400 validation images (the targets' split),
  200 guard images and 1197 training images; pixels are standardized with the training
  set's mean and standard deviation.
- ``"cifar10"``: ``torchvision.datasets.CIFAR10(data_dir, download=False)``, the real files
  (nothing is downloaded here). The 10,000 test images are the validation split; a fixed
  permutation of the 50,000 training images holds out 2,000 as the guard split. Per-channel
  standardization with the CIFAR-10 training statistics; training batches get a random
  horizontal flip and a 4-pixel-padded random crop from the run's generator.

Both come from :func:`gfm_accel.lab.datasets.load_split` (the lab's one loader; the same
cuts as the accel tasks), viewed as images.

Model: a stem 3x3 convolution (``width`` channels) and three stages of basic residual
blocks (two 3x3 convolutions with BatchNorm, identity or 1x1-projection shortcut) with
``width``, ``2 * width``, ``4 * width`` channels, strides 1, 2, 2 and ``blocks`` blocks each
(default ``(1, 1, 2)``), global average pooling and a linear classifier. With ``width=32``
on digits: 603,498 parameters (about 0.055 s a training step of 64 images on one CPU thread).

Default recipe: SGD with momentum 0.9 (``"sgdm"``, lr 0.05, weight decay 5e-4), warmup (5%)
then cosine to 0, 300 steps of 64 images.

Example:
    >>> task = ResNetTask(total_steps=2, width=8)
    >>> run = task.build(seed=0)
    >>> x, y = next(run.batches)
    >>> tuple(x.shape), tuple(run.model(x).shape)
    ((64, 1, 8, 8), (64, 10))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..._config import JsonConfig
from ..datasets import load_split
from .workload import Batch, WorkloadConfig, shuffled_batches

__all__ = ["ResNetTask", "ResNet", "ImageSplits", "load_images"]

DATASETS = ("digits", "cifar10")


@dataclass(frozen=True)
class ImageSplits:
    """Standardized images ``(N, C, H, W)`` float32 and int64 labels ``(N,)`` of each split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_guard: torch.Tensor
    y_guard: torch.Tensor
    classes: int = 10


@functools.lru_cache(maxsize=2)
def load_images(dataset: str = "digits", data_dir: str | None = None) -> ImageSplits:
    """The :func:`gfm_accel.lab.datasets.load_split` cut of ``dataset``, as ``(N, C, H, W)`` images.

    Args:
        dataset: ``"digits"`` or ``"cifar10"``.
        data_dir: CIFAR-10's folder (the one holding ``cifar-10-batches-py``); required for it.

    Returns:
        The :class:`ImageSplits` (cached per ``(dataset, data_dir)``).

    Raises:
        ValueError: an unknown dataset, CIFAR-10 without ``data_dir``, or a missing package.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    if dataset == "cifar10" and data_dir is None:
        raise ValueError("cifar10 needs data_dir= (the folder holding cifar-10-batches-py; nothing is downloaded)")
    s = load_split(dataset, data_dir=None if data_dir is None else str(data_dir)).as_images()
    return ImageSplits(s.x_train, s.y_train, s.x_val, s.y_val, s.x_guard, s.y_guard, s.classes)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H/s, W/s)
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, three stages of basic blocks (BatchNorm, residual), average pooling, linear head.

    Args:
        in_channels: image channels ``C``.
        classes: output classes.
        width: stem / first-stage channels (the stages have ``width * (1, 2, 4)``).
        blocks: basic blocks per stage.

    Example:
        >>> m = ResNet(in_channels=3, width=8)
        >>> tuple(m(torch.zeros(2, 3, 32, 32)).shape)
        (2, 10)
    """

    def __init__(self, in_channels: int = 1, classes: int = 10, width: int = 32, blocks: tuple[int, ...] = (1, 1, 2)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, c = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            for j in range(n):
                layers.append(_BasicBlock(c, c_out, 2 if (i > 0 and j == 0) else 1))
                c = c_out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        h = self.stages(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


def _augment(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flip and padded random crop of a batch ``(B, C, H, W)``, from ``g``."""
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=g)
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


@dataclass
class ResNetTask(WorkloadConfig, JsonConfig):
    """The residual-CNN workload.

    Attributes:
        name: the task name.
        optimizer, lr, weight_decay, total_steps, batch_size, schedule, warmup: the default
            recipe (:class:`~gfm_accel.lab.tasks.workload.WorkloadConfig`).
        dataset: ``"digits"`` or ``"cifar10"``.
        data_dir: CIFAR-10's folder (required for ``"cifar10"``).
        width, blocks: the model (:class:`ResNet`).
        augment: flip + crop training batches (``None``: on for CIFAR-10, off for digits).
        eval_batch_size: batch size of the fixed evaluation batches.
        bn_batches: training batches kept for BatchNorm recomputation (Schedule-Free).
    """

    name: str = "resnet_digits"
    optimizer: str = "sgdm"
    lr: float = 0.05
    weight_decay: float = 5e-4
    total_steps: int = 300
    batch_size: int = 64
    schedule: str = "warmup_cosine"
    warmup: float = 0.05
    dataset: str = "digits"
    data_dir: str | None = None
    width: int = 32
    blocks: tuple[int, ...] = (1, 1, 2)
    augment: bool | None = None
    eval_batch_size: int = 500
    bn_batches: int = 4

    def __post_init__(self) -> None:
        self.check_recipe()
        if self.dataset not in DATASETS:
            raise ValueError(f"ResNetTask: unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if self.dataset == "cifar10" and self.data_dir is None:
            raise ValueError("ResNetTask: cifar10 needs data_dir= (the folder holding cifar-10-batches-py)")
        self.blocks = tuple(self.blocks)
        if not self.blocks or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.blocks):
            raise ValueError(f"ResNetTask: blocks must be positive integers per stage, got {self.blocks!r}")
        self.check_positive_ints("width", "eval_batch_size", "bn_batches")

    def splits(self) -> ImageSplits:
        """The standardized train / val / guard images (cached)."""
        return load_images(self.dataset, self.data_dir)

    def make_model(self) -> ResNet:
        """A freshly initialized :class:`ResNet` (draws from the global RNG; :meth:`build` forks it)."""
        return ResNet(self.splits().x_train.shape[1], self.splits().classes, self.width, self.blocks)

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        """The validation and guard images in fixed batches of ``eval_batch_size``."""
        s, n = self.splits(), self.eval_batch_size
        return list(zip(s.x_val.split(n), s.y_val.split(n))), list(zip(s.x_guard.split(n), s.y_guard.split(n)))

    def bn_inputs(self) -> list[torch.Tensor]:
        """The first ``bn_batches * batch_size`` training images, in batches."""
        x = self.splits().x_train
        return list(x[: self.bn_batches * self.batch_size].split(self.batch_size))

    def train_batches(self, seed: int) -> Iterator[Batch]:
        """Epochs of a fresh permutation each (the last partial batch of an epoch is dropped)."""
        s = self.splits()
        augment = self.dataset == "cifar10" if self.augment is None else self.augment
        return shuffled_batches(s.x_train, s.y_train, self.batch_size, seed, transform=_augment if augment else None)
