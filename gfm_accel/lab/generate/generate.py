"""Write the paper's trajectory datasets as trajectory files (one per task, optimizer, seed).

File names: ``{task}_{optimizer}_seed{seed}.safetensors`` (e.g. ``linreg_adam_seed3``,
``mlp_sgd_seed0``, ``cnn_sgd_seed0``); a sharded CNN/Transformer file adds
``_runs{first}-{last}``. Every file records, in its metadata: ``task``, ``task_params``
(the config dict), ``optimizer``, ``hparams`` (resolved optimizer hyperparameters),
``lr``, ``init``, ``seed``, ``steps`` (index of each snapshot), ``step_unit``, ``spec``
and, per task, ``arch``. Nothing time- or machine-dependent is written, so the same
arguments give the same bytes.

CNN/Transformer files: one D per file is needed by a dense forecaster, so each family uses
**one fixed architecture** (given, or sampled from ``arch_seed``) and varies only the
initialization seed: run ``r`` of a file with seed ``s`` is trained with seed
``1000 * s + r``.

Example:
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> path = generate_linreg(out, optimizer="adam", seed=3, config=RegressionConfig(n_trajectories=4, steps=9))
    >>> path.name
    'linreg_adam_seed3.safetensors'
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..._config import JsonConfig
from ...params import ParamSpec
from ...trajectories import save_trajectories
from ..._progress import progress
from ._util import canonicalize_safetensors
from ..training import train_classifier
from .linreg import RegressionConfig, sample_regression_tasks, train_linreg_batched
from .mlp import MLP_ARCHS, make_mlp, sample_mlp_tasks, train_mlp_batched
from .nets import Cell, CellCNN, ImageTransformer, TransformerArch, count_params, sample_cell, sample_transformer_arch
from ..datasets import ImageDataset, load_image_dataset

__all__ = [
    "TASKS",
    "VISION_PRESETS",
    "VisionConfig",
    "trajectory_filename",
    "generate_linreg",
    "generate_mlp",
    "build_vision_model_factory",
    "generate_vision",
]

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("linreg", "mlp", "cnn", "transformer")
_RUN_SEED_STRIDE = 1000


def trajectory_filename(task: str, optimizer: str, seed: int, runs: tuple[int, int] | None = None) -> str:
    """``linreg_adam_seed3.safetensors``; with ``runs=(a, b)``: ``..._seed3_runs{a}-{b}``."""
    suffix = "" if runs is None else f"_runs{runs[0]:03d}-{runs[1]:03d}"
    return f"{task}_{optimizer}_seed{seed}{suffix}.safetensors"


def _save(path: Path, weights: torch.Tensor, **kwargs: Any) -> Path:
    """:func:`save_trajectories`, then a canonical header so the same content gives the same bytes."""
    return canonicalize_safetensors(save_trajectories(path, weights, **kwargs))


def generate_linreg(
    out_dir: str | Path, *, optimizer: str, seed: int, config: RegressionConfig | None = None,
    lr: float | None = None, **hparams: Any,
) -> Path:
    """Generate one linreg file: ``(N, steps + 1, 2)`` weights, ``(N, T)`` task loss.

    Extras: ``task_a``, ``task_b`` (``(N,)`` true coefficients). Spec: ``nn.Linear(1, 1)``
    (``weight`` = slope, ``bias`` = intercept).
    """
    config = config or RegressionConfig()
    tasks = sample_regression_tasks(config, seed)
    run = train_linreg_batched(tasks, optimizer, lr, **hparams)
    path = Path(out_dir) / trajectory_filename("linreg", optimizer, seed)
    return _save(
        path, run.weights, loss=run.loss, extra={"task_a": tasks.a, "task_b": tasks.b},
        task="linreg", task_params=config.to_dict(), optimizer=optimizer, hparams=run.hparams,
        lr=run.hparams["lr"], init=config.init, seed=seed, steps=list(range(config.steps + 1)),
        step_unit="update", spec=ParamSpec.from_model(nn.Linear(1, 1)), generator="gfm_accel.lab.generate.linreg",
    )


def generate_mlp(
    out_dir: str | Path, *, optimizer: str, seed: int, config: RegressionConfig | None = None,
    lr: float | None = None, n_first: int | None = None, activation: str = "tanh", **hparams: Any,
) -> Path:
    """Generate one MLP file: ``(N, epochs + 1, 15)`` weights, ``(N, T)`` task loss.

    Extras: ``arch_id`` (``(N,)``: 0 = mlp3 ``[2, 2, 1]``, 1 = mlp2 ``[4, 1]``), ``task_a``,
    ``task_b``. Metadata ``arch`` holds the legend (name, hidden sizes, per-arch ParamSpec)
    and ``spec`` is a flat 15-vector spec (the two archs share D, not the layout).
    """
    config = config or RegressionConfig(batch_size=64)
    mt = sample_mlp_tasks(config, seed, n_first=n_first, activation=activation)
    run = train_mlp_batched(mt, optimizer, lr, **hparams)
    legend = {
        str(aid): {"name": name, "hidden": list(hidden), "activation": activation,
                   "spec": ParamSpec.from_model(make_mlp(aid, activation)).to_dict()}
        for aid, (name, hidden) in MLP_ARCHS.items()
    }
    counts = [int((mt.arch_id == aid).sum()) for aid in MLP_ARCHS]
    path = Path(out_dir) / trajectory_filename("mlp", optimizer, seed)
    return _save(
        path, run.weights, loss=run.loss,
        extra={"arch_id": mt.arch_id, "task_a": mt.tasks.a, "task_b": mt.tasks.b},
        task="mlp", task_params=config.to_dict() | {"n_first": counts[0], "activation": activation},
        optimizer=optimizer, hparams=run.hparams, lr=run.hparams["lr"], init=config.init, seed=seed,
        steps=list(range(config.steps + 1)), step_unit="epoch", spec=ParamSpec.flat(15, "mlp15"),
        arch={"legend": legend, "counts": counts, "order": "first n_first trajectories are arch 0"},
        generator="gfm_accel.lab.generate.mlp",
    )


@dataclass
class VisionConfig(JsonConfig):
    """CNN / Transformer trajectory protocol (see ``docs/datasets.md`` for the presets).

    Attributes:
        family: ``cnn`` or ``transformer``.
        dataset: ``cifar10``, ``digits`` or ``fake``.
        runs: trajectories (init seeds) per seed file.
        epochs: epochs; T = epochs // snapshot_every + 1.
        batch_size: mini-batch size.
        optimizer_kwargs: beyond ``lr`` (SGD momentum etc.).
        lr: learning rate.
        arch_seed: seed of the fixed architecture when it is sampled.
        cell: CNN cell in NAS-Bench-201 notation; ``None``: sampled from ``arch_seed``.
        channels, num_cells: CNN width and cell count.
        depth, hidden, dropout: Transformer; any ``None`` is sampled from ``arch_seed``.
        n_train, n_val: optional dataset truncation (``None``: all).
        runs_per_file: shard a seed's runs over several files (``None``: one file).
        snapshot_every: record every k epochs.
        eval_train: full-train-set metrics at each snapshot.

    Example:
        >>> VisionConfig.preset("cpu", "cnn").dataset
        'digits'
        >>> VisionConfig.from_json(VisionConfig(family="transformer").to_json()).family
        'transformer'
    """

    family: str = "cnn"
    dataset: str = "digits"
    runs: int = 20
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.01
    optimizer_kwargs: dict[str, Any] | None = None
    arch_seed: int = 0
    cell: str | None = None
    channels: int = 16
    num_cells: int = 1
    depth: int | None = None
    hidden: int | None = None
    dropout: float | None = None
    n_train: int | None = None
    n_val: int | None = None
    runs_per_file: int | None = None
    snapshot_every: int = 1
    eval_train: bool = True

    def __post_init__(self) -> None:
        if self.family not in ("cnn", "transformer"):
            raise ValueError(f"family must be 'cnn' or 'transformer', got {self.family!r}")
        from ..datasets import DATASETS

        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if not 1 <= self.runs <= _RUN_SEED_STRIDE:
            raise ValueError(f"runs must be in [1, {_RUN_SEED_STRIDE}], got {self.runs}")
        for name in ("epochs", "batch_size", "channels", "num_cells", "snapshot_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.runs_per_file is not None and self.runs_per_file < 1:
            raise ValueError(f"runs_per_file must be >= 1, got {self.runs_per_file}")
        if self.optimizer_kwargs is None:
            self.optimizer_kwargs = {"momentum": 0.9}
        if self.cell is not None:
            Cell.from_string(self.cell)  # validates

    @classmethod
    def preset(cls, name: str, family: str, **overrides: Any) -> "VisionConfig":
        """``cpu`` (digits, small, minutes on a laptop core) or ``paper`` (CIFAR-10, 100 runs, 200 epochs)."""
        if name not in VISION_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(VISION_PRESETS)}")
        base = dict(VISION_PRESETS[name]["common"]) | dict(VISION_PRESETS[name].get(family, {}))
        return cls(family=family, **(base | overrides))


#: Preset name -> common settings and per-family settings.
VISION_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "common": {"dataset": "digits", "runs": 20, "epochs": 15, "batch_size": 64, "lr": 0.01},
        "cnn": {"channels": 8, "lr": 0.05, "runs": 10},
        "transformer": {"depth": 2, "hidden": 64, "dropout": 0.1},
    },
    "paper": {
        "common": {"dataset": "cifar10", "runs": 100, "epochs": 200, "batch_size": 128, "lr": 0.01},
        # arch_seed 10 samples the first cell with 5,338 parameters (two 3x3 convs, no 1x1),
        # the closest this skeleton gets to the paper's 5,418.
        "cnn": {"channels": 16, "arch_seed": 10},
        # 5 runs x 201 snapshots x 924,554 float32 = 3.7 GB per shard file.
        "transformer": {"depth": 4, "hidden": 128, "dropout": 0.1, "runs_per_file": 5},
    },
}


def _resolve_arch(config: VisionConfig) -> dict[str, Any]:
    rng = random.Random(config.arch_seed)
    if config.family == "cnn":
        cell = Cell.from_string(config.cell) if config.cell else sample_cell(rng)
        return {"family": "cnn", "cell": cell.to_string(), "channels": config.channels, "num_cells": config.num_cells}
    sampled = sample_transformer_arch(rng)
    arch = TransformerArch(
        depth=config.depth if config.depth is not None else sampled.depth,
        hidden=config.hidden if config.hidden is not None else sampled.hidden,
        dropout=config.dropout if config.dropout is not None else sampled.dropout,
    )
    return {"family": "transformer", **arch.to_dict(), "heads": 2, "mlp_ratio": 2}


def _accepted_kwargs(optimizer: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop keywords the optimizer does not take (e.g. SGD's momentum for Adam), with a warning."""
    import inspect

    from ..optim import OPTIMIZERS, optimizer_hparams

    optimizer_hparams(optimizer)  # validates the name
    accepted = set(inspect.signature(OPTIMIZERS[optimizer.lower()].__init__).parameters)
    dropped = sorted(set(kwargs) - accepted)
    if dropped:
        log.warning("optimizer %s ignores %s", optimizer, dropped)
    return {k: v for k, v in kwargs.items() if k in accepted}


def build_vision_model_factory(arch: dict[str, Any], input_shape: tuple[int, ...], num_classes: int):
    """A zero-argument factory for the architecture dict written in a file's ``arch`` metadata."""
    if arch["family"] == "cnn":
        cell = Cell.from_string(arch["cell"])
        return lambda: CellCNN(cell, input_shape[0], num_classes, arch["channels"], arch["num_cells"])
    n_in = 1
    for s in input_shape:
        n_in *= s
    return lambda: ImageTransformer(n_in, num_classes, arch["depth"], arch["hidden"], arch["dropout"])


def generate_vision(
    out_dir: str | Path, config: VisionConfig, *, seed: int, optimizer: str = "sgd",
    data: ImageDataset | None = None, data_dir: str | Path | None = None, download: bool = False,
    device: str = "cpu", show_progress: bool = True,
) -> list[Path]:
    """Train ``config.runs`` instances of one fixed architecture and write their trajectories.

    Args:
        out_dir: output folder.
        config: protocol.
        seed: file seed; run ``r`` uses training seed ``1000 * seed + r``.
        optimizer: optimizer name (the paper: SGD).
        data: preloaded dataset (else loaded from ``config.dataset``).
        data_dir, download: for CIFAR-10.
        device: training device.
        show_progress: tqdm bar over runs when tqdm is installed.

    Returns:
        The written paths (several when ``runs_per_file`` shards the runs).
    """
    if data is None:
        data = load_image_dataset(config.dataset, data_dir=data_dir, download=download)
    if config.n_train is not None or config.n_val is not None:
        data = data.subset(config.n_train, config.n_val)
    arch = _resolve_arch(config)
    factory = build_vision_model_factory(arch, data.input_shape, data.num_classes)
    arch["num_params"] = count_params(factory())
    log.info("%s: %s, D=%d, %d runs x %d epochs on %s", config.family, arch, arch["num_params"],
             config.runs, config.epochs, data.name)
    opt_kwargs = _accepted_kwargs(optimizer, config.optimizer_kwargs or {})
    shard = config.runs_per_file or config.runs
    paths: list[Path] = []
    runs: list = []
    start = 0
    for r in progress(range(config.runs), total=config.runs, desc=f"{config.family} seed {seed}", enabled=show_progress):
        runs.append(
            train_classifier(
                factory, data.train_x, data.train_y, data.val_x, data.val_y, optimizer=optimizer, lr=config.lr,
                optimizer_kwargs=opt_kwargs, epochs=config.epochs, batch_size=config.batch_size,
                seed=_RUN_SEED_STRIDE * seed + r, device=device, eval_train=config.eval_train,
                snapshot_every=config.snapshot_every,
            )
        )
        if len(runs) == shard or r == config.runs - 1:
            sharded = shard < config.runs
            name = trajectory_filename(config.family, optimizer, seed, (start, r) if sharded else None)
            first = runs[0]
            paths.append(
                _save(
                    Path(out_dir) / name,
                    torch.stack([x.weights for x in runs]),
                    loss=torch.stack([x.train_loss for x in runs]),
                    val_loss=torch.stack([x.val_loss for x in runs]),
                    extra={
                        "train_acc": torch.stack([x.train_acc for x in runs]),
                        "val_acc": torch.stack([x.val_acc for x in runs]),
                        "run_seed": torch.tensor([x.seed for x in runs], dtype=torch.long),
                    },
                    task=config.family, task_params=config.to_dict() | {"dataset_name": data.name}, arch=arch,
                    optimizer=optimizer, hparams=first.hparams, lr=first.hparams["lr"], init="pytorch_default",
                    seed=seed, steps=list(range(0, config.epochs + 1, config.snapshot_every)), step_unit="epoch",
                    spec=first.spec, runs=[start, r], generator="gfm_accel.lab.training",
                )
            )
            runs, start = [], r + 1
    return paths
