"""The one progress helper: a tqdm bar when tqdm is installed, periodic log lines otherwise.

tqdm is the optional ``progress`` extra, so it is looked up lazily and its absence is never
an error. Every loop that shows progress (forecaster fits, dataset generation, benchmarks)
goes through :func:`progress` (wrap an iterable) or :class:`Progress` (update by hand).

Example:
    >>> total = 0
    >>> for i in progress(range(3), desc="demo", enabled=False):
    ...     total += i
    >>> total
    3
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Iterable, Iterator, TypeVar

__all__ = ["progress", "Progress", "have_tqdm"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


def have_tqdm() -> bool:
    """True when the optional ``tqdm`` package can be imported."""
    return importlib.util.find_spec("tqdm") is not None


class Progress:
    """A bar over ``total`` units with an optional loss-like postfix.

    With tqdm: a ``tqdm.auto`` bar. Without it (or when ``enabled`` is False): a log line at
    INFO every tenth of ``total`` (only when ``enabled``), so a long fit still says it is alive.

    Args:
        total: number of units (epochs, steps, runs).
        desc: label of the bar / log lines.
        unit: unit name shown by tqdm.
        enabled: False silences both the bar and the log lines.

    Example:
        >>> bar = Progress(2, desc="fit", enabled=False)
        >>> bar.update(loss=0.5); bar.update(loss=0.25); bar.close()
        >>> bar.n
        2
    """

    def __init__(self, total: int, desc: str = "", unit: str = "it", enabled: bool = True) -> None:
        self.total, self.desc, self.enabled, self.n = int(total), desc, bool(enabled), 0
        self._bar = None
        if self.enabled and have_tqdm():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: float) -> None:
        """Advance by ``n`` units; ``postfix`` values (e.g. ``loss=0.1``) are shown beside the bar."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            return
        every = max(1, self.total // 10)
        if self.enabled and (self.n % every == 0 or self.n == self.total):
            extra = " ".join(f"{k} {v:.4g}" for k, v in postfix.items())
            logger.info("%s %d/%d %s", self.desc, self.n, self.total, extra)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    """Iterate ``iterable`` behind a tqdm bar when tqdm is installed and ``enabled``; else bare."""
    if enabled and have_tqdm():
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True))
    return iter(iterable)
