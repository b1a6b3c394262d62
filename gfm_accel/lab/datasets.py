"""The lab's one loading module for offline data.

Every dataset the lab trains on is loaded here, as in-memory tensors:

* ``digits``: ``sklearn.datasets.load_digits`` (ships with scikit-learn, no download):
  1,797 8x8 grey images, 10 classes. One loader (:func:`digits_arrays`) and the cuts the
  lab's users make of it, each fixed and documented where it is defined:
  :func:`load_image_dataset` (the paper-style generators: /16, 80/20 split),
  :func:`load_split` (the acceleration tasks and the demo: train / guard / val) and
  :func:`zoo_digits` (the zoo: 1400 / 397).
* ``mnist1d``: the procedurally generated 1-D signals of the ``mnist1d`` package
  (:func:`load_split`).
* ``cifar10``: the real ``torchvision.datasets.CIFAR10`` under ``data_dir`` (50,000 train,
  10,000 test images, 3x32x32; :func:`cifar10_arrays`). Missing data raises
  :class:`FileNotFoundError` naming ``--data-dir`` and ``--download``.
* ``fake``: ``torchvision.datasets.FakeData`` (random images, 3x32x32, 10 classes), 512
  train / 128 val; no learnable signal, only for plumbing tests.
* text: the source of a few Python standard-library modules (:func:`stdlib_text`,
  :func:`char_tensors`), the whole top-level standard library as bytes
  (:func:`stdlib_corpus`, the char GPT's corpus), the source of eight standard-library
  *packages* (:func:`package_bytes`, :data:`STDLIB_PACKAGES`) and the English help text of
  ``pydoc_data`` (:func:`pydoc_text`), the last two for the fresh tasks
  (:mod:`gfm_accel.lab.tasks.fresh`, which cuts them into splits); it ships with every Python.

Example:
    >>> ds = load_image_dataset("digits")
    >>> tuple(ds.train_x.shape), ds.num_classes, ds.input_shape
    ((1438, 1, 8, 8), 10, (1, 8, 8))
    >>> train_x, train_y, val_x, val_y, num_classes, input_shape = ds  # unpacks like a tuple
    >>> split = load_split("digits")
    >>> len(split.x_train), len(split.x_guard), len(split.x_val), split.shape
    (1197, 200, 400, (8, 8))
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

__all__ = [
    "DATASETS",
    "ImageDataset",
    "load_image_dataset",
    "Split",
    "SPLIT_DATASETS",
    "load_split",
    "digits_arrays",
    "cifar10_arrays",
    "zoo_digits",
    "stdlib_text",
    "stdlib_corpus",
    "STDLIB_PACKAGES",
    "package_bytes",
    "pydoc_text",
    "char_tensors",
    "add_data_arguments",
]

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


def digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits as loaded: ``x (1797, 64)`` float32 pixel values 0..16, ``y (1797,)`` int64.

    Raises:
        ImportError: scikit-learn is not installed (names the extra to install).
    """
    if importlib.util.find_spec("sklearn") is None:
        raise ImportError("the 'digits' dataset needs scikit-learn: pip install 'gfm_accel[data]'")
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.as_tensor(d.data, dtype=torch.float32), torch.as_tensor(d.target, dtype=torch.long)


def _digits() -> ImageDataset:
    x, y = digits_arrays()
    x = x.view(-1, 1, 8, 8) / 16.0
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_train = int(round(0.8 * len(y)))
    tr, va = perm[:n_train], perm[n_train:]
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return ImageDataset(x[tr], y[tr], x[va], y[va], 10, (1, 8, 8), "digits")


def _to_tensor_images(data, mean, std) -> torch.Tensor:
    x = torch.as_tensor(data).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def cifar10_arrays(data_dir: str | os.PathLike | None, download: bool = False):
    """The real CIFAR-10 through ``torchvision.datasets.CIFAR10`` (nothing is downloaded unless asked).

    Args:
        data_dir: folder holding ``cifar-10-batches-py/``.
        download: let torchvision download it there (needs internet).

    Returns:
        ``(train, test)``: the two torchvision datasets (``.data`` ``(N, 32, 32, 3)`` uint8, ``.targets``).

    Raises:
        FileNotFoundError: no ``data_dir``, or CIFAR-10 is not (or not intact) under it; the
            message says how to get it.
    """
    from torchvision.datasets import CIFAR10

    if data_dir is None:
        raise FileNotFoundError(
            "CIFAR-10 needs --data-dir DIR (a folder holding cifar-10-batches-py/), "
            "and --download to fetch it there (needs internet); offline, use --dataset digits"
        )
    root = Path(data_dir)
    if not download and not (root / "cifar-10-batches-py").is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 not found in {root} (expected {root / 'cifar-10-batches-py'}/). Fetch it with --download "
            f"(`gfm-accel generate`; needs internet) or `python -c \"import torchvision; "
            f"torchvision.datasets.CIFAR10('{root}', download=True)\"`, or copy the extracted "
            "'cifar-10-python.tar.gz' there; offline, use --dataset digits"
        )
    try:
        return CIFAR10(str(root), train=True, download=download), CIFAR10(str(root), train=False, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(f"CIFAR-10 in {root} is missing or corrupt ({exc}); re-run with --download") from exc


def _cifar10(data_dir: str | os.PathLike | None, download: bool) -> ImageDataset:
    train, test = cifar10_arrays(data_dir, download)
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


# --------------------------------------------------------------------------- train / guard / val
#: Datasets :func:`load_split` knows.
SPLIT_DATASETS: tuple[str, ...] = ("mnist1d", "digits", "cifar10")


@dataclass
class Split:
    """Fixed train / guard / val tensors of one dataset.

    The guard split is what a jump guard evaluates; val is only reported. Keeping them apart
    means that a jump's acceptance cannot peek at the numbers it is judged on.

    Attributes:
        x_train, y_train: ``(N_train, *shape)`` inputs and ``(N_train,)`` int64 labels.
        x_guard, y_guard: the jump guard's held-out set.
        x_val, y_val: the reported validation set.
        shape: input shape of one sample, e.g. ``(40,)``, ``(8, 8)`` or ``(3, 32, 32)``.
        classes: number of classes.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_guard: torch.Tensor
    y_guard: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    shape: tuple[int, ...]
    classes: int = 10

    def as_images(self) -> "Split":
        """The same split with ``(N, C, H, W)`` inputs: an ``(H, W)`` sample gets one channel (a view)."""
        if len(self.shape) != 2:
            return self
        img = lambda t: t.view(len(t), 1, *self.shape)  # noqa: E731
        return Split(img(self.x_train), self.y_train, img(self.x_guard), self.y_guard, img(self.x_val), self.y_val,
                     (1, *self.shape), self.classes)


@lru_cache(maxsize=4)
def load_split(dataset: str, limit: int | None = None, data_dir: str | None = None) -> Split:
    """Load a dataset offline and cut it into train / guard / val (fixed, data seed 0).

    Args:
        dataset: ``"mnist1d"`` (4000 procedurally generated samples: 2800 train, 400 guard,
            800 val), ``"digits"`` (1797 samples, shape ``(8, 8)``: 1197 train, 200 guard,
            400 val) or ``"cifar10"`` (its 50k train images minus 2000 for the guard; val = the
            10k test images; needs ``data_dir``).
        limit: keep at most this many training samples (tests, ``--quick``).
        data_dir: the folder holding ``cifar-10-batches-py`` (cifar10 only).

    Returns:
        A :class:`Split`; inputs standardized with training-set statistics (one mean and std;
        per channel for cifar10).

    Raises:
        ValueError: an unknown dataset, or a missing optional package (with the extra to install).
        FileNotFoundError: CIFAR-10 is not under ``data_dir``.
    """
    g = torch.Generator().manual_seed(0)
    if dataset == "mnist1d":
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as exc:  # pragma: no cover - optional extra
            raise ValueError("the mnist1d tasks need the mnist1d package: pip install 'gfm_accel[data]'") from exc
        args = get_dataset_args()
        args.num_samples = 4000
        args.seed = 42
        d = make_dataset(args)
        x = torch.as_tensor(d["x"], dtype=torch.float32)
        y = torch.as_tensor(d["y"], dtype=torch.long)
        x_val = torch.as_tensor(d["x_test"], dtype=torch.float32)
        y_val = torch.as_tensor(d["y_test"], dtype=torch.long)
        perm = torch.randperm(len(x), generator=g)
        x, y = x[perm], y[perm]
        x_guard, y_guard, x_train, y_train = x[:400], y[:400], x[400:], y[400:]
        shape: tuple[int, ...] = (40,)
    elif dataset == "digits":
        try:
            x, y = digits_arrays()
        except ImportError as exc:
            raise ValueError(f"the digits tasks need scikit-learn: {exc}") from exc
        x = x.view(-1, 8, 8)
        perm = torch.randperm(len(x), generator=g)
        x, y = x[perm], y[perm]
        x_val, y_val = x[:400], y[:400]
        x_guard, y_guard = x[400:600], y[400:600]
        x_train, y_train = x[600:], y[600:]
        shape = (8, 8)
    elif dataset == "cifar10":
        train, test = cifar10_arrays(data_dir)
        x = torch.as_tensor(train.data).permute(0, 3, 1, 2).float() / 255.0
        y = torch.as_tensor(train.targets, dtype=torch.long)
        x_val = torch.as_tensor(test.data).permute(0, 3, 1, 2).float() / 255.0
        y_val = torch.as_tensor(test.targets, dtype=torch.long)
        perm = torch.randperm(len(x), generator=g)
        x, y = x[perm], y[perm]
        x_guard, y_guard, x_train, y_train = x[:2000], y[:2000], x[2000:], y[2000:]
        shape = (3, 32, 32)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(SPLIT_DATASETS)}")
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    if dataset == "cifar10":
        mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
        std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    else:
        mean, std = x_train.mean(), x_train.std().clamp_min(1e-6)
    norm = lambda t: (t - mean) / std  # noqa: E731
    return Split(norm(x_train), y_train, norm(x_guard), y_guard, norm(x_val), y_val, shape)


# --------------------------------------------------------------------------- the zoo's data
def zoo_digits(image: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The zoo's cut of sklearn digits: pixels /16, then ``(x - 0.3) / 0.35``; split 1400 / 397.

    The split comes from a permutation seeded with 1234, fixed across zoo seeds.

    Args:
        image: inputs as ``(N, 1, 8, 8)`` instead of ``(N, 64)``.

    Returns:
        ``(x_train, y_train, x_val, y_val)``.
    """
    x, y = digits_arrays()
    x = (x / 16.0 - 0.3) / 0.35
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    x, y = x[perm], y[perm]
    if image:
        x = x.view(-1, 1, 8, 8)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _stdlib_root() -> Path:
    """The standard library's folder (``sysconfig.get_paths()["stdlib"]``)."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_text(max_chars: int = 200_000) -> str:
    """Source text of a few Python standard-library modules (ships with every Python)."""
    root = _stdlib_root()
    parts = []
    for name in ("textwrap.py", "argparse.py", "dataclasses.py", "functools.py", "inspect.py"):
        p = root / name
        if p.exists():
            parts.append(p.read_text(errors="replace"))
    return "\n".join(parts)[:max_chars]


@lru_cache(maxsize=1)
def stdlib_corpus() -> bytes:
    """The standard library's top-level ``.py`` files as bytes, sorted by name, joined by newlines.

    About 4.7 MB for CPython 3.11 (the char GPT's corpus, :mod:`gfm_accel.lab.tasks.char_gpt`).

    Returns:
        The bytes (cached for the process).

    Raises:
        ValueError: the standard library folder holds no ``.py`` files (an unusual install).
    """
    root = _stdlib_root()
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise ValueError(f"no .py files under the standard library folder {root}")
    return b"\n".join(p.read_bytes() for p in files)


#: The standard-library packages of :func:`package_bytes` (``fresh_dwconv_packages``: the class index is the position).
STDLIB_PACKAGES: tuple[str, ...] = ("asyncio", "email", "xml", "http", "multiprocessing", "importlib", "unittest", "urllib")


@lru_cache(maxsize=1)
def package_bytes() -> tuple[bytes, ...]:
    """The source of each :data:`STDLIB_PACKAGES` package as one byte stream (files sorted, tests skipped).

    A package's ``.py`` files, at any depth, outside ``test``/``tests`` folders, sorted by
    path and joined by newlines (the data of ``fresh_dwconv_packages``).

    Returns:
        One ``bytes`` per package, in :data:`STDLIB_PACKAGES` order (cached).

    Raises:
        ValueError: a package is missing or has under 64 KiB of source (an unusual install).
    """
    out = []
    for name in STDLIB_PACKAGES:
        root = _stdlib_root() / name
        files = sorted(p for p in root.rglob("*.py")
                       if p.is_file() and not {"test", "tests"} & set(p.relative_to(root).parts[:-1]))
        data = b"\n".join(p.read_bytes() for p in files)
        if len(data) < 64 * 1024:
            raise ValueError(f"the standard-library package {name!r} under {root} has {len(data)} bytes of source; "
                             "fresh_dwconv_packages needs at least 64 KiB of each")
        out.append(data)
    return tuple(out)


@lru_cache(maxsize=1)
def pydoc_text() -> bytes:
    """``pydoc_data/topics.py`` of the standard library: Python's help topics, English prose (about 0.76 MB).

    The data of ``fresh_grulm_pydoc``.

    Returns:
        The file's bytes (cached).

    Raises:
        ValueError: the file is not there.
    """
    path = _stdlib_root() / "pydoc_data" / "topics.py"
    if not path.is_file():
        raise ValueError(f"fresh_grulm_pydoc needs {path} (part of every CPython install)")
    return path.read_bytes()


def char_tensors(ctx: int = 32, vocab: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`stdlib_text` as printable-ASCII ids (newline 0, others clamped to ``vocab - 1``); split 90/10.

    Returns:
        ``(train_ids, val_ids)``, int64 ``(L,)`` each.
    """
    text = stdlib_text()
    ids = torch.tensor([min(max(ord(c) - 32, 0), vocab - 1) if c != "\n" else 0 for c in text], dtype=torch.long)
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:]


def add_data_arguments(parser: argparse.ArgumentParser, datasets: tuple[str, ...] = ("digits", "cifar10"),
                       default: str | None = None) -> None:
    """Add the data options of :func:`load_split` to a command line: the demo's and the examples'.

    ``--dataset`` (only when ``datasets`` offers a choice), ``--data-dir`` (when ``cifar10`` is
    among them) and ``--limit``.
    """
    if len(datasets) > 1:
        parser.add_argument("--dataset", choices=datasets, default=default or datasets[0])
    if "cifar10" in datasets:
        parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py (for --dataset cifar10)")
    parser.add_argument("--limit", type=int, default=None, help="keep at most this many training samples")
