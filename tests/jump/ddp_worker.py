"""A plain DDP loop with GFMJump, launched by ``test_ddp.py`` under torchrun (gloo, CPU).

Every rank trains on its own shard, evaluates the guard on its own held-out shard and
refreshes BatchNorm from its own batches. The forecaster adds rank-dependent noise, so
ranks would diverge if any rank but 0 used its own forecast. After every jump attempt the
worker gathers parameters, buffers and the jump record from all ranks; rank 0 writes the
comparison to ``--out`` as JSON.

Usage:
    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/jump/ddp_worker.py --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _jump_helpers import bn_mlp  # noqa: E402

from gfm_accel.forecast.simple import LinearExtrapolationForecaster  # noqa: E402
from gfm_accel.jump import GFMJump  # noqa: E402
from gfm_accel.params import flatten_params  # noqa: E402


class RankNoisyForecaster:
    """Linear extrapolation plus rank-dependent noise; every third call a far-away point (rejected)."""

    expected_dim = None

    def __init__(self):
        self.calls = 0
        self.inner = LinearExtrapolationForecaster()

    def forecast(self, prefix, m, *, spec=None):
        self.calls += 1
        g = torch.Generator().manual_seed(100 + dist.get_rank())
        noise = torch.randn(prefix.shape[-1], generator=g)
        out = self.inner.forecast(prefix, m, spec=spec)
        scale = 30.0 if self.calls % 3 == 0 else 1e-3
        return out + scale * noise


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    # Synthetic 10-class data from a fixed random teacher (no sklearn import: faster start).
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(768, 64, generator=g)
    ys = (xs @ torch.randn(64, 10, generator=g)).argmax(1)
    x, y, xv, yv = xs[:512], ys[:512], xs[512:], ys[512:]
    x, y, xv, yv = x[rank::world], y[rank::world], xv[rank::world], yv[rank::world]
    model = DDP(bn_mlp(seed=rank))  # different init per rank: DDP broadcasts rank 0's
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def eval_fn(m):
        m.eval()
        return float(torch.nn.functional.cross_entropy(m(xv), yv))

    bn_loader = [x[i : i + 32] for i in range(0, len(x), 32)]
    jump = GFMJump(RankNoisyForecaster(), n=2, horizon=2, refresh_bn_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset", every=2)
    jump.attach(model, opt, eval_fn=eval_fn, bn_loader=bn_loader)

    checks = []
    for epoch in range(args.epochs):
        model.train()
        g = torch.Generator().manual_seed(epoch * 10 + rank)
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = perm[i : i + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        rec = jump.on_epoch_end(epoch)
        if rec is None:
            continue
        flat = flatten_params(model)
        bufs = torch.cat([b.float().reshape(-1) for b in model.buffers()])
        flats = [torch.empty_like(flat) for _ in range(world)]
        allbufs = [torch.empty_like(bufs) for _ in range(world)]
        dist.all_gather(flats, flat)
        dist.all_gather(allbufs, bufs)
        decision = {k: rec.to_dict()[k] for k in ("step", "accepted", "alpha", "alphas_tried", "loss_before", "losses_after", "reason")}
        decisions = [None] * world
        dist.all_gather_object(decisions, decision)
        checks.append(
            {
                "step": rec.step,
                "accepted": rec.accepted,
                "params_identical": all(torch.equal(flats[0], f) for f in flats),
                "buffers_identical": all(torch.equal(allbufs[0], b) for b in allbufs),
                "decisions_identical": all(d == decisions[0] for d in decisions),
                "decisions": decisions,
            }
        )
    calls = [None] * world
    dist.all_gather_object(calls, jump.forecaster.calls)
    state_path = os.path.join(os.path.dirname(args.out), "gfm_jump_state.safetensors")
    jump.save_state(state_path if rank == 0 else state_path + f".rank{rank}")  # only rank 0 writes
    dist.barrier()
    if rank == 0:
        result = {
            "world": world,
            "checks": checks,
            "forecaster_calls": calls,
            "files": sorted(os.listdir(os.path.dirname(args.out))),
        }
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    # Leave without interpreter shutdown once both ranks are done: gloo's C++ teardown
    # intermittently aborted a rank at exit ("terminate called without an active exception",
    # about 1 run in 10 under load), even after destroy_process_group().
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
