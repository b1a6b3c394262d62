"""Fresh test tasks of the tuned protocol (issue 15): data/architecture pairs never used before.

Defined for the forecaster issue's pre-registered test, after the zoo at tuned learning rates
(:mod:`gfm_accel.lab.zoo_tuned`) was fixed: none of their (data, architecture) pairs is a
held-out task (:mod:`.accel`), a larger task (:mod:`.char_gpt`, :mod:`.resnet`), in the old zoo
(:mod:`gfm_accel.lab.zoo`) or in the tuned zoo (``tests/lab/test_zoo_tuned.py`` checks it).

==========================  ==========================================  ==========================  =========
task                        data                                        model                       recipe
==========================  ==========================================  ==========================  =========
``fresh_mixer_digits``      sklearn digits, 2x2 patches (16 tokens)     MLP-Mixer, 2 blocks          Adam
``fresh_dwconv_packages``   128-byte windows of 8 stdlib *packages*'    depthwise-separable 1-D CNN  AdamW
                            source, labelled by package (8 classes)     with BatchNorm (MobileNet)
``fresh_grulm_pydoc``       the English help text of ``pydoc_data``     GRU byte language model      AdamW,
                            (``topics.py``, 0.76 MB)                                                 cosine
==========================  ==========================================  ==========================  =========

Why they are fresh:

- no benchmark or zoo task uses token-mixing MLPs (the Mixer), depthwise convolutions, or a
  recurrent *language model* (every recurrent net so far is a classifier);
- the byte data are new: the char GPT's corpus and the zoo's text are *top-level* standard
  library modules (:func:`gfm_accel.lab.datasets.stdlib_corpus`, :func:`~gfm_accel.lab.datasets.stdlib_text`);
  the package task reads only sub-packages (``asyncio/``, ``email/``, ...), and the language
  model reads ``pydoc_data/topics.py``, which is English prose, not code; the package task is
  also the first byte *classification* task;
- digits is reused by the Mixer (it is the only offline 2-D image set), with an architecture
  that no task has used.

Splits (deterministic, no RNG), disjoint as in the larger tasks:

- digits: :func:`gfm_accel.lab.datasets.load_split` (train 1197 / guard 200 / val 400);
- packages: each package's ``.py`` files (sorted, ``test``/``tests`` folders skipped) joined
  into one byte stream, cut into 4 KiB chunks; chunk ``i % 10 == 0`` goes to val, ``== 5`` to
  the guard, the rest to training. Training windows: a class drawn uniformly, then an offset
  in that class's training stream (both from the run's generator); val and guard: ``per_class``
  windows per class at evenly spaced offsets;
- pydoc text: :func:`gfm_accel.lab.tasks.char_gpt.split_text` (16 KiB chunks, ``i % 20``).

Budgets were set from one timed run at a tenth of the budget on one CPU thread, scaled up
(``docs/zoo_tuned.md`` gives the numbers); each full plain run takes at most about 15 s there.

Data loading note: the two byte datasets are read by the lab's loading module,
:mod:`gfm_accel.lab.datasets` (:func:`~gfm_accel.lab.datasets.package_bytes` with
:data:`~gfm_accel.lab.datasets.STDLIB_PACKAGES`, re-exported here because its order is the
class index, and :func:`~gfm_accel.lab.datasets.pydoc_text`); the cuts into train / val /
guard above are these tasks' own and stay here. Batches come from the lab's shared generators
(:func:`~gfm_accel.lab.tasks.workload.shuffled_batches`,
:func:`~gfm_accel.lab.tasks.workload.window_batches`,
:func:`~gfm_accel.lab.tasks.workload.spaced_window_batches`).

Example:
    >>> task = fresh_workload("fresh_mixer_digits", steps=2)
    >>> run = task.build(seed=0)
    >>> x, y = next(run.batches)
    >>> tuple(x.shape), tuple(run.model(x).shape), (task.data, task.arch)
    ((64, 8, 8), (64, 10), ('digits', 'mixer'))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..._config import JsonConfig
from ..datasets import STDLIB_PACKAGES, load_split, package_bytes, pydoc_text
from .char_gpt import TextSplits, split_text
from .workload import Batch, WorkloadConfig, shuffled_batches, spaced_window_batches, window_batches

__all__ = [
    "MixerDigits",
    "DWConvPackages",
    "GRULMPydoc",
    "Mixer",
    "DWSepCNN1d",
    "GRULM",
    "FRESH_TASKS",
    "fresh_workload",
    "STDLIB_PACKAGES",
]

_PKG_CHUNK = 4096


# --------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=1)
def _package_splits() -> tuple[TextSplits, ...]:
    """Per package: its train / val / guard streams (4 KiB chunks, ``i % 10``: 0 val, 5 guard)."""
    out = []
    for data in package_bytes():
        t = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        pieces = list(torch.split(t, _PKG_CHUNK))
        pick = lambda r: torch.cat([p for i, p in enumerate(pieces) if r(i % 10)])  # noqa: E731
        out.append(TextSplits(pick(lambda j: j not in (0, 5)), pick(lambda j: j == 0), pick(lambda j: j == 5)))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _pydoc_splits() -> TextSplits:
    return split_text(pydoc_text())


# --------------------------------------------------------------------------- models
class _MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens))
        self.channel_mlp = nn.Sequential(nn.Linear(dim, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        x = x + self.token_mlp(self.ln1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.ln2(x))


class Mixer(nn.Module):
    """An MLP-Mixer (Tolstikhin et al. 2021) on 8x8 images: 2x2 patches, token- and channel-mixing MLPs.

    Args:
        dim: channel width ``D``.
        depth: mixer blocks.
        patch: patch side (8 must be a multiple).
        classes: output classes.

    Example:
        >>> Mixer()(torch.zeros(3, 8, 8)).shape
        torch.Size([3, 10])
    """

    def __init__(self, dim: int = 48, depth: int = 2, patch: int = 2, classes: int = 10) -> None:
        super().__init__()
        if 8 % patch:
            raise ValueError(f"patch={patch} must divide the 8x8 image")
        self.patch = patch
        tokens = (8 // patch) ** 2
        self.embed = nn.Linear(patch * patch, dim)
        self.blocks = nn.Sequential(*(_MixerBlock(tokens, dim, 2 * tokens, 2 * dim) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8, 8) or (B, 1, 8, 8) -> (B, classes)
        p, b = self.patch, x.shape[0]
        x = x.reshape(b, 8 // p, p, 8 // p, p).permute(0, 1, 3, 2, 4).reshape(b, -1, p * p)
        return self.head(self.ln(self.blocks(self.embed(x))).mean(1))


class _DWSepBlock(nn.Module):
    """Depthwise conv (its own filter per channel) + BN + ReLU, then a 1x1 pointwise conv + BN + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Conv1d(c_in, c_in, kernel, stride, kernel // 2, groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm1d(c_in)
        self.pw = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, L) -> (B, C_out, L / stride)
        return F.relu(self.bn2(self.pw(F.relu(self.bn1(self.dw(x))))))


class DWSepCNN1d(nn.Module):
    """A MobileNet-style byte classifier: byte embedding, depthwise-separable 1-D conv blocks, mean pooling.

    Args:
        classes: output classes.
        embed: byte embedding width.
        widths: output channels of each block (each block halves the length).
        kernel: depthwise kernel size.

    Example:
        >>> DWSepCNN1d(classes=8)(torch.zeros(2, 128, dtype=torch.long)).shape
        torch.Size([2, 8])
    """

    def __init__(self, classes: int = 8, embed: int = 32, widths: tuple[int, ...] = (48, 64, 96), kernel: int = 9) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, embed)
        blocks, c = [], embed
        for w in widths:
            blocks.append(_DWSepBlock(c, w, kernel, 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, classes)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (B, L) int64 -> (B, classes)
        return self.head(self.blocks(self.embed(idx).transpose(1, 2)).mean(2))


class GRULM(nn.Module):
    """A byte-level GRU language model: embedding, one GRU layer, a linear read-out per position.

    Example:
        >>> GRULM(embed=8, hidden=16)(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 256])
    """

    def __init__(self, embed: int = 64, hidden: int = 128, layers: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, embed)
        self.gru = nn.GRU(embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, 256)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (B, T) int64 -> (B, T, 256) logits
        return self.head(self.gru(self.embed(idx))[0])


# --------------------------------------------------------------------------- workloads
@dataclass
class MixerDigits(WorkloadConfig, JsonConfig):
    """``fresh_mixer_digits``: an MLP-Mixer on sklearn digits.

    Attributes:
        name, data, arch: the task and its (data, architecture) pair.
        optimizer, lr, weight_decay, total_steps, batch_size, schedule, warmup: the default recipe.
        dim, depth: the model (:class:`Mixer`).
    """

    name: str = "fresh_mixer_digits"
    data: str = "digits"
    arch: str = "mixer"
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    total_steps: int = 300
    batch_size: int = 64
    schedule: str = "constant"
    warmup: float = 0.05
    dim: int = 48
    depth: int = 2

    def __post_init__(self) -> None:
        self.check_recipe()
        self.check_positive_ints("dim", "depth")

    def make_model(self) -> Mixer:
        return Mixer(self.dim, self.depth)

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        s = load_split("digits")
        return [(s.x_val, s.y_val)], [(s.x_guard, s.y_guard)]

    def train_batches(self, seed: int) -> Iterator[Batch]:
        s = load_split("digits")
        return shuffled_batches(s.x_train, s.y_train, self.batch_size, seed)


@dataclass
class DWConvPackages(WorkloadConfig, JsonConfig):
    """``fresh_dwconv_packages``: which standard-library package a 128-byte window of source comes from.

    Attributes:
        name, data, arch: the task and its (data, architecture) pair.
        optimizer, lr, weight_decay, total_steps, batch_size, schedule, warmup: the default recipe.
        window: bytes per example.
        per_class: val and guard windows per class.
    """

    name: str = "fresh_dwconv_packages"
    data: str = "stdlib_packages"
    arch: str = "dwsep_cnn1d"
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.01
    total_steps: int = 400
    batch_size: int = 64
    schedule: str = "constant"
    warmup: float = 0.05
    window: int = 128
    per_class: int = 64

    def __post_init__(self) -> None:
        self.check_recipe()
        self.check_positive_ints("window", "per_class")

    def make_model(self) -> DWSepCNN1d:
        return DWSepCNN1d(classes=len(STDLIB_PACKAGES))

    def _fixed(self, split: str) -> list[Batch]:
        xs, ys = [], []
        for c, s in enumerate(_package_splits()):
            stream = getattr(s, split)
            offsets = torch.linspace(0, len(stream) - self.window, self.per_class).long()
            xs.append(stream[offsets[:, None] + torch.arange(self.window)].long())
            ys.append(torch.full((self.per_class,), c, dtype=torch.long))
        x, y = torch.cat(xs), torch.cat(ys)
        return list(zip(x.split(256), y.split(256)))

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        return self._fixed("val"), self._fixed("guard")

    def bn_inputs(self) -> list[torch.Tensor]:
        """Four fixed training batches (the first windows of each class's stream, round robin)."""
        g = self.train_batches(seed=0)
        return [next(g)[0] for _ in range(4)]

    def train_batches(self, seed: int) -> Iterator[Batch]:
        """A class drawn uniformly, then an offset in its training stream, per window (generator ``seed``)."""
        streams = [s.train for s in _package_splits()]
        flat = torch.cat(streams)
        lengths = torch.tensor([len(s) for s in streams])
        starts = torch.cumsum(lengths, 0) - lengths  # where each class's stream begins in ``flat``
        g = torch.Generator().manual_seed(seed)
        ar = torch.arange(self.window)
        while True:
            y = torch.randint(0, len(streams), (self.batch_size,), generator=g)
            off = (torch.rand(self.batch_size, generator=g) * (lengths[y] - self.window)).long()
            yield flat[(starts[y] + off)[:, None] + ar].long(), y


@dataclass
class GRULMPydoc(WorkloadConfig, JsonConfig):
    """``fresh_grulm_pydoc``: a GRU byte language model on Python's help topics (English prose).

    Attributes:
        name, data, arch: the task and its (data, architecture) pair.
        optimizer, lr, weight_decay, total_steps, batch_size, schedule, warmup: the default recipe.
        context: sequence length; embed, hidden: the model (:class:`GRULM`).
        val_batches, guard_batches: fixed evaluation batches of ``batch_size`` sequences.
    """

    name: str = "fresh_grulm_pydoc"
    data: str = "pydoc_topics"
    arch: str = "gru_lm"
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.01
    total_steps: int = 300
    batch_size: int = 16
    schedule: str = "warmup_cosine"
    warmup: float = 0.05
    context: int = 64
    embed: int = 64
    hidden: int = 128
    val_batches: int = 8
    guard_batches: int = 4

    def __post_init__(self) -> None:
        self.check_recipe()
        self.check_positive_ints("context", "embed", "hidden", "val_batches", "guard_batches")

    def make_model(self) -> GRULM:
        return GRULM(self.embed, self.hidden)

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        s = _pydoc_splits()
        return (spaced_window_batches(s.val, self.val_batches, self.batch_size, self.context),
                spaced_window_batches(s.guard, self.guard_batches, self.batch_size, self.context))

    def train_batches(self, seed: int) -> Iterator[Batch]:
        return window_batches(_pydoc_splits().train, self.batch_size, self.context, seed)


#: The fresh test tasks by name (the set ``fresh`` of ``gfm-accel bench accel --protocol tuned --tasks``).
FRESH_TASKS: dict[str, type[WorkloadConfig]] = {
    "fresh_mixer_digits": MixerDigits,
    "fresh_dwconv_packages": DWConvPackages,
    "fresh_grulm_pydoc": GRULMPydoc,
}


def fresh_workload(name: str, steps: int | None = None) -> WorkloadConfig:
    """The fresh task ``name`` at its default recipe, with its budget replaced by ``steps`` when given.

    Raises:
        ValueError: an unknown name.
    """
    if name not in FRESH_TASKS:
        raise ValueError(f"unknown fresh task {name!r}; choose from {sorted(FRESH_TASKS)}")
    w = FRESH_TASKS[name]()
    return replace(w, total_steps=int(steps)) if steps else w
