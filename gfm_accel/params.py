"""Parameter layout: which parameters are flattened, in what order, and how to write back.

A :class:`ParamSpec` is the contract between a live model and a flat weight vector of
length ``D``. Every snapshot, trajectory file and forecast in gfm_accel is a vector in
the layout of one spec.

Conventions (chosen here, relied on everywhere):

* Order is ``model.named_parameters()`` order, with tied/shared parameters counted
  once (the first name wins), exactly as PyTorch deduplicates them.
* Frozen parameters (``requires_grad=False``) are excluded by default: they do not move,
  so there is nothing to forecast. Pass ``include_frozen=True`` to keep them.
* Buffers are not parameters. BatchNorm running statistics are *not* in the vector and
  are not touched by :func:`assign_params`; after a jump they describe the old weights.
  ``GFMJump(refresh_bn_batches=...)`` can recompute them from a few training batches.
* The flat vector is always float32 on the CPU unless the caller asks otherwise.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> spec = ParamSpec.from_model(model)
    >>> spec.numel
    8
    >>> vec = flatten_params(model, spec)
    >>> assign_params(model, vec * 0, spec)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable

import torch
from torch import nn

__all__ = [
    "LAYER_KINDS",
    "ParamEntry",
    "ParamSpec",
    "ParamLayoutError",
    "flatten_params",
    "assign_params",
    "check_finite",
    "iter_slices",
]

#: Layer kinds recorded for each tensor; the coordinate forecaster embeds them.
LAYER_KINDS: tuple[str, ...] = ("weight", "bias", "conv", "norm", "embedding", "other")

_NORM_TYPES = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)
_RMS_NORM = getattr(nn, "RMSNorm", None)
if _RMS_NORM is not None:
    _NORM_TYPES = _NORM_TYPES + (_RMS_NORM,)


class ParamLayoutError(ValueError):
    """A flat vector or a model does not match the expected parameter layout."""


@dataclass(frozen=True)
class ParamEntry:
    """One parameter tensor inside the flat vector.

    Attributes:
        name: qualified name from ``named_parameters()``.
        shape: tensor shape.
        dtype: dtype name, e.g. ``"float32"``.
        offset: index of its first element in the flat vector.
        numel: number of elements.
        kind: one of :data:`LAYER_KINDS`.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    numel: int
    kind: str = "other"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; expected one of {LAYER_KINDS}")

    @property
    def end(self) -> int:
        return self.offset + self.numel


def _kind_of(module: nn.Module, pname: str, param: torch.Tensor) -> str:
    if isinstance(module, _NORM_TYPES):
        return "norm"
    if isinstance(module, nn.Embedding) or isinstance(module, nn.EmbeddingBag):
        return "embedding"
    if pname.endswith("bias"):
        return "bias"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if param.dim() >= 2:
        # Positional-embedding tables that are bare Parameters count as embeddings.
        if "embed" in pname or pname.endswith(("wpe", "wte")):
            return "embedding"
        return "weight"
    return "other"


@dataclass(frozen=True)
class ParamSpec:
    """The ordered layout of a model's flattened parameters.

    Equal specs compare equal; :meth:`to_json` / :meth:`from_json` round-trip.

    Example:
        >>> spec = ParamSpec.from_model(torch.nn.Linear(4, 2))
        >>> [e.name for e in spec.entries], spec.numel
        (['weight', 'bias'], 10)
        >>> ParamSpec.from_json(spec.to_json()) == spec
        True
    """

    entries: tuple[ParamEntry, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        offset = 0
        names = set()
        for e in self.entries:
            if e.offset != offset:
                raise ValueError(f"entry {e.name!r} has offset {e.offset}, expected {offset}")
            if e.name in names:
                raise ValueError(f"duplicate parameter name {e.name!r}")
            names.add(e.name)
            expected = 1
            for s in e.shape:
                expected *= s
            if expected != e.numel:
                raise ValueError(f"entry {e.name!r}: numel {e.numel} does not match shape {e.shape}")
            offset += e.numel

    # ------------------------------------------------------------------ build
    @classmethod
    def from_model(
        cls, model: nn.Module, include_frozen: bool = False, only: Iterable[torch.Tensor] | None = None
    ) -> "ParamSpec":
        """Describe ``model``'s parameters (tied ones once, frozen ones only if asked).

        Args:
            model: the model.
            include_frozen: also describe parameters with ``requires_grad=False``.
            only: if given, describe only these parameter tensors (e.g. those an optimizer
                updates), in the model's order.

        Example:
            >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
            >>> ParamSpec.from_model(net, only=net[1].parameters()).names
            ['1.weight', '1.bias']
        """
        keep = None if only is None else {id(p) for p in only}
        owner: dict[int, tuple[nn.Module, str]] = {}
        for mname, module in model.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                owner.setdefault(id(p), (module, pname))
        entries = []
        offset = 0
        for name, p in model.named_parameters():  # deduplicates tied parameters
            if not include_frozen and not p.requires_grad:
                continue
            if keep is not None and id(p) not in keep:
                continue
            module, pname = owner.get(id(p), (model, name))
            n = p.numel()
            entries.append(
                ParamEntry(
                    name=name,
                    shape=tuple(p.shape),
                    dtype=str(p.dtype).replace("torch.", ""),
                    offset=offset,
                    numel=n,
                    kind=_kind_of(module, pname, p),
                )
            )
            offset += n
        return cls(tuple(entries))

    # ------------------------------------------------------------- properties
    @property
    def numel(self) -> int:
        """D, the length of the flat vector."""
        return self.entries[-1].end if self.entries else 0

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def kind_ids(self) -> torch.Tensor:
        """Per-coordinate layer-kind index into :data:`LAYER_KINDS`, shape ``(D,)`` int64."""
        out = torch.empty(self.numel, dtype=torch.long)
        for e in self.entries:
            out[e.offset : e.end] = LAYER_KINDS.index(e.kind)
        return out

    def tensor_ids(self) -> torch.Tensor:
        """Per-coordinate index of the tensor it belongs to, shape ``(D,)`` int64."""
        out = torch.empty(self.numel, dtype=torch.long)
        for i, e in enumerate(self.entries):
            out[e.offset : e.end] = i
        return out

    # ------------------------------------------------------------ serialize
    def to_dict(self) -> dict:
        return {"entries": [asdict(e) | {"shape": list(e.shape)} for e in self.entries]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "ParamSpec":
        try:
            return cls(tuple(ParamEntry(**{**e, "shape": tuple(e["shape"])}) for e in d["entries"]))
        except (KeyError, TypeError) as exc:
            raise ParamLayoutError(f"malformed ParamSpec: {exc}") from exc

    @classmethod
    def from_json(cls, s: str) -> "ParamSpec":
        return cls.from_dict(json.loads(s))

    @classmethod
    def flat(cls, d: int, name: str = "w") -> "ParamSpec":
        """A spec for a bare vector of ``d`` numbers (e.g. a file with no spec)."""
        return cls((ParamEntry(name=name, shape=(d,), dtype="float32", offset=0, numel=d, kind="other"),))

    # ---------------------------------------------------------------- checks
    def check_model(self, model: nn.Module) -> list[torch.Tensor]:
        """Return the model's parameters in spec order, or raise naming the mismatch."""
        params = dict(model.named_parameters())
        out = []
        for e in self.entries:
            p = params.get(e.name)
            if p is None:
                raise ParamLayoutError(
                    f"model has no parameter {e.name!r} required by the parameter layout "
                    f"(model has {len(params)} parameters, layout has {len(self.entries)})"
                )
            if tuple(p.shape) != e.shape:
                raise ParamLayoutError(
                    f"parameter {e.name!r} has shape {tuple(p.shape)}, layout expects {e.shape}"
                )
            out.append(p)
        return out

    def describe_difference(self, other: "ParamSpec") -> str:
        """A one-line human description of the first difference to ``other``."""
        if self == other:
            return "identical"
        if self.numel != other.numel:
            return f"D={self.numel} vs D={other.numel}"
        for a, b in zip(self.entries, other.entries):
            if a != b:
                return f"{a.name}{list(a.shape)} vs {b.name}{list(b.shape)}"
        return f"{len(self.entries)} vs {len(other.entries)} tensors"


def check_finite(vector: torch.Tensor, what: str = "vector") -> None:
    """Raise :class:`ParamLayoutError` naming the first bad entries if ``vector`` has NaN/Inf."""
    bad = ~torch.isfinite(vector)
    if bool(bad.any()):
        idx = bad.reshape(-1).nonzero().reshape(-1)
        n_nan = int(torch.isnan(vector).sum())
        n_inf = int(torch.isinf(vector).sum())
        raise ParamLayoutError(
            f"{what} holds {n_nan} NaN and {n_inf} Inf entries "
            f"(first bad indices: {idx[:8].tolist()})"
        )


@torch.no_grad()
def flatten_params(
    model: nn.Module,
    spec: ParamSpec | None = None,
    *,
    out: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Copy the model's parameters into one flat vector.

    Each tensor is copied straight into its slice of ``out`` (no intermediate
    concatenation), so the extra memory is the output vector alone.

    Args:
        model: the live model.
        spec: layout; defaults to ``ParamSpec.from_model(model)``.
        out: optional preallocated ``(D,)`` tensor to fill.
        dtype: dtype of the result when ``out`` is not given (float32 by default).
        device: device of the result when ``out`` is not given (CPU by default).

    Returns:
        ``(D,)`` tensor.
    """
    spec = spec or ParamSpec.from_model(model)
    params = spec.check_model(model)
    if out is None:
        out = torch.empty(spec.numel, dtype=dtype, device=device)
    elif out.shape != (spec.numel,):
        raise ParamLayoutError(f"out has shape {tuple(out.shape)}, expected ({spec.numel},)")
    for e, p in zip(spec.entries, params):
        out[e.offset : e.end].copy_(p.detach().reshape(-1))
    return out


@torch.no_grad()
def assign_params(model: nn.Module, vector: torch.Tensor, spec: ParamSpec | None = None) -> None:
    """Write a flat vector into the model's parameters in place.

    Everything is validated first (length, finiteness, layout); only then is any
    parameter written, with ``copy_`` (``.data`` is never rebound, so optimizers and
    DDP keep pointing at the same tensors). A bad vector leaves the model untouched.

    Args:
        model: the live model.
        vector: ``(D,)`` tensor of any float dtype/device.
        spec: layout; defaults to ``ParamSpec.from_model(model)``.

    Raises:
        ParamLayoutError: wrong length or rank, NaN/Inf entries, or a model that does not
            match ``spec``.
    """
    spec = spec or ParamSpec.from_model(model)
    if not torch.is_tensor(vector):
        raise ParamLayoutError(f"expected a tensor, got {type(vector).__name__}")
    if vector.dim() != 1:
        raise ParamLayoutError(f"expected a 1-D vector of length {spec.numel}, got shape {tuple(vector.shape)}")
    if vector.numel() != spec.numel:
        raise ParamLayoutError(
            f"vector has {vector.numel()} entries but the model's parameter layout expects {spec.numel}"
        )
    if not vector.is_floating_point():
        raise ParamLayoutError(f"vector must be floating point, got {vector.dtype}")
    check_finite(vector, "weight vector")
    params = spec.check_model(model)
    # Stage every slice on its target device/dtype before touching the model, so a
    # failure (e.g. device OOM) cannot leave it half-written.
    staged = [
        vector[e.offset : e.end].view(e.shape).to(device=p.device, dtype=p.dtype)
        for e, p in zip(spec.entries, params)
    ]
    for p, v in zip(params, staged):
        p.copy_(v)


def iter_slices(spec: ParamSpec, vector: torch.Tensor) -> Iterable[tuple[ParamEntry, torch.Tensor]]:
    """Yield ``(entry, view)`` pairs of a flat ``(..., D)`` tensor, one per tensor in ``spec``."""
    for e in spec.entries:
        yield e, vector[..., e.offset : e.end]
