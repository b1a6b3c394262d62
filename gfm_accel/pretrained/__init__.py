"""The forecaster that ships inside the package, and the zoo it was trained on.

``pretrained_forecaster()`` loads ``gfm_coordinate.safetensors`` from this folder, offline.
It is a model-agnostic (``variant="coordinate"``) :class:`~gfm_accel.GFMForecaster`, so it
serves any model and any (n, m). Its metadata records the zoo and the command that
trained it; ``benchmarks/pretrained/build_pretrained.py`` rebuilds it from scratch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["PRETRAINED_PATH", "pretrained_forecaster"]

PRETRAINED_PATH = Path(__file__).with_name("gfm_coordinate.safetensors")


@lru_cache(maxsize=4)
def _load(path: str):
    from ..forecast.forecaster import GFMForecaster

    return GFMForecaster.load(path)


def pretrained_forecaster(path: str | Path | None = None):
    """Load the shipped GFM forecaster (or another forecaster file at ``path``).

    The loaded object is cached per path; it is stateless at inference, so sharing it is safe.

    Raises:
        FileNotFoundError: the file is missing (rebuild it with
            ``python benchmarks/pretrained/build_pretrained.py``).

    Example:
        >>> f = pretrained_forecaster()            # doctest: +SKIP
        >>> f.forecast(prefix, m=14, spec=spec)    # doctest: +SKIP
    """
    path = Path(path) if path is not None else PRETRAINED_PATH
    if not path.exists():
        raise FileNotFoundError(
            f"forecaster file {path} not found; rebuild the shipped one with "
            "`python benchmarks/pretrained/build_pretrained.py`"
        )
    return _load(str(path.resolve()))
