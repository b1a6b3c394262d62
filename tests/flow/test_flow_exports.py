"""Every name in gfm_accel.flow.__all__ imports."""

import pytest

import gfm_accel.flow as flow


@pytest.mark.parametrize("name", flow.__all__)
def test_flow_exports(name):
    assert getattr(flow, name) is not None
