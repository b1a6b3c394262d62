"""The HF Trainer with GFMJump under torchrun: 2 processes, gloo backend, CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from _torchrun import assert_one_identical_jump, run_two_ranks  # noqa: E402

WORKER = Path(__file__).with_name("hf_ddp_worker.py")


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_every_rank_ends_the_jump_with_identical_weights(tmp_path):
    runs, tensors = run_two_ranks(WORKER, tmp_path, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    # Same decision and bit-identical weights on both ranks: one far jump after epoch 2, to
    # m = 3 planned epochs, with the guard run on the sharded eval set.
    jump = assert_one_identical_jump(runs, tensors)
    assert (jump["step"], jump["m"]) == (2, 3)
    assert jump["accepted"] and jump["loss_before"] is not None
    # The jump is in both ranks' log_history (Trainer.log keeps it on every rank).
    assert [e["gfm/step"] for e in runs[0]["logs"]] == [e["gfm/step"] for e in runs[1]["logs"]] == [2.0]
