"""Atomic safetensors writing and header checks shared by every file format here."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file

__all__ = ["atomic_save_file", "read_header", "load_tensors", "encode_metadata", "decode_metadata", "FileFormatError"]


class FileFormatError(ValueError):
    """A file is missing, truncated, corrupt, or not in the expected format."""


def atomic_save_file(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> Path:
    """Write a safetensors file atomically: a temp file in the same folder, fsync, rename.

    A crash mid-write leaves either the old file or none, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        contiguous = {k: v.detach().contiguous() for k, v in tensors.items()}
        save_file(contiguous, tmp, metadata=dict(metadata))
        _canonicalize_header(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _canonicalize_header(path: str) -> None:
    """Re-emit the header JSON with sorted keys so equal content gives equal bytes.

    safetensors keeps metadata in a hash map whose order changes between calls. The
    sorted header has the same length as the original (same JSON, same compact format),
    so it is overwritten in place; otherwise the file is rewritten with the data copied.
    """
    with open(path, "rb+") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
        if header.get("__metadata__"):
            header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        raw = json.dumps(dict(sorted(header.items())), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        if len(raw) == n:
            fh.seek(8)
            fh.write(raw)
            return
        data = fh.read()
        fh.seek(0)
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        fh.write(data)
        fh.truncate()


def read_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """Read a safetensors header without loading tensors.

    Returns:
        ``(metadata, {name: (dtype, shape)})``.

    Raises:
        FileFormatError: missing file, or a header that cannot be parsed, or data
            offsets that do not match the file size (truncation).
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise FileFormatError(f"{path}: truncated or not a safetensors file ({size} bytes)")
            n = int.from_bytes(raw, "little")
            if n <= 0 or 8 + n > size:
                raise FileFormatError(f"{path}: corrupt safetensors header (claims {n} bytes, file has {size})")
            header = json.loads(fh.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path}: corrupt safetensors header ({exc})") from exc
    meta = header.pop("__metadata__", None) or {}
    shapes = {}
    end = 0
    for name, info in header.items():
        try:
            shapes[name] = (info["dtype"], tuple(info["shape"]))
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, IndexError) as exc:
            raise FileFormatError(f"{path}: corrupt entry for tensor {name!r} in header") from exc
    if 8 + n + end != size:
        raise FileFormatError(
            f"{path}: truncated or corrupt file: header describes {8 + n + end} bytes, file has {size}"
        )
    return meta, shapes


def load_tensors(path: str | os.PathLike, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Load tensors (all, or ``names``) from a safetensors file, wrapping errors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = names if names is not None else list(f.keys())
            return {k: f.get_tensor(k) for k in keys}
    except FileFormatError:
        raise
    except Exception as exc:  # safetensors raises its own error types
        raise FileFormatError(f"{path}: cannot read tensors ({exc})") from exc


def encode_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """JSON-encode every value (safetensors metadata is string to string)."""
    out = {}
    for k, v in values.items():
        if v is None:
            continue
        if hasattr(v, "to_dict"):
            v = v.to_dict()
        out[str(k)] = json.dumps(v, separators=(",", ":"), sort_keys=True)
    return out


def decode_metadata(meta: Mapping[str, str], raw_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Decode JSON values; strings that are not JSON (from other tools) stay strings."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if k in raw_keys:
            out[k] = v
            continue
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            out[k] = v
    return out
