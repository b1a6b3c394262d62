"""The forecaster that ships inside the package, and the zoo it was trained on.

``pretrained_forecaster()`` loads ``gfm_coordinate.safetensors`` from this folder, offline.
It is a model-agnostic (``variant="coordinate"``) :class:`~gfm_accel.GFMForecaster`, so it
serves any model and any (n, m). Its metadata records the zoo and the command that
trained it; ``benchmarks/pretrained/build_pretrained.py`` rebuilds it from scratch.

Loading it draws nothing from the global RNG (torch, numpy, Python), and its tensor bytes are
checked: against the checksum the file carries, or, for the shipped file written before files
carried one, against :data:`SHIPPED_TENSORS_SHA256`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["PRETRAINED_PATH", "SHIPPED_TENSORS_SHA256", "pretrained_forecaster"]

PRETRAINED_PATH = Path(__file__).with_name("gfm_coordinate.safetensors")
#: ``tensors_digest`` of the shipped file's weights (it predates the ``tensors_sha256`` metadata;
#: a rebuilt file carries its own checksum, which then takes precedence).
SHIPPED_TENSORS_SHA256 = "9a49be083fba1c37e47ddfcb0e38f933abafe3572dd27e1c03a43ba30c4d5baf"


@lru_cache(maxsize=4)
def _load(path: str):
    from ..forecast.forecaster import GFMForecaster

    shipped = path == str(PRETRAINED_PATH.resolve())
    return GFMForecaster.load(path, tensors_sha256=SHIPPED_TENSORS_SHA256 if shipped else None)


def pretrained_forecaster(path: str | Path | None = None):
    """Load the shipped GFM forecaster (or another forecaster file at ``path``).

    The loaded object is cached per path; it is stateless at inference, so sharing it is safe.

    Args:
        path: a file written by ``GFMForecaster.save`` / ``gfm-accel train``; None = the shipped one.

    Returns:
        A :class:`~gfm_accel.forecast.forecaster.GFMForecaster`.

    Raises:
        FileNotFoundError: ``path`` does not exist (or, with no ``path``, the shipped file is
            missing: rebuild it with ``python benchmarks/pretrained/build_pretrained.py``).
        gfm_accel.FileFormatError: the file is not a forecaster file, or its tensors are corrupted.

    Example:
        >>> f = pretrained_forecaster()            # doctest: +SKIP
        >>> f.forecast(prefix, m=14, spec=spec)    # doctest: +SKIP
    """
    if path is None:
        if not PRETRAINED_PATH.exists():
            raise FileNotFoundError(
                f"the shipped forecaster {PRETRAINED_PATH} is missing from this installation; rebuild it with "
                "`python benchmarks/pretrained/build_pretrained.py`"
            )
        return _load(str(PRETRAINED_PATH.resolve()))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"forecaster file {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"forecaster path {path} is a folder; give the .safetensors file written by "
                                "`gfm-accel train` or GFMForecaster.save")
    return _load(str(path.resolve()))
