"""A byte-level GPT (decoder-only Transformer, plain torch) on the Python standard library's source.

Corpus (:func:`gfm_accel.lab.datasets.stdlib_corpus`, re-exported here as ``stdlib_text``):
the ``.py`` files directly under ``sysconfig.get_paths()["stdlib"]``, read as bytes
in sorted file-name order and joined with a newline (about 4.7 MB for CPython 3.11; it ships
with every Python, so nothing is downloaded). Tokens are the 256 byte values, so the
vocabulary does not depend on the text.

Split (deterministic, no RNG): the corpus is cut into 16 KiB chunks; chunk ``i`` goes to the
validation split (where targets are measured) when ``i % 20 == 0``, to the guard split when
``i % 20 == 10``, to training otherwise. Each split is its chunks concatenated, so no
sequence of one split contains bytes of another.

- training batches: ``batch_size`` windows of ``context + 1`` bytes at offsets drawn from the
  run's own ``torch.Generator`` (seeded by the run seed); inputs are the first ``context``
  bytes, labels the next-byte shift (:func:`~gfm_accel.lab.tasks.workload.window_batches`);
- validation: ``val_batches`` fixed batches at evenly spaced offsets of the validation split
  (:func:`~gfm_accel.lab.tasks.workload.spaced_window_batches`);
  the loss is the mean next-byte cross-entropy (nats) over all their positions;
- guard: ``guard_batches`` fixed batches of the guard split, the same way.

Default recipe: AdamW (lr 2e-3, weight decay 0.01), linear warmup (5%) then cosine to 0, 300
steps of 8 sequences of 64 bytes (about 0.11 s a step on one CPU thread). The default model
has 6 blocks of width 128 (4 heads): 1,263,616 parameters.

Example:
    >>> task = CharGPT(total_steps=2, batch_size=2, context=16, dim=32, depth=1, heads=2, val_batches=1, guard_batches=1)
    >>> run = task.build(seed=0)
    >>> x, y = next(run.batches)
    >>> tuple(x.shape), tuple(run.model(x).shape)
    ((2, 16), (2, 16, 256))
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..._config import JsonConfig
from ..datasets import stdlib_corpus as stdlib_text
from .workload import Batch, WorkloadConfig, spaced_window_batches, window_batches

__all__ = ["CharGPT", "GPT", "TextSplits", "stdlib_text", "split_text"]

CHUNK = 16 * 1024
VOCAB = 256


@dataclass(frozen=True)
class TextSplits:
    """The corpus as uint8 tensors.

    Attributes:
        train, val, guard: ``(N_split,)`` uint8 byte streams.
    """

    train: torch.Tensor
    val: torch.Tensor
    guard: torch.Tensor


def split_text(data: bytes, chunk: int = CHUNK) -> TextSplits:
    """Cut ``data`` into ``chunk``-byte pieces: ``i % 20 == 0`` val, ``== 10`` guard, else train.

    Args:
        data: the corpus.
        chunk: the piece length in bytes.

    Returns:
        The :class:`TextSplits`.
    """
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    pieces = list(torch.split(t, chunk))
    if len(pieces) < 21:
        raise ValueError(f"the corpus has {len(pieces)} chunks of {chunk} bytes; at least 21 are needed for the split")
    pick = lambda r: torch.cat([p for i, p in enumerate(pieces) if r(i % 20)])  # noqa: E731
    return TextSplits(pick(lambda j: j not in (0, 10)), pick(lambda j: j == 0), pick(lambda j: j == 10))


@functools.lru_cache(maxsize=1)
def _stdlib_splits() -> TextSplits:
    return split_text(stdlib_text())


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D/H)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """A pre-norm decoder-only Transformer over bytes (learned positions, no dropout).

    Args:
        context: maximum sequence length ``T``.
        dim: model width ``D`` (a multiple of ``heads``).
        depth: number of blocks.
        heads: attention heads.
        vocab: vocabulary size.

    Example:
        >>> m = GPT(context=8, dim=16, depth=1, heads=2)
        >>> tuple(m(torch.zeros(3, 8, dtype=torch.long)).shape)
        (3, 8, 256)
    """

    def __init__(self, context: int = 64, dim: int = 128, depth: int = 6, heads: int = 4, vocab: int = VOCAB) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be a multiple of heads={heads}")
        self.context = context
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(context, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        for m in self.modules():  # GPT-2's initialization
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.pos, std=0.02)
        for blk in self.blocks:  # residual projections scaled by depth
            for lin in (blk.proj, blk.mlp[2]):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * depth))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (B, T) int64 -> (B, T, vocab) logits
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"sequence length {t} exceeds the context {self.context}")
        x = self.tok(idx) + self.pos[:t]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


@dataclass
class CharGPT(WorkloadConfig, JsonConfig):
    """The char-level (byte-level) GPT workload on the standard library's source.

    Attributes:
        name: the task name.
        optimizer, lr, weight_decay, total_steps, batch_size, schedule, warmup: the default
            recipe (:class:`~gfm_accel.lab.tasks.workload.WorkloadConfig`).
        context, dim, depth, heads: the model (:class:`GPT`).
        val_batches, guard_batches: fixed evaluation batches of ``batch_size`` sequences.
    """

    name: str = "char_gpt"
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.01
    total_steps: int = 300
    batch_size: int = 8
    schedule: str = "warmup_cosine"
    warmup: float = 0.05
    context: int = 64
    dim: int = 128
    depth: int = 6
    heads: int = 4
    val_batches: int = 16
    guard_batches: int = 4

    def __post_init__(self) -> None:
        self.check_recipe()
        self.check_positive_ints("context", "dim", "depth", "heads", "val_batches", "guard_batches")
        if self.dim % self.heads:
            raise ValueError(f"CharGPT: dim={self.dim} must be a multiple of heads={self.heads}")

    def make_model(self) -> GPT:
        """A freshly initialized :class:`GPT` (draws from the global RNG; :meth:`build` forks it)."""
        return GPT(self.context, self.dim, self.depth, self.heads)

    def splits(self) -> TextSplits:
        """The train / val / guard byte streams (cached)."""
        return _stdlib_splits()

    def eval_sets(self) -> tuple[list[Batch], list[Batch]]:
        """``val_batches`` and ``guard_batches`` fixed batches, evenly spaced over their splits."""
        s = self.splits()
        return (
            spaced_window_batches(s.val, self.val_batches, self.batch_size, self.context),
            spaced_window_batches(s.guard, self.guard_batches, self.batch_size, self.context),
        )

    def train_batches(self, seed: int) -> Iterator[Batch]:
        """Windows at offsets drawn from the run's generator, ``batch_size`` a batch (:func:`~.workload.window_batches`)."""
        return window_batches(self.splits().train, self.batch_size, self.context, seed)
