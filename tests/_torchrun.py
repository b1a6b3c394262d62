"""Launch real two-process torchrun jobs (gloo, CPU) for the distributed tests.

:func:`torchrun` runs any command line under ``torch.distributed.run --nproc_per_node=2``
(one torch thread per process, the repository on ``PYTHONPATH``) and fails the test with the
job's output when it exits non-zero. The HF and Lightning DDP tests also share
:func:`run_two_ranks`: their worker writes ``rank{r}.json`` (with ``world_size`` and the jump
``history``) and ``rank{r}.safetensors`` (the weights right after the jump and at the end) into
the output folder given as its only argument.
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


REPO = Path(__file__).resolve().parent.parent


def torchrun(args: list[str], timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``torch.distributed.run --standalone --nproc_per_node=2 *args``; assert it exits 0.

    ``args`` is a script path and its arguments, or ``["-m", module, ...]``. Extra ``env`` entries
    are added to the environment. Returns the finished process (its ``stdout``/``stderr`` as text).
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, **env),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    return proc


def run_two_ranks(worker: Path, out_dir: Path, timeout: int = 300, **env: str) -> tuple[list[dict[str, Any]], list[dict[str, torch.Tensor]]]:
    """Launch ``worker`` under torchrun with 2 processes; return each rank's JSON and tensors."""
    torchrun([str(worker), str(out_dir)], timeout=timeout, **env)
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
