"""The trajectory zoo the shipped forecaster is trained on.

Every run trains a small model on data available offline (:mod:`gfm_accel.lab.datasets`)
with the lab's epoch loop (:func:`gfm_accel.lab.training.train_epoch`) and records its
flattened weights once per epoch with :class:`~gfm_accel.recorder.WeightRecorder`, with
the train and validation loss beside each snapshot. Runs that share an architecture (same D) are
stored in one trajectory file, one trajectory per (optimizer, lr, seed).

Families (the *zoo*; the acceleration benchmark's held-out tasks are deliberately not here):

==============  ==========================================  ===========================
family          model                                       data
==============  ==========================================  ===========================
``mlp``         MLP 64-h-10 and 64-h-h-10, ReLU or Tanh     sklearn 8x8 digits
``cnn``         2 conv layers (+BatchNorm or not) + linear  sklearn 8x8 digits
``gpt``         tiny causal char Transformer (1-2 blocks)   Python standard-library source
==============  ==========================================  ===========================

Optimizers (:mod:`gfm_accel.lab.optim` names): ``sgd``, ``sgdm`` (SGD with momentum 0.9),
``adam``, ``adamw`` (wd 0.01) and ``rmsprop``, each at two learning rates (:data:`ZOO_LRS`) and two seeds (120 runs, 40
epochs each; the seed sets the initialization and the mini-batch order). An "epoch" of the char model is a fixed number of steps.

Held-out (never in the zoo): mnist1d data, 1-D convolutions, recurrent networks, patch
Transformers (on digits and on mnist1d), Hugging Face GPT-2 models (see ``docs/acceleration.md``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from ..recorder import WeightRecorder
from ..trajectories import save_trajectories
from .._progress import progress as bar
from .datasets import char_tensors, zoo_digits
from .optim import build_optimizer
from .training import train_epoch

__all__ = [
    "ZooRun",
    "zoo_runs",
    "train_run",
    "build_zoo",
    "CharGPT",
    "ZOO_LRS",
    "make_optimizer",
]

logger = logging.getLogger(__name__)

#: Optimizer (a :mod:`gfm_accel.lab.optim` name) -> the two learning rates used in the zoo.
ZOO_LRS: dict[str, tuple[float, ...]] = {
    "sgd": (0.05, 0.2),
    "sgdm": (0.01, 0.05),
    "adam": (1e-3, 3e-3),
    "adamw": (1e-3, 3e-3),
    "rmsprop": (3e-4, 1e-3),
}


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The zoo's optimizer ``name`` at ``lr``: weight decay 0.01 for AdamW, none otherwise.

    Raises:
        ValueError: ``name`` is not one of :data:`ZOO_LRS`.
    """
    if name not in ZOO_LRS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(ZOO_LRS)}")
    return build_optimizer(name, params, lr, weight_decay=0.01 if name == "adamw" else 0.0)


class CharGPT(nn.Module):
    """A tiny causal character Transformer (token + position embeddings, pre-LN blocks).

    Example:
        >>> m = CharGPT(vocab=96, d=32, layers=1, ctx=16)
        >>> m(torch.zeros(2, 16, dtype=torch.long)).shape
        torch.Size([2, 16, 96])
    """

    def __init__(self, vocab: int = 96, d: int = 32, layers: int = 1, ctx: int = 32, heads: int = 2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", torch.triu(torch.full((ctx, ctx), float("-inf")), 1), persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        h = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


# --------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class ZooRun:
    """One zoo training run; runs with the same ``arch`` share D and one file."""

    family: str
    arch: str
    optimizer: str
    lr: float
    seed: int
    epochs: int = 40

    @property
    def file_stem(self) -> str:
        return f"{self.family}_{self.arch}"


def _mlp(arch: str) -> nn.Module:
    depth, width, act = arch.split("-")  # e.g. "d1-w32-relu"
    act_cls = {"relu": nn.ReLU, "tanh": nn.Tanh}[act]
    w = int(width[1:])
    layers: list[nn.Module] = [nn.Linear(64, w), act_cls()]
    for _ in range(int(depth[1:]) - 1):
        layers += [nn.Linear(w, w), act_cls()]
    layers.append(nn.Linear(w, 10))
    return nn.Sequential(*layers)


def _cnn(arch: str) -> nn.Module:
    c, bn = arch.split("-")  # e.g. "c8-bn"
    c = int(c[1:])
    norm = (lambda ch: nn.BatchNorm2d(ch)) if bn == "bn" else (lambda ch: nn.Identity())
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1), norm(c), nn.ReLU(),
        nn.Conv2d(c, 2 * c, 3, padding=1), norm(2 * c), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * c * 16, 10),
    )


def _gpt(arch: str) -> nn.Module:
    layers, d = arch.split("-")  # e.g. "l1-d32"
    return CharGPT(d=int(d[1:]), layers=int(layers[1:]), ctx=32)


_ARCHS: dict[str, tuple[Callable[[str], nn.Module], tuple[str, ...]]] = {
    "mlp": (_mlp, ("d1-w32-relu", "d2-w32-tanh", "d2-w64-relu")),
    "cnn": (_cnn, ("c8-none", "c8-bn")),
    "gpt": (_gpt, ("l1-d32",)),
}


#: Seeds of the default zoo.
ZOO_SEEDS: tuple[int, ...] = (0, 1)


def zoo_runs(scale: str = "default", seeds: tuple[int, ...] | None = None) -> list[ZooRun]:
    """The runs of the zoo. ``scale="tiny"`` is a few-run version for tests (seed 0 only).

    Args:
        scale: ``"default"`` or ``"tiny"``.
        seeds: run seeds (default :data:`ZOO_SEEDS`; ``(0,)`` for ``"tiny"``).
    """
    runs = []
    if seeds is None:
        seeds = ZOO_SEEDS if scale == "default" else (0,)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of integers >= 0, got {seeds!r}")
    for family, (_, archs) in _ARCHS.items():
        if scale == "tiny":
            archs = archs[:1]
        for arch, opt, seed in itertools.product(archs, ZOO_LRS, seeds):
            lrs = ZOO_LRS[opt] if scale == "default" else ZOO_LRS[opt][:1]
            for lr in lrs:
                epochs = 40 if scale == "default" else 6
                runs.append(ZooRun(family, arch, opt, lr, seed, epochs))
    if scale == "tiny":
        runs = [r for r in runs if r.optimizer in ("adam", "sgd")]
    return runs


def _batches(n: int, batch: int, g: torch.Generator) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=g)
    for i in range(0, n, batch):
        yield perm[i : i + batch]


@torch.no_grad()
def _loss_of(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor) -> float:
    """``loss_fn(model(x), y)`` in eval mode, in one batch; the model is left in train mode."""
    model.eval()
    v = loss_fn(model(x), y).item()
    model.train()
    return v


def train_run(run: ZooRun, steps_per_epoch_text: int = 20, every_steps: int | None = None) -> dict:
    """Train one zoo run and record its weights every epoch (or every ``every_steps`` optimizer steps).

    Args:
        run: what to train.
        steps_per_epoch_text: optimizer steps in one "epoch" of the char model.
        every_steps: record every this many optimizer steps instead of once per epoch (the
            losses are then only evaluated at epoch ends and are NaN in between).

    Returns:
        dict with ``weights`` (T, D), ``loss`` (T,), ``val_loss`` (T,), ``spec``, ``seconds``.
    """
    torch.manual_seed(run.seed)
    g = torch.Generator().manual_seed(run.seed)
    builder = _ARCHS[run.family][0]
    model = builder(run.arch)
    opt = make_optimizer(run.optimizer, model.parameters(), run.lr)
    if run.family == "gpt":
        train_ids, val_ids = char_tensors()
        ctx = 32

        def sample(ids, n):
            starts = torch.randint(0, len(ids) - ctx - 1, (n,), generator=g)
            x = torch.stack([ids[s : s + ctx] for s in starts])
            y = torch.stack([ids[s + 1 : s + ctx + 1] for s in starts])
            return x, y

        gv = torch.Generator().manual_seed(99)
        vstarts = torch.randint(0, len(val_ids) - ctx - 1, (64,), generator=gv)
        vx = torch.stack([val_ids[s : s + ctx] for s in vstarts])
        vy = torch.stack([val_ids[s + 1 : s + ctx + 1] for s in vstarts])
        loss_fn = lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))  # noqa: E731

        def epoch_batches():
            for _ in range(steps_per_epoch_text):
                yield sample(train_ids, 32)

        evaluate = lambda: _loss_of(model, loss_fn, vx, vy)  # noqa: E731
        train_eval = lambda: _loss_of(model, loss_fn, *sample(train_ids, 64))  # noqa: E731  (a fresh sample)
    else:
        xtr, ytr, xva, yva = zoo_digits(image=run.family == "cnn")
        loss_fn = F.cross_entropy

        def epoch_batches():
            for idx in _batches(len(xtr), 64, g):
                yield xtr[idx], ytr[idx]

        evaluate = lambda: _loss_of(model, loss_fn, xva, yva)  # noqa: E731
        train_eval = lambda: _loss_of(model, loss_fn, xtr, ytr)  # noqa: E731

    model.train()
    rec = WeightRecorder(model, record_initial=False)
    t0 = time.perf_counter()
    losses, val_losses = [], []
    rec.record(0)
    losses.append(train_eval())
    val_losses.append(evaluate())
    if every_steps is not None and (isinstance(every_steps, bool) or every_steps < 1):
        raise ValueError(f"every_steps must be a positive integer or None, got {every_steps!r}")
    step = 0
    evaluated = list(losses)  # the losses actually computed (step snapshots between epoch ends hold NaN)
    for epoch in range(run.epochs):
        snapped = False

        def after_step() -> None:
            nonlocal step, snapped
            step += 1
            if every_steps is not None and step % every_steps == 0:
                rec.record(step)
                losses.append(float("nan"))
                val_losses.append(float("nan"))
                snapped = True

        train_epoch(model, opt, epoch_batches(), loss_fn=loss_fn, after_step=after_step)
        if every_steps is None:
            rec.on_epoch_end()
            losses.append(train_eval())
            val_losses.append(evaluate())
            evaluated.append(losses[-1])
        elif snapped:  # the losses of the last snapshot taken in this epoch
            losses[-1], val_losses[-1] = train_eval(), evaluate()
            evaluated.append(losses[-1])
    weights = rec.weights()
    ok = bool(torch.isfinite(weights).all()) and all(math.isfinite(v) for v in evaluated)
    return {
        "weights": weights,
        "loss": torch.tensor(losses),
        "val_loss": torch.tensor(val_losses),
        "spec": rec.spec,
        "seconds": time.perf_counter() - t0,
        "finite": ok,
    }


def build_zoo(out_dir: str | Path, scale: str = "default", progress: bool = True,
              every_steps: int | None = None, seeds: tuple[int, ...] | None = None) -> list[Path]:
    """Run the zoo and write one trajectory file per architecture into ``out_dir``.

    ``seeds`` as in :func:`zoo_runs`.

    ``every_steps`` records every that many optimizer steps instead of once per epoch (see
    :func:`train_run`); all runs of one architecture then still share T.

    Runs that diverge (NaN/Inf) are dropped and logged. Returns the files written.
    """
    out_dir = Path(out_dir)
    runs = zoo_runs(scale, seeds)
    groups: dict[str, list[tuple[ZooRun, dict]]] = {}
    for i, run in enumerate(bar(runs, desc="zoo", enabled=progress)):
        res = train_run(run, every_steps=every_steps)
        logger.info("zoo run %d/%d %s/%s %s lr=%g: loss %.3f -> %.3f (%.1f s)", i + 1, len(runs), run.family, run.arch,
                    run.optimizer, run.lr, float(res["loss"][0]), float(res["loss"][-1]), res["seconds"])
        if not res["finite"]:
            logger.warning("zoo run %s diverged; dropped", run)
            continue
        groups.setdefault(run.file_stem, []).append((run, res))
    written = []
    for stem, items in groups.items():
        spec = items[0][1]["spec"]
        written.append(
            save_trajectories(
                out_dir / f"zoo_{stem}.safetensors",
                torch.stack([r["weights"] for _, r in items]),
                loss=torch.stack([r["loss"] for _, r in items]),
                val_loss=torch.stack([r["val_loss"] for _, r in items]),
                spec=spec,
                steps=list(range(items[0][1]["weights"].shape[0])),
                task=f"zoo/{items[0][0].family}",
                arch=items[0][0].arch,
                runs=[asdict(r) for r, _ in items],
                unit="epoch" if every_steps is None else f"{every_steps} steps",
            )
        )
    return written
