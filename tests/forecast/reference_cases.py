"""Fixed, RNG-free inputs and short seeded fits whose numbers were recorded from the code before
the coordinate split (issue 13); ``tests/forecast/data/reference_numbers.json`` holds them.

Run ``python tests/forecast/reference_cases.py`` to print the current numbers as JSON (that is
how the file was made, on the pre-split commit 4c24697).
"""

from __future__ import annotations

import json
import math

import torch
from torch import nn

from gfm_accel.forecast.forecaster import GFMForecaster
from gfm_accel.params import ParamSpec
from gfm_accel.trajectories import Trajectories

__all__ = ["reference_spec", "fixed_prefix", "fixed_trajectories", "FIT_CASES", "shipped_numbers", "fit_numbers"]


def reference_spec() -> ParamSpec:
    """A layout with every common layer kind (conv, norm, weight, bias, embedding): D = 73."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LayerNorm(8), nn.Linear(8, 3), nn.Embedding(5, 2))
    return ParamSpec.from_model(model)


def fixed_prefix(n: int, d: int) -> torch.Tensor:
    """``(n+1, d)`` snapshots from a closed-form formula (no RNG): a decaying drift per coordinate."""
    i = torch.arange(d, dtype=torch.float64)
    j = torch.arange(n + 1, dtype=torch.float64).unsqueeze(-1)
    start = torch.sin(0.37 * i + 0.3) * (1.0 + 0.02 * i)
    rate = 0.05 * torch.cos(0.11 * i) + 0.01 * (i % 3)
    return (start + rate * (1.0 - 0.85**j) / 0.15 + 0.002 * torch.sin(j * (1.0 + i % 5))).float()


def fixed_trajectories(n_traj: int, t_len: int, d: int) -> torch.Tensor:
    """``(N, T, D)`` RNG-free trajectories: each relaxes to its own target at its own rate."""
    k = torch.arange(n_traj, dtype=torch.float64).view(-1, 1, 1)
    j = torch.arange(t_len, dtype=torch.float64).view(1, -1, 1)
    i = torch.arange(d, dtype=torch.float64).view(1, 1, -1)
    w0 = torch.sin(0.7 * i + 1.3 * k)
    target = torch.cos(0.5 * i - 0.9 * k) * 0.8
    r = 0.8 + 0.1 * torch.sin(i + k) ** 2
    return (target + (w0 - target) * r**j).float()


#: name -> (variant, constructor options, fit options, (n, m) of the checked forecast)
FIT_CASES: dict[str, tuple[str, dict, dict, tuple[int, int]]] = {
    "dense_algorithm1": ("dense", dict(n=2, m=11, condition="none", path="paper", hidden=8, skip="none"),
                         dict(epochs=6, batch_size=4, lr=1e-3, seed=3), (2, 11)),
    "dense_prefix_standardize": ("dense", dict(n=2, m=11, condition="prefix", hidden=8, normalization="standardize",
                                               t_per_traj=2, skip="none"), dict(epochs=6, batch_size=4, lr=1e-3, seed=4), (2, 11)),
    "dense_from_last_midpoint": ("dense", dict(n=1, m=11, condition="none", path="from_last", hidden=8,
                                               solver="midpoint", step=0.25, skip="none"),
                                 dict(epochs=4, batch_size=3, lr=1e-3, seed=5), (1, 11)),
    "coordinate_default": ("coordinate", dict(hidden=8, coords_per_window=32, steps_per_epoch=3),
                           dict(epochs=3, batch_size=4, lr=3e-3, seed=1), (4, 20)),
    "coordinate_line_paper_absolute": ("coordinate", dict(hidden=8, coords_per_window=32, steps_per_epoch=3,
                                                          prior="line", path="paper", loss_weighting="absolute",
                                                          depth=2, activation="elu"),
                                       dict(epochs=3, batch_size=4, lr=3e-3, seed=2), (3, 25)),
    "coordinate_fixed_window": ("coordinate", dict(hidden=8, coords_per_window=16, steps_per_epoch=2, windows=False,
                                                   n=2, m=15, solver="euler", step=0.1),
                                dict(epochs=2, batch_size=4, lr=3e-3, seed=0), (2, 15)),
}


def _floats(x: torch.Tensor) -> list[float]:
    return [float(v) for v in x.reshape(-1)]


def shipped_numbers() -> dict[str, list[float]]:
    """Forecasts of the shipped forecaster on fixed inputs (with and without a layout)."""
    from gfm_accel.pretrained import pretrained_forecaster

    f = pretrained_forecaster()
    spec = reference_spec()
    out = {}
    for n, m in ((4, 14), (2, 40), (0, 5)):
        out[f"spec_n{n}_m{m}"] = _floats(f.forecast(fixed_prefix(n, spec.numel), m, spec=spec))
    out["flat_n4_m30"] = _floats(f.forecast(fixed_prefix(4, 24), 30))
    return out


def fit_numbers(name: str) -> dict[str, list[float]]:
    """Loss history and one forecast of the seeded fit ``name`` of :data:`FIT_CASES`."""
    variant, options, fit, (n, m) = FIT_CASES[name]
    d = 6 if variant == "dense" else reference_spec().numel
    t_len = 12 if variant == "dense" else 30
    w = fixed_trajectories(5, t_len, d)
    data = Trajectories(weights=w, metadata={"spec": reference_spec().to_dict()}) if variant == "coordinate" else w
    f = GFMForecaster(variant, **options).fit(data, progress=False, **fit)
    spec = reference_spec() if variant == "coordinate" else None
    prefix = fixed_trajectories(2, t_len, d)[:, : n + 1] * 1.1
    return {"history": list(f.history), "forecast": _floats(f.forecast(prefix, m, spec=spec))}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps({"shipped": shipped_numbers(), "fits": {k: fit_numbers(k) for k in FIT_CASES}}, indent=1))
