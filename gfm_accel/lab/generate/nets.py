"""The two architecture families of paper Sec. 5.3 / App. D: NAS-Bench-201 cell CNNs and
single-token image Transformers.

**CNN** (:class:`CellCNN`). A NAS-Bench-201 cell (Dong & Yang, 2020) is a DAG on 4 nodes;
node 0 is the cell input, node ``j`` is the sum of ``op_ij(node_i)`` over ``i < j``, node 3
is the output. Each of the 6 edges picks one of :data:`CELL_OPS`: ``none`` (zero),
``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU -> Conv (no bias) ->
BatchNorm, as in NAS-Bench-201) and ``avg_pool_3x3`` (stride 1, padding 1). The network is
``stem (Conv3x3 + BN) -> num_cells cells -> BN -> ReLU -> global average pool -> Linear``.
The paper gives no macro skeleton, only the count "5,418" parameters for the CNN family;
that number is not unique (several tiny skeletons reach it), so we keep the NAS-Bench-201
stem/cell/"lastact" structure with one cell of 16 channels on CIFAR-10 (``CNN_PAPER``),
whose counts are ``666 + 2336 * (#conv3x3) + 288 * (#conv1x1)``, i.e. 666 to 14,682; a cell
with two 3x3 and no 1x1 convolutions has 5,338 parameters, the closest to the paper.
:func:`sample_cell` draws a *valid* cell: a path of non-``none`` edges from node 0 to 3.

**Transformer** (:class:`ImageTransformer`). The image is flattened and linearly embedded
into a single token (App. D: "flattened and projected to a token vector"), followed by
``depth`` post-norm blocks (self-attention with 2 heads -> add & LayerNorm -> MLP with
ratio 2 -> add & LayerNorm; ``torch.nn.TransformerEncoderLayer``), and a linear classifier.
With CIFAR-10 input (3072 features), ``depth=4, hidden=128`` this has exactly 924,554
parameters, the paper's count, so that is ``TRANSFORMER_PAPER``. The sampling grid is
depth in {1,2,3,4}, hidden in {64,...,1024}, dropout in {0, 0.1, 0.3}.

Example:
    >>> import random
    >>> cell = sample_cell(random.Random(0))
    >>> len(cell.ops), cell.is_valid()
    (6, True)
    >>> net = ImageTransformer(3 * 32 * 32, 10, depth=4, hidden=128)
    >>> sum(p.numel() for p in net.parameters())
    924554
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn

from ..._config import JsonConfig

__all__ = [
    "CELL_OPS",
    "CELL_EDGES",
    "Cell",
    "sample_cell",
    "CellCNN",
    "cnn_param_count",
    "TRANSFORMER_GRID",
    "TransformerArch",
    "sample_transformer_arch",
    "ImageTransformer",
    "count_params",
]

#: NAS-Bench-201 candidate operations.
CELL_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edge order (source, target): the NAS-Bench-201 string order.
CELL_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))

#: Transformer sampling grid (paper App. D).
TRANSFORMER_GRID = {"depth": (1, 2, 3, 4), "hidden": (64, 128, 256, 512, 1024), "dropout": (0.0, 0.1, 0.3)}


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (the D of its trajectory files)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Cell:
    """A NAS-Bench-201 cell: one op per edge of :data:`CELL_EDGES`.

    Example:
        >>> c = Cell.from_string("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
        >>> c.ops[0], c.is_valid()
        ('nor_conv_3x3', True)
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.ops) != len(CELL_EDGES):
            raise ValueError(f"a cell has {len(CELL_EDGES)} edges, got {len(self.ops)} ops")
        for op in self.ops:
            if op not in CELL_OPS:
                raise ValueError(f"unknown cell op {op!r}; choose from {', '.join(CELL_OPS)}")

    def is_valid(self) -> bool:
        """True when non-``none`` edges connect node 0 to node 3."""
        reach = {0}
        for (i, j), op in sorted(zip(CELL_EDGES, self.ops), key=lambda e: e[0][1]):
            if op != "none" and i in reach:
                reach.add(j)
        return 3 in reach

    def to_string(self) -> str:
        """NAS-Bench-201 notation, e.g. ``|nor_conv_3x3~0|+|...~0|...~1|+|...|``."""
        parts, k = [], 0
        for j in (1, 2, 3):
            parts.append("|" + "|".join(f"{self.ops[k + i]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(parts)

    @classmethod
    def from_string(cls, s: str) -> "Cell":
        ops = []
        for node in s.split("+"):
            for tok in node.strip("|").split("|"):
                ops.append(tok.split("~")[0])
        return cls(tuple(ops))


def sample_cell(rng: random.Random, *, exclude: set | None = None, max_tries: int = 10_000) -> Cell:
    """Draw a valid cell uniformly among valid cells (rejection sampling).

    Args:
        rng: a ``random.Random`` (reproducible across platforms).
        exclude: cells to skip, for sampling unique cells.
    """
    for _ in range(max_tries):
        cell = Cell(tuple(rng.choice(CELL_OPS) for _ in CELL_EDGES))
        if cell.is_valid() and (exclude is None or cell not in exclude):
            return cell
    raise ValueError("could not sample a new valid cell (the space is exhausted)")


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c: int, k: int):
        super().__init__(nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c))


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _make_op(name: str, c: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(c, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(c, 3)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class _CellModule(nn.Module):
    def __init__(self, cell: Cell, c: int):
        super().__init__()
        self.cell = cell
        self.edges = nn.ModuleList(_make_op(op, c) for op in cell.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for j in (1, 2, 3):
            total = 0
            for i in range(j):
                if self.cell.ops[k] != "none":
                    total = total + self.edges[k](nodes[i])
                k += 1
            nodes.append(total if torch.is_tensor(total) else torch.zeros_like(x))
        return nodes[3]


class CellCNN(nn.Module):
    """A NAS-Bench-201 cell network (see module notes).

    Args:
        cell: the cell.
        in_channels: image channels (3 for CIFAR-10, 1 for digits).
        num_classes: classes.
        channels: C, the width of stem and cells.
        num_cells: cells stacked at width C.

    Example:
        >>> net = CellCNN(Cell(("nor_conv_3x3", "none", "none", "none", "none", "nor_conv_3x3")), 3, 10)
        >>> count_params(net), net(torch.zeros(2, 3, 32, 32)).shape
        (5338, torch.Size([2, 10]))
    """

    def __init__(self, cell: Cell, in_channels: int, num_classes: int, channels: int = 16, num_cells: int = 1):
        super().__init__()
        if channels < 1 or num_cells < 1:
            raise ValueError(f"channels and num_cells must be >= 1, got {channels}, {num_cells}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cells = nn.Sequential(*(_CellModule(cell, channels) for _ in range(num_cells)))
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lastact(self.cells(self.stem(x)))
        return self.classifier(h.mean(dim=(2, 3)))


def cnn_param_count(cell: Cell, in_channels: int, num_classes: int, channels: int = 16, num_cells: int = 1) -> int:
    """Closed-form parameter count of :class:`CellCNN` (checked against the module in tests)."""
    c = channels
    per_cell = sum({"nor_conv_3x3": 9 * c * c + 2 * c, "nor_conv_1x1": c * c + 2 * c}.get(op, 0) for op in cell.ops)
    return in_channels * c * 9 + 2 * c + num_cells * per_cell + 2 * c + c * num_classes + num_classes


@dataclass(frozen=True)
class TransformerArch(JsonConfig):
    """One point of the Transformer grid.

    Example:
        >>> TransformerArch(depth=4, hidden=128, dropout=0.1).hidden
        128
    """

    depth: int
    hidden: int
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.depth < 1 or self.hidden < 2 or self.hidden % 2:
            raise ValueError(f"need depth >= 1 and an even hidden size (2 heads), got {self.depth}, {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def sample_transformer_arch(rng: random.Random, grid: dict | None = None) -> TransformerArch:
    """Draw (depth, hidden, dropout) uniformly from the grid (default :data:`TRANSFORMER_GRID`)."""
    g = grid or TRANSFORMER_GRID
    return TransformerArch(depth=rng.choice(g["depth"]), hidden=rng.choice(g["hidden"]), dropout=rng.choice(g["dropout"]))


class ImageTransformer(nn.Module):
    """Flattened image -> one linear token -> ``depth`` post-norm Transformer blocks -> Linear.

    Args:
        in_features: flattened image size (3072 for CIFAR-10, 64 for digits).
        num_classes: classes.
        depth: blocks.
        hidden: token width.
        dropout: dropout inside every block.
        heads: attention heads (paper: 2).
        mlp_ratio: MLP width / hidden (paper: 2).

    Example:
        >>> net = ImageTransformer(64, 10, depth=1, hidden=32)
        >>> net(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        depth: int = 4,
        hidden: int = 128,
        dropout: float = 0.0,
        heads: int = 2,
        mlp_ratio: int = 2,
    ):
        super().__init__()
        TransformerArch(depth, hidden, dropout)  # validates
        self.embed = nn.Linear(in_features, hidden)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                hidden, heads, dim_feedforward=mlp_ratio * hidden, dropout=dropout,
                activation="gelu", batch_first=True, norm_first=False,
            )
            for _ in range(depth)
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.flatten(1)).unsqueeze(1)  # (B, 1, hidden): one token per image
        for block in self.blocks:
            h = block(h)
        return self.head(h[:, 0])
