"""Neuron interaction: NFN-style pooled context of the coordinate forecaster (``pooled >= 1``).

With ``pooled=0`` every coordinate is forecast from its own window and its tensor's
statistics alone. With ``pooled >= 1`` each coordinate's inputs also hold the **means of
the per-coordinate features** over five sets of coordinates, one round of the mean
aggregation of neural functionals (Zhou et al. 2023, ``NPLinear``) on the neuron graph in
which neurons are nodes and weights are edges:

=========  ==================================================================================
term       mean over
=========  ==================================================================================
row        its tensor's row (the output neuron it writes to)
column     its tensor's column (the input neuron it reads from)
tensor     its whole tensor
previous   the previous layer's row at the index of this coordinate's column (the incoming
           weights of the neuron this weight reads from)
next       the next layer's column at the index of this coordinate's row (the outgoing
           weights of the neuron this weight writes to)
=========  ==================================================================================

plus two availability flags (previous / next layer matched). The field maps these
``5 F + 2`` numbers linearly into its first layer (``F`` features per coordinate: the
``history + 1`` inputs of :func:`.features.coordinate_inputs` in round 1; the ``H`` static
activations of the first layer in round 2). Means of features that are permuted with the
neurons are permuted the same way, so the forecast is **equivariant to permutations of
hidden neurons** (see ``tests/forecast/coordinate/test_pooled.py``).

How each tensor maps to rows and columns (``shape`` of its :class:`~gfm_accel.params.ParamEntry`):

* ``dim >= 2`` (linear ``(out, in)``, conv ``(out, in, *k)``, attention ``in_proj_weight``
  ``(3d, d)`` and ``out_proj.weight`` ``(d, d)``, any other matrix): rows = ``shape[0]``,
  columns = ``shape[1]``; trailing axes (kernel positions) are pooled into both means, so a
  conv weight's column mean is over ``(out, *k)`` at one input channel.
* **embedding** ``(vocab, d)`` (kind ``"embedding"``): rows = vocab, columns = d; the
  embedding *writes* feature ``d``, so for adjacency its output axis is the column and it
  has no previous layer (its input is a token id, not a neuron).
* ``dim <= 1`` (biases, norm weights and biases, bare vectors): one row per entry and a single
  column; the row term is the entry itself and the column term is the tensor mean.

**Layers and adjacency.** Walking the :class:`~gfm_accel.params.ParamSpec` in order, a
tensor with ``dim >= 2`` starts a new layer whose output size is its rows (an embedding's:
its columns) and input size its columns (an embedding's: none). A vector whose size equals
the current layer's output size is **attached** to it (a bias, the LayerNorm/BatchNorm
that follows): entry ``i`` is that layer's output neuron ``i``. Any other vector starts a
layer of its own (input = output = its entries, as for an elementwise op). Two consecutive
layers are adjacent when the input size of the second equals the output size of the first.
Each tensor of a layer gets the next layer's term at its output index; the layer's main
tensor (its first) also gets the previous layer's term at its input index. Everything
unmatched (the first layer's previous term, the last layer's next term, a conv followed by
a ``Flatten`` and a linear of another size, attention's ``in_proj (3d, d)`` to ``out_proj``
whose sizes differ, an attached vector's previous term) is zero with its flag 0.

The choice of "consecutive in the spec with matching sizes" is a heuristic: the spec knows
shapes, not the computation graph, so a residual connection or a layer that reuses an
earlier output is invisible to it, and two consecutive layers that happen to have matching
sizes but are not composed (e.g. two parallel heads) are treated as adjacent. It needs no
model code and matches plain MLP, CNN and transformer-block layouts.

**Memory.** The means live in one buffer of ``S`` slots (rows and columns of every tensor
that has more than one entry per row or column, or that a neighbour reads), ``O(rows +
cols)`` per tensor; coordinates whose row or column holds only themselves read their own
features instead of a slot. Statistics are accumulated chunk by chunk
(:func:`accumulate`), then gathered per chunk (:func:`gather`), so no ``(D, F)`` temporary
ever exists beyond a chunk.

Example:
    >>> from torch import nn
    >>> spec = ParamSpec.from_model(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    >>> layout = PoolLayout.from_spec(spec)
    >>> layout.prev_base.tolist(), layout.next_base.tolist()      # weight, bias, weight, bias
    ([-1, -1, 0, -1], [10, 10, -1, -1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import Tensor

from ...params import ParamSpec
from .features import tensor_ids_for_range

__all__ = ["POOL_TERMS", "NUM_POOL_FLAGS", "pool_width", "PoolLayout", "CoordIndex", "PoolStats",
           "accumulate", "gather", "chunked"]

#: Pooled terms per feature: row, column, tensor, previous layer, next layer.
POOL_TERMS = 5
#: Availability flags appended to the pooled terms: previous layer matched, next layer matched.
NUM_POOL_FLAGS = 2


def pool_width(features: int) -> int:
    """Width of the pooled inputs of one coordinate for ``features`` features per coordinate."""
    return POOL_TERMS * features + NUM_POOL_FLAGS


@dataclass
class _Layer:
    main: int
    out_size: int
    in_size: int | None  # None: no previous layer possible (an embedding)
    vector: bool


@dataclass(frozen=True)
class PoolLayout:
    """Where each coordinate's pooled terms live, for one :class:`~gfm_accel.params.ParamSpec`.

    Per tensor ``k`` (all ``(K,)`` int64 unless said): a coordinate at offset ``j`` inside
    tensor ``k`` has row ``r = j // (cols * inner)`` and column ``c = (j // inner) % cols``;
    its output index is ``c`` if ``out_col`` else ``r``, its input index ``r`` if ``in_row``
    else ``c``. A base of ``-1`` means "no slot": the row/column term is the coordinate's own
    features, the previous/next term is zero (flag 0).

    Attributes:
        offsets, ends: the tensor's span in the flat vector.
        cols, inner: columns, and entries per (row, column) pair (kernel positions).
        out_col, in_row: ``(K,)`` bool, see above.
        row_base, col_base: slot of the tensor's row 0 / column 0.
        prev_base: slot of the previous layer's output neuron 0 (its row means, an
            embedding's column means), read at the coordinate's input index.
        next_base: slot of the next layer's input neuron 0 (its column means, a vector
            layer's entries), read at the coordinate's output index.
        counts: ``(S,)`` float32 number of entries averaged in each slot.
        numels: ``(K,)`` float32 tensor sizes.

    Example:
        >>> layout = PoolLayout.from_spec(ParamSpec.flat(10))
        >>> layout.num_slots, layout.row_base.tolist(), layout.col_base.tolist()
        (1, [-1], [0])
    """

    offsets: Tensor
    ends: Tensor
    cols: Tensor
    inner: Tensor
    out_col: Tensor
    in_row: Tensor
    row_base: Tensor
    col_base: Tensor
    prev_base: Tensor
    next_base: Tensor
    counts: Tensor
    numels: Tensor

    @property
    def num_slots(self) -> int:
        """S, the number of real slots (the buffers hold two more: zero and sink)."""
        return int(self.counts.shape[0])

    @classmethod
    def from_spec(cls, spec: ParamSpec) -> "PoolLayout":
        """Build the layout (rows, columns, layers, adjacency) of ``spec``; O(K) work."""
        entries = spec.entries
        k = len(entries)
        rows, cols, inner = [], [], []
        for e in entries:
            if len(e.shape) >= 2:
                rows.append(e.shape[0])
                cols.append(e.shape[1])
                inner.append(math.prod(e.shape[2:]))
            else:
                rows.append(e.numel)
                cols.append(1)
                inner.append(1)
        matrix = [len(e.shape) >= 2 for e in entries]
        embedding = [matrix[i] and entries[i].kind == "embedding" for i in range(k)]
        # Group the tensors into layers (see the module docstring).
        layers: list[_Layer] = []
        layer_of = [0] * k
        for i in range(k):
            if matrix[i]:
                out_size = cols[i] if embedding[i] else rows[i]
                layers.append(_Layer(i, out_size, None if embedding[i] else cols[i], vector=False))
            elif not layers or entries[i].numel != layers[-1].out_size:
                layers.append(_Layer(i, entries[i].numel, entries[i].numel, vector=True))
            layer_of[i] = len(layers) - 1
        adjacent = [layers[a + 1].in_size == layers[a].out_size for a in range(len(layers) - 1)]
        # Which segments are needed: own pooling (more than one entry per row/column) or a
        # neighbour reading them.
        need_row = [cols[i] * inner[i] > 1 for i in range(k)]
        need_col = [rows[i] * inner[i] > 1 for i in range(k)]
        prev_src = [-1] * k
        next_src = [-1] * k
        for a, layer in enumerate(layers):
            members = [i for i in range(k) if layer_of[i] == a]
            if a > 0 and adjacent[a - 1]:
                prev_src[layer.main] = layers[a - 1].main
            if a + 1 < len(layers) and adjacent[a]:
                for i in members:
                    next_src[i] = layers[a + 1].main
        for i in range(k):
            p, q = prev_src[i], next_src[i]
            if p >= 0:  # the previous layer's output neuron: an embedding's column, else a row
                (need_col if embedding[p] else need_row)[p] = True
            if q >= 0:  # the next layer's input neuron: a matrix's column, a vector's entry
                (need_col if matrix[q] else need_row)[q] = True
        row_base, col_base, counts = [-1] * k, [-1] * k, []
        for i in range(k):
            if need_row[i]:
                row_base[i] = len(counts)
                counts.extend([float(cols[i] * inner[i])] * rows[i])
            if need_col[i]:
                col_base[i] = len(counts)
                counts.extend([float(rows[i] * inner[i])] * cols[i])
        prev_base = [-1 if p < 0 else (col_base[p] if embedding[p] else row_base[p]) for p in prev_src]
        next_base = [-1 if q < 0 else (col_base[q] if matrix[q] else row_base[q]) for q in next_src]

        def ints(v: list) -> Tensor:
            return torch.tensor(v, dtype=torch.long)

        return cls(
            offsets=ints([e.offset for e in entries]), ends=ints([e.end for e in entries]),
            cols=ints(cols), inner=ints(inner),
            out_col=torch.tensor(embedding, dtype=torch.bool),
            in_row=torch.tensor([embedding[i] or not matrix[i] for i in range(k)], dtype=torch.bool),
            row_base=ints(row_base), col_base=ints(col_base), prev_base=ints(prev_base),
            next_base=ints(next_base), counts=torch.tensor(counts, dtype=torch.float32),
            numels=torch.tensor([float(e.numel) for e in entries], dtype=torch.float32),
        )

    def index(self, coords: Tensor, tid: Tensor | None = None) -> "CoordIndex":
        """Slots of the coordinates ``coords`` (flat indices, any shape; ``tid`` their tensors)."""
        if tid is None:
            tid = torch.bucketize(coords, self.ends, right=True)
        j = coords - self.offsets[tid]
        inner = self.inner[tid]
        ncols = self.cols[tid]
        r = torch.div(j, ncols * inner, rounding_mode="floor")
        c = torch.remainder(torch.div(j, inner, rounding_mode="floor"), ncols)
        out_i = torch.where(self.out_col[tid], c, r)
        in_i = torch.where(self.in_row[tid], r, c)
        zero, sink = self.num_slots, self.num_slots + 1

        def slot(base: Tensor, at: Tensor, missing: int) -> Tensor:
            return torch.where(base >= 0, base + at, missing)

        rb, cb, pb, nb = self.row_base[tid], self.col_base[tid], self.prev_base[tid], self.next_base[tid]
        return CoordIndex(
            tid=tid,
            row_acc=slot(rb, r, sink), col_acc=slot(cb, c, sink),
            row=slot(rb, r, zero), col=slot(cb, c, zero),
            row_self=(rb < 0), col_self=(cb < 0),
            prev=slot(pb, in_i, zero), next=slot(nb, out_i, zero),
            flags=torch.stack([(pb >= 0), (nb >= 0)], dim=-1).float(),
        )

    def index_range(self, start: int, stop: int) -> "CoordIndex":
        """:meth:`index` of the coordinates ``start..stop-1`` (one inference chunk).

        A chunk inside one tensor (the common case) is indexed with that tensor's numbers as
        Python scalars: the same slots, fewer per-coordinate operations.
        """
        tid = tensor_ids_for_range(self.ends, start, stop)
        k = int(tid[0]) if stop > start else -1
        if k < 0 or k != int(tid[-1]):
            return self.index(torch.arange(start, stop, dtype=torch.long), tid)
        offset, ncols, inner = int(self.offsets[k]), int(self.cols[k]), int(self.inner[k])
        j = torch.arange(start - offset, stop - offset, dtype=torch.long)
        r = torch.div(j, ncols * inner, rounding_mode="floor")
        c = torch.remainder(j if inner == 1 else torch.div(j, inner, rounding_mode="floor"), ncols)
        out_i = c if bool(self.out_col[k]) else r
        in_i = r if bool(self.in_row[k]) else c
        zero, sink = self.num_slots, self.num_slots + 1
        n = stop - start

        def slot(base: int, at: Tensor, missing: int) -> Tensor:
            return at + base if base >= 0 else torch.full((n,), missing, dtype=torch.long)

        rb, cb, pb, nb = (int(v[k]) for v in (self.row_base, self.col_base, self.prev_base, self.next_base))
        return CoordIndex(
            tid=tid,
            row_acc=slot(rb, r, sink), col_acc=slot(cb, c, sink),
            row=slot(rb, r, zero), col=slot(cb, c, zero),
            row_self=torch.tensor(rb < 0), col_self=torch.tensor(cb < 0),
            prev=slot(pb, in_i, zero), next=slot(nb, out_i, zero),
            flags=torch.tensor([float(pb >= 0), float(nb >= 0)]).expand(n, 2),
            single=k,
        )


@dataclass
class CoordIndex:
    """Slots of C coordinates (shape ``(C,)``, or ``(B, C)`` for per-window samples).

    Attributes:
        tid: tensor of each coordinate.
        row_acc, col_acc: where its features are summed (the sink slot when not pooled).
        row, col, prev, next: where its terms are read (the zero slot when missing).
        row_self, col_self: bool, the term is the coordinate's own features (0-dim when
            the same for all).
        flags: ``(..., 2)`` float, previous / next layer available.
        single: the tensor of every coordinate when they all lie in one, else None.
    """

    tid: Tensor
    row_acc: Tensor
    col_acc: Tensor
    row: Tensor
    col: Tensor
    row_self: Tensor
    col_self: Tensor
    prev: Tensor
    next: Tensor
    flags: Tensor
    single: int | None = None


@dataclass
class PoolStats:
    """Means of F features per slot and per tensor, for B windows.

    Attributes:
        slots: ``(B, S + 2, F)`` slot means; slot ``S`` is zero (missing terms), ``S + 1``
            the sink (zeroed too).
        tensors: ``(B, K, F)`` tensor means.
    """

    slots: Tensor
    tensors: Tensor


def accumulate(layout: PoolLayout, chunks: Iterable[tuple[CoordIndex, Tensor]], batch: int,
               features: int) -> PoolStats:
    """First pass: the row, column and tensor means of per-coordinate features.

    Args:
        layout: the spec's :class:`PoolLayout`.
        chunks: ``(index, features)`` pairs covering every coordinate once, features
            ``(B, C, F)``. In place when autograd is off (inference, memory ``O(S F)``);
            out of place, hence differentiable, when it is on (training).
        batch, features: B and F.

    Returns:
        The :class:`PoolStats`.
    """
    s = layout.num_slots
    k = layout.numels.shape[0]
    grad = torch.is_grad_enabled()
    # Flat (B * slots, F) buffers: a (B, C) index of per-window coordinates becomes one
    # index_add with window b's slots shifted by b * slots.
    sums = torch.zeros(batch * (s + 2), features)
    tsums = torch.zeros(batch * k, features)

    def add(buf: Tensor, at: Tensor, feats: Tensor, width: int) -> Tensor:
        shift = torch.arange(batch, dtype=torch.long).unsqueeze(-1) * width
        flat = (at.unsqueeze(0) if at.dim() == 1 else at) + shift
        flat = flat.expand(batch, feats.shape[1]).reshape(-1)
        feats = feats.reshape(-1, features)
        return buf.index_add(0, flat, feats) if grad else buf.index_add_(0, flat, feats)

    for idx, feats in chunks:
        for at in (idx.row_acc, idx.col_acc):
            if bool((at > s).all()):
                continue  # nothing pooled here (e.g. a chunk of one long vector): skip the sink
            sums = add(sums, at, feats, s + 2)
        if idx.single is not None and not grad:
            tsums.view(batch, k, features)[:, idx.single] += feats.sum(dim=1)
        else:
            tsums = add(tsums, idx.tid, feats, k)
    sums = sums.view(batch, s + 2, features)
    tsums = tsums.view(batch, k, features)
    counts = torch.cat([layout.counts, torch.ones(2)]).view(1, -1, 1)
    keep = torch.cat([torch.ones(s), torch.zeros(2)]).view(1, -1, 1)
    return PoolStats(slots=sums / counts * keep, tensors=tsums / layout.numels.view(1, -1, 1))


def gather(stats: PoolStats, idx: CoordIndex, own: Tensor, *, lead: bool = False) -> Tensor:
    """The pooled inputs of C coordinates: ``(B, C, 5 F + 2)`` (``(B, C, 6 F + 2)`` with ``lead``).

    Args:
        stats: from :func:`accumulate` (the same features as ``own``).
        idx: the coordinates' slots, ``(C,)`` or ``(B, C)``.
        own: ``(B, C, F)`` their own features (the row/column term where they are alone).
        lead: put ``own`` first in the same concatenation (what the field's first layer
            reads: one matrix product instead of two).

    Returns:
        ``[row, column, tensor, previous, next, flag previous, flag next]`` along the last
        axis, after ``own`` with ``lead``.
    """
    b, c, f = own.shape

    def take(buf: Tensor, at: Tensor) -> Tensor:
        if at.dim() == 1:
            return buf.index_select(1, at)
        return torch.gather(buf, 1, at.unsqueeze(-1).expand(b, c, f))

    def with_self(term: Tensor, alone: Tensor) -> Tensor:
        if not bool(alone.any()):
            return term
        return torch.where(alone.unsqueeze(-1), own, term)

    flags = idx.flags if idx.flags.dim() == 3 else idx.flags.unsqueeze(0).expand(b, c, -1)
    return torch.cat([own] * lead + [
        with_self(take(stats.slots, idx.row), idx.row_self),
        with_self(take(stats.slots, idx.col), idx.col_self),
        (take(stats.tensors, idx.tid) if idx.single is None
         else stats.tensors[:, idx.single : idx.single + 1].expand(b, c, f)),
        take(stats.slots, idx.prev),
        take(stats.slots, idx.next),
        flags,
    ], dim=-1)


def chunked(layout: PoolLayout, d: int, chunk: int,
            features: Callable[[int, int, CoordIndex], Tensor]) -> Iterable[tuple[CoordIndex, Tensor]]:
    """``(index, features(start, stop, index))`` over chunks of ``chunk`` coordinates of ``0..d-1``."""
    for a in range(0, d, chunk):
        z = min(d, a + chunk)
        idx = layout.index_range(a, z)
        yield idx, features(a, z, idx)
