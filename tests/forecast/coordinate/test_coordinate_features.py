"""Tests of gfm_accel.forecast.coordinate.features."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gfm_accel.forecast.coordinate.features import (
    NUM_TENSOR_STATS,
    coordinate_inputs,
    tensor_ids_for_range,
    tensor_statistics,
    window_inputs,
)
from gfm_accel.params import LAYER_KINDS, ParamSpec


def test_tensor_statistics_by_hand():
    spec = ParamSpec.from_model(nn.Linear(2, 1))  # weight (1, 2), bias (1,)
    prefix = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [3.0, 1.0, 1.0]]])  # n = 2
    st = tensor_statistics(prefix, spec, floor_rel=1e-3)
    # weight: w_n - w_0 = (3, 1) -> rms sqrt(5); last step (2, 0) rms sqrt(2); prev (1, 1): cos = 2/(2*sqrt2)
    assert st.scale[0, 0].item() == pytest.approx(math.sqrt(5.0))
    rms_n = math.sqrt((9 + 1) / 2)
    assert st.features[0, 0, 0].item() == pytest.approx(math.log(math.sqrt(5.0) / rms_n) / 4)
    assert st.features[0, 0, 1].item() == pytest.approx(math.log(math.sqrt(2.0) / math.sqrt(5.0)) / 4)
    assert st.features[0, 0, 2].item() == pytest.approx(1 / math.sqrt(2.0))
    assert st.features[0, 0, 3].item() == pytest.approx(math.log(2) / 10)
    # bias never moved: scale is the relative floor 1e-3 * |1|
    assert st.scale[0, 1].item() == pytest.approx(1e-3)
    assert st.kinds.tolist() == [LAYER_KINDS.index("weight"), LAYER_KINDS.index("bias")]
    assert st.ends.tolist() == [2, 3]
    assert st.features.shape == (1, 2, NUM_TENSOR_STATS)


def test_tensor_statistics_n0_uses_tensor_size():
    st = tensor_statistics(torch.tensor([[[3.0, 4.0]]]), ParamSpec.flat(2))
    assert st.scale.item() == pytest.approx(math.sqrt(12.5))


def test_tensor_statistics_rejects_wrong_d():
    with pytest.raises(ValueError, match="D=3.*D=2"):
        tensor_statistics(torch.zeros(1, 2, 3), ParamSpec.flat(2))


def test_coordinate_inputs_and_window_inputs_by_hand():
    p = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [7.0, 2.0]]])  # (B=1, n+1=3, C=2)
    f = coordinate_inputs(p, torch.tensor([[2.0, 1.0]]), history=3)
    assert f[0, 0].tolist() == [2.0, 1.0, 0.0, -3.0]  # d1=(7-3)/2, d2=(3-1)/2, missing, x0=(1-7)/2
    assert f[0, 1].tolist() == [2.0, 0.0, 0.0, -2.0]
    wi = window_inputs(2, torch.tensor([10]), history=3)
    assert wi[0].tolist() == pytest.approx([0.2, math.log(8) / 5, 1.0, 1.0, 0.0])


def test_tensor_ids_for_range():
    ends = torch.tensor([3, 5, 9])
    assert tensor_ids_for_range(ends, 2, 7).tolist() == [0, 1, 1, 2, 2]
