"""Trajectory files: the format every part of gfm_accel reads and writes.

A trajectory file is a safetensors file holding

* ``"weights"``: float32 ``(N, T, D)``: N trajectories, T recorded steps, D parameters;
* optionally ``"loss"`` and ``"val_loss"``: ``(N, T)``; any other float/int tensor with a
  leading N axis (e.g. ``"val_acc"``, ``"arch_id"``) is kept in :attr:`Trajectories.extra`;
* metadata (string to string): ``"format": "gfm_accel.trajectories"``, ``"version": "1"``,
  and optional JSON-valued keys such as ``"steps"`` (the step/epoch index of each of the T
  snapshots), ``"spec"`` (a :class:`~gfm_accel.params.ParamSpec`), ``"task"``, ``"arch"``,
  ``"optimizer"``, ``"lr"``, ``"init"``, ``"seed"``.

A file written by another tool with only ``"weights"`` and the two format keys loads.

Example:
    >>> import torch, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> _ = save_trajectories(p, torch.zeros(2, 5, 3), task="demo", steps=list(range(5)))
    >>> tr = load_trajectories(p)
    >>> tuple(tr.weights.shape), tr.metadata["task"], tr.steps[-1]
    ((2, 5, 3), 'demo', 4)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ._io import FileFormatError, atomic_save_file, decode_metadata, encode_metadata, load_tensors, read_header
from .params import ParamSpec

__all__ = [
    "FORMAT",
    "VERSION",
    "Trajectories",
    "TrajectoryFormatError",
    "save_trajectories",
    "load_trajectories",
]

FORMAT = "gfm_accel.trajectories"
VERSION = "1"
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


class TrajectoryFormatError(FileFormatError):
    """A trajectory file or array is malformed (names the problem)."""


@dataclass
class Trajectories:
    """Loaded trajectories.

    Attributes:
        weights: ``(N, T, D)`` float32.
        loss: ``(N, T)`` or None.
        val_loss: ``(N, T)`` or None.
        extra: other per-trajectory tensors, each with leading axis N.
        metadata: decoded metadata (JSON values decoded; format keys included).
        path: file it came from, if any.
    """

    weights: torch.Tensor
    loss: torch.Tensor | None = None
    val_loss: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def N(self) -> int:
        return int(self.weights.shape[0])

    @property
    def T(self) -> int:
        return int(self.weights.shape[1])

    @property
    def D(self) -> int:
        return int(self.weights.shape[2])

    @property
    def steps(self) -> list[int]:
        """Step/epoch index of each of the T snapshots (``range(T)`` when not recorded)."""
        steps = self.metadata.get("steps")
        return list(steps) if steps is not None else list(range(self.T))

    @property
    def spec(self) -> ParamSpec | None:
        spec = self.metadata.get("spec")
        if spec is None:
            return None
        return ParamSpec.from_dict(spec) if isinstance(spec, dict) else ParamSpec.from_json(spec)

    def subset(self, index) -> "Trajectories":
        """Select trajectories (a slice, list or bool mask over N); metadata is shared."""
        pick = lambda x: None if x is None else x[index]  # noqa: E731
        return Trajectories(
            weights=self.weights[index],
            loss=pick(self.loss),
            val_loss=pick(self.val_loss),
            extra={k: v[index] for k, v in self.extra.items()},
            metadata=dict(self.metadata),
            path=self.path,
        )

    def save(self, path: str | os.PathLike) -> Path:
        meta = {k: v for k, v in self.metadata.items() if k not in ("format", "version")}
        return save_trajectories(path, self.weights, loss=self.loss, val_loss=self.val_loss, extra=self.extra, **meta)


def _check_weights(weights: torch.Tensor, where: str) -> None:
    if not torch.is_tensor(weights):
        raise TrajectoryFormatError(f"{where}: 'weights' must be a tensor, got {type(weights).__name__}")
    if weights.dim() != 3:
        raise TrajectoryFormatError(
            f"{where}: 'weights' must have rank 3 (N, T, D), got shape {tuple(weights.shape)}"
        )
    if not weights.is_floating_point():
        raise TrajectoryFormatError(f"{where}: 'weights' must be floating point, got {weights.dtype}")
    bad = ~torch.isfinite(weights)
    if bool(bad.any()):
        n, t, d = (int(i) for i in bad.nonzero()[0])
        raise TrajectoryFormatError(
            f"{where}: 'weights' holds {int(bad.sum())} NaN/Inf entries (first at trajectory {n}, step {t}, "
            f"parameter {d})"
        )


def _check_per_traj(name: str, t: torch.Tensor, n: int, steps: int | None, where: str) -> None:
    if t.shape[0] != n:
        raise TrajectoryFormatError(f"{where}: {name!r} has leading size {t.shape[0]}, expected N={n}")
    if steps is not None and (t.dim() != 2 or t.shape[1] != steps):
        raise TrajectoryFormatError(f"{where}: {name!r} must have shape ({n}, {steps}), got {tuple(t.shape)}")


def save_trajectories(
    path: str | os.PathLike,
    weights: torch.Tensor,
    *,
    loss: torch.Tensor | None = None,
    val_loss: torch.Tensor | None = None,
    extra: dict[str, torch.Tensor] | None = None,
    **metadata: Any,
) -> Path:
    """Validate and write a trajectory file atomically.

    Args:
        path: destination (``.safetensors``). Parent folders are created.
        weights: ``(N, T, D)`` float tensor; stored as float32.
        loss: optional ``(N, T)`` task loss per snapshot.
        val_loss: optional ``(N, T)`` validation loss per snapshot.
        extra: optional further tensors with leading axis N.
        **metadata: JSON-serialisable values (a ParamSpec is accepted for ``spec``).

    Returns:
        The path written.
    """
    where = str(path)
    _check_weights(weights, where)
    n, t, _ = weights.shape
    tensors = {"weights": weights.detach().to("cpu", torch.float32)}
    for name, value in (("loss", loss), ("val_loss", val_loss)):
        if value is not None:
            value = torch.as_tensor(value)
            _check_per_traj(name, value, n, t, where)
            tensors[name] = value.detach().to("cpu", torch.float32)
    for name, value in (extra or {}).items():
        if name in tensors:
            raise TrajectoryFormatError(f"{where}: extra tensor name {name!r} is reserved")
        value = torch.as_tensor(value)
        _check_per_traj(name, value, n, None, where)
        tensors[name] = value.detach().cpu()
    if "steps" in metadata and metadata["steps"] is not None and len(metadata["steps"]) != t:
        raise TrajectoryFormatError(f"{where}: 'steps' has {len(metadata['steps'])} entries, expected T={t}")
    meta = encode_metadata(metadata)
    meta["format"] = FORMAT
    meta["version"] = VERSION
    return atomic_save_file(tensors, path, meta)


def load_trajectories(path: str | os.PathLike) -> Trajectories:
    """Load and validate a trajectory file.

    The header is checked before any tensor is read.

    Raises:
        TrajectoryFormatError: missing file, truncated/corrupt file, wrong format key or
            version, missing ``"weights"``, wrong rank, non-float dtype, NaN/Inf, or
            inconsistent optional tensors.
    """
    where = str(path)
    try:
        meta, shapes = read_header(path)
    except FileFormatError as exc:
        raise TrajectoryFormatError(str(exc)) from exc
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise TrajectoryFormatError(f"{where}: metadata 'format' is {fmt!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise TrajectoryFormatError(f"{where}: unsupported version {meta.get('version')!r} (this reader knows {VERSION!r})")
    if "weights" not in shapes:
        raise TrajectoryFormatError(f"{where}: missing tensor 'weights' (has {sorted(shapes)})")
    dtype, shape = shapes["weights"]
    if len(shape) != 3:
        raise TrajectoryFormatError(f"{where}: 'weights' must have rank 3 (N, T, D), got shape {shape}")
    if dtype not in _FLOAT_DTYPES:
        raise TrajectoryFormatError(f"{where}: 'weights' must be a float dtype, got {dtype}")
    try:
        tensors = load_tensors(path)
    except FileFormatError as exc:
        raise TrajectoryFormatError(str(exc)) from exc
    weights = tensors.pop("weights").to(torch.float32)
    _check_weights(weights, where)
    n, t, _ = weights.shape
    loss = tensors.pop("loss", None)
    val_loss = tensors.pop("val_loss", None)
    for name, value in (("loss", loss), ("val_loss", val_loss)):
        if value is not None:
            _check_per_traj(name, value, n, t, where)
    for name, value in tensors.items():
        _check_per_traj(name, value, n, None, where)
    decoded = decode_metadata(meta, raw_keys=("format", "version"))
    steps = decoded.get("steps")
    if steps is not None and (not isinstance(steps, list) or len(steps) != t):
        raise TrajectoryFormatError(f"{where}: metadata 'steps' must be a list of T={t} integers")
    return Trajectories(
        weights=weights,
        loss=None if loss is None else loss.float(),
        val_loss=None if val_loss is None else val_loss.float(),
        extra=tensors,
        metadata=decoded,
        path=Path(path),
    )
