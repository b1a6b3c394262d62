"""torchrun worker: a Lightning Trainer under DDP (gloo, CPU) with the GFMJump callback.

Launched by test_lightning_ddp.py as
``python -m torch.distributed.run --standalone --nproc_per_node=2 lightning_ddp_worker.py OUT_DIR``.
Each rank writes ``OUT_DIR/rank<r>.safetensors`` (flat parameters right after the jump and at
the end) and ``OUT_DIR/rank<r>.json`` (its jump history).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lightning as L  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from _integration_models import RankDependentForecaster, finish_distributed, flat_params, write_rank_outputs  # noqa: E402
from gfm_accel.integrations.lightning import GFMJump  # noqa: E402
from test_lightning import Regressor, _loaders  # noqa: E402


class GrabAfterJump(Callback):
    def __init__(self, jump: GFMJump) -> None:
        self.jump = jump
        self.after = None

    def on_train_epoch_end(self, trainer, pl_module):
        if self.jump.history and self.after is None:
            self.after = flat_params(pl_module).float()


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    module = Regressor()
    jump = GFMJump(forecaster=RankDependentForecaster(), mode="far", n=2, alpha=0.5, eval_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    grab = GrabAfterJump(jump)
    trainer = L.Trainer(
        max_epochs=4,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        callbacks=[jump, grab],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=out_dir,
    )
    trainer.fit(module, *_loaders())
    write_rank_outputs(out_dir, trainer.global_rank, grab.after, flat_params(module),
                       {"world_size": trainer.world_size, "history": [r.to_dict() for r in jump.history]})

if __name__ == "__main__":
    main(sys.argv[1])
    finish_distributed()
