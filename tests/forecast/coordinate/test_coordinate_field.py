"""Tests of gfm_accel.forecast.coordinate.field: the shared network and how it is built."""

from __future__ import annotations

import torch

from gfm_accel.forecast.coordinate.config import CoordinateConfig
from gfm_accel.forecast.coordinate.field import CoordinateField, new_field


def test_new_field_is_seeded_and_draws_no_global_rng():
    cfg = CoordinateConfig(hidden=8, depth=2)
    state = torch.random.get_rng_state()
    a, b, c = new_field(cfg, 3), new_field(cfg, 3), new_field(cfg, 4)
    empty = new_field(cfg, None)  # for loading: built without an initialisation
    assert torch.equal(state, torch.random.get_rng_state())
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert not torch.equal(a.x_in, c.x_in)
    torch.manual_seed(3)  # the seeded build is the module built right after manual_seed(seed)
    assert torch.equal(CoordinateField(cfg).x_in, a.x_in)
    assert {k: v.shape for k, v in empty.state_dict().items()} == {k: v.shape for k, v in a.state_dict().items()}
    assert all(p.device.type == "cpu" for p in empty.parameters())


def test_the_output_layer_starts_small():
    net = new_field(CoordinateConfig(hidden=8), 0)
    assert float(net.out.bias.detach().abs().max()) == 0.0 and float(net.out.weight.detach().abs().max()) < 0.1
