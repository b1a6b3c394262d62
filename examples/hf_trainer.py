"""GFMJump as a Hugging Face Trainer callback on a tiny GPT-2 (offline), with the recommended configuration.

    python examples/hf_trainer.py                         # 4 epochs of 32 steps
    python examples/hf_trainer.py --epochs 3 --limit 400 --forecaster linear   # smoke test: 75 steps

The model is built from a ``GPT2Config`` (2 layers, width 64, byte vocabulary of 256), so
nothing is downloaded. The text is the source of Python's own standard library modules
(``argparse``, ``textwrap``, ...), cut into 64-byte blocks: the first 90% for training, then
a guard split and a validation split. ``trainer.add_callback(GFMJump())`` is the whole
integration: the defaults (a snapshot every 5 optimizer steps, a jump every 25 forecasting
50 ahead; a run needs at least 75 optimizer steps for one jump, docs/jump.md), and the
callback takes its guard batches from the Trainer's ``eval_dataset``, here the guard split;
the reported eval loss is ``trainer.evaluate(val_ds)`` on the separate validation split.
"""

import argparse
import inspect
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse as _argparse_module  # noqa: E402  (its source is our text)
import tempfile  # noqa: E402
import textwrap  # noqa: E402

import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments  # noqa: E402

from gfm_accel.integrations.hf import GFMJump  # noqa: E402
from gfm_accel.lab.forecasters import add_forecaster_argument, make_forecaster  # noqa: E402

BLOCK = 64


class Blocks(torch.utils.data.Dataset):
    def __init__(self, data: torch.Tensor):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        ids = self.data[i]
        return {"input_ids": ids, "labels": ids.clone()}


def stdlib_text() -> bytes:
    """Source of a few standard-library modules: text that ships with every Python."""
    return "\n".join(inspect.getsource(m) for m in (_argparse_module, textwrap, tempfile)).encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--limit", type=int, default=512, help="training blocks of 64 bytes")
    parser.add_argument("--seed", type=int, default=0)
    add_forecaster_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    raw = torch.tensor(list(stdlib_text()), dtype=torch.long)
    blocks = raw[: len(raw) // BLOCK * BLOCK].view(-1, BLOCK)
    cut = int(0.9 * len(blocks))
    train_ds = Blocks(blocks[:cut][: args.limit])
    # The guard split goes to the Trainer as eval_dataset, which the callback's guard reads;
    # the val split is only reported at the end (the guard chooses among candidates by its
    # data, so it is tuned on).
    guard_ds, val_ds = Blocks(blocks[cut:][:64]), Blocks(blocks[cut:][64:192])
    print(f"text: {len(raw)} bytes of stdlib source; {len(train_ds)} train / {len(guard_ds)} guard / "
          f"{len(val_ds)} val blocks of {BLOCK}")

    torch.manual_seed(args.seed)
    config = GPT2Config(vocab_size=256, n_positions=BLOCK, n_embd=64, n_layer=2, n_head=4,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=16,
            per_device_eval_batch_size=32, learning_rate=3e-3, lr_scheduler_type="constant",
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to=[],
            use_cpu=True, seed=args.seed, disable_tqdm=True, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=train_ds, eval_dataset=guard_ds)
        forecaster = None if args.forecaster == "shipped" else make_forecaster(args.forecaster)
        jump = GFMJump(forecaster)  # the defaults; guard: up to 4 eval batches (here all 64 guard blocks)
        trainer.add_callback(jump)
        t0 = time.perf_counter()
        trainer.train()  # the callback logs its summary line at the end (INFO)
        seconds = time.perf_counter() - t0
        metrics = trainer.evaluate(val_ds)

    for r in jump.history:  # also in trainer.state.log_history, as "gfm/..." keys
        print(f"step {r.step}: jump to m={r.m}: {r.reason}" + (f" (alpha={r.alpha:g})" if r.accepted else ""))
    print(jump.core.summary(trainer.state.max_steps // args.epochs))
    accepted = sum(1 for r in jump.history if r.accepted)
    print(f"jumps: {accepted} accepted / {len(jump.history)} tried")
    print(f"final: eval_loss={metrics['eval_loss']:.4f} steps={trainer.state.global_step} time={seconds:.1f}s")


if __name__ == "__main__":
    main()
