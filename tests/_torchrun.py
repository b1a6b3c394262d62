"""Run a two-rank torchrun worker (gloo, CPU) and collect what each rank wrote.

The HF and Lightning DDP tests share this: the worker writes ``rank{r}.json`` (with
``world_size`` and the jump ``history``) and ``rank{r}.safetensors`` (the weights right after
the jump and at the end) into the output folder given as its only argument.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

#: Jump-record fields every rank must agree on.
DECISION_KEYS = ("step", "m", "alphas_tried", "accepted", "alpha", "reason", "loss_before", "losses_after")


def run_two_ranks(worker: Path, out_dir: Path, timeout: int = 300, **env: str) -> tuple[list[dict[str, Any]], list[dict[str, torch.Tensor]]]:
    """Launch ``worker`` under ``torch.distributed.run`` with 2 processes; return each rank's JSON and tensors."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(out_dir)]
    proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", **env), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = [json.loads((out_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    tensors = [load_file(str(out_dir / f"rank{r}.safetensors")) for r in (0, 1)]
    assert runs[0]["world_size"] == runs[1]["world_size"] == 2
    return runs, tensors


def assert_one_identical_jump(runs: list[dict[str, Any]], tensors: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Both ranks made the same single jump decision and hold bit-identical weights after it and at the end.

    The workers' forecasters add ``1e-3 * rank``: identical weights prove that rank 0's forecast was
    broadcast. Returns rank 0's jump record.
    """
    h0, h1 = runs[0]["history"], runs[1]["history"]
    assert len(h0) == len(h1) == 1
    for key in DECISION_KEYS:
        assert h0[0][key] == h1[0][key], key
    assert torch.equal(tensors[0]["after_jump"], tensors[1]["after_jump"])
    assert torch.equal(tensors[0]["final"], tensors[1]["final"])
    return h0[0]
