"""Small helpers of the generators: seed lists and byte-stable safetensors headers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

__all__ = ["parse_seeds", "canonicalize_safetensors"]


def parse_seeds(spec: str | Iterable[int]) -> list[int]:
    """Parse ``"0,1,2"`` or ``"0-4"`` (or a list of ints) into a list of non-negative seeds.

    Raises:
        ValueError: an empty list, a negative or non-integer seed.
    """
    out: list[int] = []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
            try:
                if "-" in item[1:]:
                    lo, hi = item.split("-", 1)
                    out.extend(range(int(lo), int(hi) + 1))
                    continue
                item = int(item)
            except ValueError:
                raise ValueError(f"bad seed {item!r}: expected integers like '0,1,2' or '0-4'") from None
        if int(item) != item or item < 0:
            raise ValueError(f"bad seed {item!r}: seeds are non-negative integers")
        out.append(int(item))
    if not out:
        raise ValueError("empty seed list: give at least one seed, e.g. --seeds 0,1,2,3,4")
    return out


def canonicalize_safetensors(path: str | os.PathLike) -> Path:
    """Rewrite a safetensors header in a canonical order, atomically, so equal content gives equal bytes.

    ``safetensors`` stores the metadata in a Rust ``HashMap`` whose iteration order differs
    from one call to the next, so two saves of identical tensors and metadata can differ
    in their header bytes. Here the header JSON is re-emitted with sorted keys (tensor
    entries and ``__metadata__``), padded with spaces to a multiple of 8 as the format
    requires, and the tensor data is streamed over unchanged.
    """
    path = Path(path)
    with open(path, "rb") as src:
        n = int.from_bytes(src.read(8), "little")
        header = json.loads(src.read(n))
        if "__metadata__" in header and header["__metadata__"] is not None:
            header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        raw = json.dumps(dict(sorted(header.items())), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as dst:
                dst.write(len(raw).to_bytes(8, "little"))
                dst.write(raw)
                shutil.copyfileobj(src, dst, 16 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return path
