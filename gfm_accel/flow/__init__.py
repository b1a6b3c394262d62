"""Flow-matching core: pure tensor functions for paths, the GFM loss and ODE inference.

* :mod:`.path`: time reparameterization ``t = i/m``, Eq. 5 interpolation, the Algorithm 1
  sampler (:func:`sample_path`, ``path="paper" | "from_last"``) and the midpoint forecast.
* :mod:`.loss`: the GFM objective (Eq. 9 + ``zeta`` consistency term).
* :mod:`.solver`: Euler / midpoint / RK4 integration with the Sec. 4.4 early stop.

Nothing here knows about a network architecture: a field is any callable
``field(w (B, D), t (B,)) -> (B, D)``.
"""

from .loss import GFMLoss, gfm_loss
from .path import PATHS, PathSample, interpolate, midpoint_forecast, sample_path, time_of
from .solver import METHODS, ODEResult, integrate

__all__ = [
    "PATHS",
    "PathSample",
    "time_of",
    "interpolate",
    "sample_path",
    "midpoint_forecast",
    "GFMLoss",
    "gfm_loss",
    "METHODS",
    "ODEResult",
    "integrate",
]
