"""A Lightning Trainer with GFMJump under torchrun: 2 processes, DDP, gloo, CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")

from safetensors.torch import load_file  # noqa: E402

WORKER = Path(__file__).with_name("lightning_ddp_worker.py")


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_every_rank_ends_the_jump_with_identical_weights(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    runs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    tensors = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    assert runs[0]["world_size"] == runs[1]["world_size"] == 2
    h0, h1 = runs[0]["history"], runs[1]["history"]
    assert len(h0) == len(h1) == 1
    for key in ("step", "m", "alphas_tried", "accepted", "alpha", "reason", "loss_before", "losses_after"):
        assert h0[0][key] == h1[0][key], key
    assert (h0[0]["step"], h0[0]["m"], h0[0]["accepted"]) == (2, 4, True)
    # The forecaster adds 1e-3 * rank: equal weights prove rank 0's forecast was broadcast.
    assert torch.equal(tensors[0]["after_jump"], tensors[1]["after_jump"])
    assert torch.equal(tensors[0]["final"], tensors[1]["final"])
