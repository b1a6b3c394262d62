"""Tuned comparison on a GPT-2 small (124M-shaped, byte-level) language model over a local text
file: does any method reach the tuned AdamW baseline's target sooner? (Issue 14; GPU.)

Text: ``--text FILE``, read as bytes (vocabulary: the 256 byte values, so no tokenizer or hub
download is needed), cut into 16 KiB chunks: every 20th chunk (0, 20, ...) is the validation
split the target is measured on, chunks 10, 30, ... the jump guard's, the rest training.
Model: ``transformers.GPT2LMHeadModel`` built from a ``GPT2Config`` (12 layers, 12 heads,
width 768, context 256, dropout 0; never from a hub). Recipe: AdamW (weight decay 0.1), lr
grid centred on 6e-4, batch 32 x 256 bytes, 2000 steps, warmup 5% + cosine.

    python benchmarks/gpu/tuned_gpt2_small.py --text corpus.txt --out benchmarks/results/accel_tuned/gpu_gpt2_small

``--tiny`` is the CPU smoke run (2 layers of width 64, a few steps).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tuned import add_args, compare  # noqa: E402

from gfm_accel.lab.tasks.char_gpt import VOCAB, CharGPT, TextSplits, split_text  # noqa: E402


@functools.lru_cache(maxsize=2)
def _file_splits(path: str) -> TextSplits:
    return split_text(Path(path).read_bytes())


class _Logits(nn.Module):
    """``GPT2LMHeadModel`` as ``(B, T) int64 -> (B, T, vocab)`` logits."""

    def __init__(self, config) -> None:
        super().__init__()
        from transformers import GPT2LMHeadModel

        self.gpt = GPT2LMHeadModel(config)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.gpt(input_ids=idx).logits


@dataclass
class TextGPT2(CharGPT):
    """:class:`CharGPT` on ``text_file`` with a Hugging Face GPT-2 built from a config."""

    name: str = "gpt2_small_bytes"
    text_file: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not Path(self.text_file).is_file():
            raise ValueError(f"TextGPT2: text_file {self.text_file!r} is not a file")

    def splits(self) -> TextSplits:
        return _file_splits(str(Path(self.text_file).resolve()))

    def make_model(self) -> nn.Module:
        from transformers import GPT2Config

        cfg = GPT2Config(vocab_size=VOCAB, n_positions=self.context, n_embd=self.dim, n_layer=self.depth,
                         n_head=self.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return _Logits(cfg)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(parser)
    parser.add_argument("--text", required=True, help="a local text file (read as bytes)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.tiny:
        workload = TextGPT2(name="gpt2_tiny_bytes", text_file=args.text, context=32, dim=64, depth=2, heads=2,
                            batch_size=4, total_steps=8, val_batches=2, guard_batches=1, lr=3e-3, weight_decay=0.1)
    else:
        workload = TextGPT2(text_file=args.text, context=256, dim=768, depth=12, heads=12, batch_size=32,
                            total_steps=2000, val_batches=32, guard_batches=8, lr=6e-4, weight_decay=0.1)
    return compare(workload, args)


if __name__ == "__main__":
    main()
