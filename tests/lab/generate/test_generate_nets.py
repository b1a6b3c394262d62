"""NAS-Bench-201 cell CNNs and image Transformers (paper Sec. 5.3 / App. D)."""

import itertools
import random

import pytest
import torch

from gfm_accel.lab.generate.nets import (
    CELL_OPS,
    Cell,
    CellCNN,
    ImageTransformer,
    TransformerArch,
    cnn_param_count,
    count_params,
    sample_cell,
    sample_transformer_arch,
)


def test_sampled_cells_are_valid_unique_dags():
    rng = random.Random(0)
    seen = set()
    for _ in range(100):
        c = sample_cell(rng, exclude=seen)
        assert c.is_valid() and c not in seen
        seen.add(c)
        assert Cell.from_string(c.to_string()) == c
    # 5^6 cells, of which the valid ones have a non-none path 0 -> 3.
    all_cells = [Cell(ops) for ops in itertools.product(CELL_OPS, repeat=6)]
    assert len(all_cells) == 15625
    n_valid = sum(c.is_valid() for c in all_cells)
    assert 10000 < n_valid < 15625
    assert not Cell(("nor_conv_3x3", "none", "none", "none", "none", "skip_connect")).is_valid()
    assert Cell(("none", "none", "none", "skip_connect", "none", "none")).is_valid()


def test_cell_errors():
    with pytest.raises(ValueError, match="unknown cell op 'conv5x5'"):
        Cell(("conv5x5",) + ("none",) * 5)
    with pytest.raises(ValueError, match="6 edges"):
        Cell(("none",))


@pytest.mark.parametrize("seed", range(6))
def test_cnn_param_counts_and_forward(seed):
    cell = sample_cell(random.Random(seed))
    net = CellCNN(cell, 3, 10, channels=16)
    assert count_params(net) == cnn_param_count(cell, 3, 10, 16)
    small = CellCNN(cell, 1, 10, channels=8, num_cells=2)
    assert count_params(small) == cnn_param_count(cell, 1, 10, 8, 2)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert small(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_cnn_count_range():
    two_conv3 = Cell(("nor_conv_3x3", "none", "none", "none", "none", "nor_conv_3x3"))
    assert cnn_param_count(two_conv3, 3, 10, 16) == 5338
    assert cnn_param_count(Cell(("skip_connect",) * 6), 3, 10, 16) == 666


def test_cell_arithmetic():
    # skip 0->1, skip 1->2, skip 2->3, others none: output == input (identity chain).
    cell = Cell(("skip_connect", "none", "skip_connect", "none", "none", "skip_connect"))
    from gfm_accel.lab.generate.nets import _CellModule

    m = _CellModule(cell, 4)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(m(x), x)
    # All skip: node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x.
    m = _CellModule(Cell(("skip_connect",) * 6), 4)
    torch.testing.assert_close(m(x), 4 * x)


def test_transformer_paper_count_and_grid():
    assert count_params(ImageTransformer(3072, 10, depth=4, hidden=128)) == 924_554
    assert count_params(ImageTransformer(64, 10, depth=1, hidden=64)) == 64 * 64 + 64 + 8 * 64 * 64 + 11 * 64 + 650
    rng = random.Random(1)
    archs = {sample_transformer_arch(rng) for _ in range(200)}
    assert {a.depth for a in archs} == {1, 2, 3, 4}
    assert {a.hidden for a in archs} == {64, 128, 256, 512, 1024}
    assert {a.dropout for a in archs} == {0.0, 0.1, 0.3}
    with pytest.raises(ValueError, match="even hidden size"):
        TransformerArch(depth=1, hidden=63)
    with pytest.raises(ValueError, match="dropout"):
        TransformerArch(depth=1, hidden=64, dropout=1.0)
