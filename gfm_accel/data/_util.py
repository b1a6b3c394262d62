"""Small shared helpers: optional progress bars, seed lists."""

from __future__ import annotations

import importlib.util
from typing import Iterable, Iterator, TypeVar

__all__ = ["progress", "parse_seeds"]

T = TypeVar("T")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", enable: bool = True) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when tqdm is installed and ``enable``; else return it.

    tqdm is the optional ``progress`` extra, so it is imported lazily and its absence is silent.
    """
    if enable and importlib.util.find_spec("tqdm") is not None:
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True))
    return iter(iterable)


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
