"""The few ``torch.distributed`` operations a jump needs, no-ops in a single process.

Rank behaviour (decided here, relied on by :class:`~gfm_accel.jump.core.GFMJump`):

* Every rank records its own snapshots: under DDP the weights are identical on all ranks
  after each optimizer step, so this costs no communication, and any rank can resume.
* Rank 0 alone calls the forecaster and validates its output; it broadcasts a status code
  and the flat forecast, so every rank writes the same bits.
* Guard losses are all-reduced (mean, float64) so every rank takes the same decision.
* Only rank 0 logs warnings and writes files.
"""

from __future__ import annotations

import torch

__all__ = ["is_distributed", "rank", "world_size", "is_main_process", "comm_device", "broadcast_", "all_reduce_mean"]


def is_distributed() -> bool:
    """True inside an initialized process group with more than one rank."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def comm_device(fallback: torch.device) -> torch.device:
    """Device collectives must use: the model's CUDA device for NCCL, CPU otherwise."""
    if is_distributed() and torch.distributed.get_backend() == "nccl":
        if fallback.type == "cuda":
            return fallback
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_(tensor: torch.Tensor, device: torch.device, src: int = 0) -> torch.Tensor:
    """Broadcast ``tensor`` from ``src`` in place (through ``device``); returns it."""
    if not is_distributed():
        return tensor
    if tensor.device == device:
        torch.distributed.broadcast(tensor, src=src)
        return tensor
    buf = tensor.to(device)
    torch.distributed.broadcast(buf, src=src)
    tensor.copy_(buf)
    return tensor


def all_reduce_mean(value: float, device: torch.device) -> float:
    """Mean of a Python float over ranks (float64)."""
    if not is_distributed():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return float(t.item()) / torch.distributed.get_world_size()
