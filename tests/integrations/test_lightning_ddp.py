"""A Lightning Trainer with GFMJump under torchrun: 2 processes, DDP, gloo, CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")

from _torchrun import assert_one_identical_jump, run_two_ranks  # noqa: E402

WORKER = Path(__file__).with_name("lightning_ddp_worker.py")


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_every_rank_ends_the_jump_with_identical_weights(tmp_path):
    runs, tensors = run_two_ranks(WORKER, tmp_path)
    jump = assert_one_identical_jump(runs, tensors)
    assert (jump["step"], jump["m"], jump["accepted"]) == (2, 4, True)
