"""The trained coordinate forecaster shared by the coordinate tests (fitted once per module)."""

from __future__ import annotations

import pytest
import torch
from coord_helpers import decay_trajectories, small_spec

from gfm_accel.forecast.coordinate import CoordinateBackend
from gfm_accel.trajectories import Trajectories


@pytest.fixture(scope="module")
def trained() -> CoordinateBackend:
    torch.manual_seed(0)
    spec = small_spec()
    w = decay_trajectories(spec, 16, 40, seed=1)
    backend = CoordinateBackend(hidden=32, coords_per_window=64, n_choices=(2, 3, 4), strides=(1, 2))
    backend.fit([Trajectories(weights=w, metadata={"spec": spec.to_dict()})], epochs=150, batch_size=16,
                lr=3e-3, seed=0, progress=False)
    return backend
