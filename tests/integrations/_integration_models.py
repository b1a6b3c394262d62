"""Tiny models and data shared by the integration tests and their torchrun workers.

Text: the source of a standard-library module (it ships with every Python), tokenized as
bytes clipped to 7-bit ASCII, so no tokenizer download is needed (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import inspect
import json
import json.decoder
import os
import sys

import torch
from safetensors.torch import save_file

SEQ_LEN = 32
VOCAB = 128


def text_ids() -> torch.Tensor:
    """``(L,)`` int64 token ids of a fixed stdlib source file."""
    text = inspect.getsource(json.decoder)
    return torch.tensor([min(ord(c), VOCAB - 1) for c in text], dtype=torch.long)


class TokenBlocks(torch.utils.data.Dataset):
    """Non-overlapping blocks of ``SEQ_LEN`` tokens as ``{"input_ids", "labels"}`` (causal LM)."""

    def __init__(self, ids: torch.Tensor, n: int) -> None:
        if ids.numel() < n * SEQ_LEN:
            raise ValueError(f"need {n * SEQ_LEN} tokens, have {ids.numel()}")
        self.x = ids[: n * SEQ_LEN].view(n, SEQ_LEN).clone()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.x[i]}


def lm_datasets(n_train: int = 64, n_eval: int = 16) -> tuple[TokenBlocks, TokenBlocks]:
    """Train and held-out token blocks (disjoint parts of the text)."""
    ids = text_ids()
    return TokenBlocks(ids, n_train), TokenBlocks(ids[n_train * SEQ_LEN :], n_eval)


def tiny_gpt2(seed: int = 0):
    """A 1-layer GPT-2 (n_embd=32, vocab 128) built from a config: ~18k parameters."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_positions=SEQ_LEN,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg)


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    """All parameters as one float64 CPU vector (for exact comparisons)."""
    return torch.cat([p.detach().reshape(-1).double().cpu() for p in model.parameters()])


class RankDependentForecaster:
    """Linear extrapolation plus ``1e-3 * rank``: ranks agree only if rank 0's forecast is broadcast."""

    expected_dim = None

    def forecast(self, prefix, m, *, spec=None):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        n = prefix.shape[0] - 1
        return prefix[-1] + (m - n) * (prefix[-1] - prefix[-2]) + 1e-3 * rank


def finish_distributed() -> None:
    """End a torchrun worker: wait for the peer, then leave without interpreter shutdown.

    With gloo on CPU a rank intermittently aborted at exit, after all its work was done and
    its results written ("terminate called without an active exception", exit code -6; seen
    in about 1 of 10 runs under load, with and without ``destroy_process_group``). After the
    barrier no rank talks to another any more, so ``os._exit(0)`` (after flushing) ends the
    process without running the C++ teardown that aborts.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def write_rank_outputs(out_dir: str, rank: int, after_jump: torch.Tensor, final: torch.Tensor,
                       record: dict) -> None:
    """What a torchrun worker leaves for ``_torchrun.run_two_ranks``: ``rank<r>.safetensors``
    (the flat weights right after the jump and at the end) and ``rank<r>.json`` (``record``)."""
    save_file({"after_jump": after_jump.float().contiguous(), "final": final.float().contiguous()},
              os.path.join(out_dir, f"rank{rank}.safetensors"))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(record, fh)


def tiny_training_args(output_dir, **overrides):
    """The ``transformers.TrainingArguments`` of the HF tests: CPU, per-epoch eval and logs, no
    saving, seed 0; ``overrides`` replace any field."""
    from transformers import TrainingArguments

    base = dict(output_dir=str(output_dir), use_cpu=True, num_train_epochs=5, per_device_train_batch_size=16,
                per_device_eval_batch_size=8, learning_rate=3e-3, eval_strategy="epoch", save_strategy="no",
                logging_strategy="epoch", report_to=[], disable_tqdm=True, seed=0)
    base.update(overrides)
    return TrainingArguments(**base)
