"""torchrun worker: the HF Trainer under DDP (gloo, CPU) with the GFMJump callback.

Launched by test_hf_ddp.py as
``python -m torch.distributed.run --nproc_per_node=2 hf_ddp_worker.py OUT_DIR``.
Each rank writes ``OUT_DIR/rank<r>.safetensors`` (flat parameters right after the jump and
at the end) and ``OUT_DIR/rank<r>.json`` (its jump history and log entries).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from transformers import Trainer, TrainerCallback  # noqa: E402

from _integration_models import (  # noqa: E402
    RankDependentForecaster,
    finish_distributed,
    flat_params,
    lm_datasets,
    tiny_gpt2,
    tiny_training_args,
    write_rank_outputs,
)
from gfm_accel.integrations.hf import GFMJump  # noqa: E402


class GrabAfterJump(TrainerCallback):
    def __init__(self, jump: GFMJump) -> None:
        self.jump = jump
        self.after: torch.Tensor | None = None

    def on_epoch_end(self, args, state, control, model=None, **kw):
        if self.jump.history and self.after is None:
            self.after = flat_params(model).float()


def main(out_dir: str) -> None:
    rank = int(os.environ["RANK"])
    train, held_out = lm_datasets(n_train=64, n_eval=16)
    jump = GFMJump(forecaster=RankDependentForecaster(), mode="far", n=2, eval_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    grab = GrabAfterJump(jump)
    args = tiny_training_args(os.path.join(out_dir, "trainer"), ddp_backend="gloo", num_train_epochs=3,
                              per_device_train_batch_size=8, per_device_eval_batch_size=4)
    trainer = Trainer(model=tiny_gpt2(), args=args, train_dataset=train, eval_dataset=held_out, callbacks=[jump, grab])
    trainer.train()
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    write_rank_outputs(out_dir, rank, grab.after, flat_params(trainer.model), {
        "world_size": world,
        "history": [r.to_dict() for r in jump.history],
        "logs": [e for e in trainer.state.log_history if "gfm/step" in e],
    })

if __name__ == "__main__":
    main(sys.argv[1])
    finish_distributed()
