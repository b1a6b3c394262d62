"""The transcribed paper numbers: spot checks against the paper text and internal consistency."""

from __future__ import annotations

import pytest

from gfm_accel.lab.bench import paper


def test_table1_spot_checks():
    assert set(paper.TABLE1) == {"introspection", "dlinear", "lfd2", "wnn", "lstm", "transformer", "gfm"}
    assert paper.TABLE1["lfd2"]["sgd"] == (2.427, 0.526)
    assert paper.TABLE1["dlinear"]["adam"] == (0.517, 0.186)
    assert paper.TABLE1["transformer"]["adagrad"] == (0.016, 0.004)
    assert paper.TABLE1["gfm"] == dict(zip(paper.OPTIMIZERS, [(0.021, 0.013), (0.020, 0.012), (0.016, 0.007),
                                                                 (0.019, 0.011), (0.013, 0.002)]))


def test_sensitivity_tables_shape_and_default_row():
    by_zeta = {z: [k for k in paper.SENSITIVITY if k[2] == z] for z in (1.0, 10.0, 100.0)}
    assert [len(by_zeta[z]) for z in (1.0, 10.0, 100.0)] == [9, 9, 8]  # Table 9 lacks beta = gamma = 10
    assert (10.0, 10.0, 100.0) not in paper.SENSITIVITY
    # the zeta = 100, beta = gamma = 1 row is the paper's default, i.e. Table 1's GFM row
    assert paper.SENSITIVITY[(1.0, 1.0, 100.0)] == paper.TABLE1["gfm"]
    assert paper.SENSITIVITY[(10.0, 10.0, 1.0)]["adamw"] == (0.724, 0.201)
    assert paper.SENSITIVITY[(0.1, 1.0, 10.0)]["adagrad"] == (0.014, 0.004)


def test_tables_2_3_4_6():
    assert paper.TABLE2["dlinear"]["transformer"] is None and paper.TABLE2["wnn"]["transformer"] is None
    assert paper.TABLE2["gfm"]["transformer"] == {"mse": (0.043, 0.0), "f_source": (1.117, 0.001)}
    assert paper.TABLE2["dlinear"]["cnn"]["f_source"] == (309.361, 126.423)
    assert paper.TABLE3["xavier_uniform"]["adam"] == (0.026, 0.007)
    assert paper.TABLE3["normal"] is paper.TABLE1["gfm"]
    assert paper.TABLE4["sgd"] == (0.023, 0.008)
    assert paper.TABLE6["adam"] == ((0.014, 0.004), 0.0, 0.1, 1.0)


@pytest.mark.parametrize("cell,text", [((0.021, 0.013), ".021 (.013)"), (None, "-"), ((2.125, 0.405), "2.125 (.405)")])
def test_paper_cell(cell, text):
    assert paper.paper_cell(cell) == text
