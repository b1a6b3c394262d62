"""Shared machinery of the paper-reproduction benchmarks: models, data, fitting, scoring.

Every paper benchmark (table1, table3, table4, sensitivity, mlp, cifar) does the same thing:
for each optimizer and seed, fit a set of forecasting models on training trajectories and
score their forecast of ``w_m`` on held-out trajectories. This module holds that loop.

Models are named by a *model key*:

* the paper's baselines ``introspection, dlinear, lfd2, wnn, lstm, transformer`` and the
  simple references ``last, mean, ridge`` come from :mod:`gfm_accel.lab.baselines`;
* the GFM variants (:data:`GFM_VARIANTS`): ``gfm`` (dense field, the paper's Algorithm 1 as written, now the ablation:
  ``condition="none", path="paper"``), ``gfm_prefix`` (dense, the prefix-conditioned field alone, ``skip="none"``),
  ``gfm_default`` (dense with GFMForecaster's defaults: the prefix-conditioned field or a skip alone,
  ``skip="auto"``, chosen on the training pairs),
  ``gfm_from_last`` (dense, the path from ``w_n``), ``gfm_coord`` (the coordinate,
  model-agnostic variant).

Choices (documented in ``docs/benchmarks.md`` too):

* **Test MSE** of one (model, optimizer, seed) is ``mean((w_hat_m - w_m)^2)`` over the
  test trajectories *and* the D coordinates. The paper does not define its reduction;
  with D = 2 a sum over D would double every number, and Table 1's Transformer/GFM
  values (~0.02) match the per-coordinate mean of our own runs' scale.
* **Cells** are ``mean (std)`` over seeds with the *sample* std (``ddof = 1``; 0 for one
  seed). The paper says "mean (std)" without saying which.
* **Split**: per seed and optimizer, the first ``n_train`` (30) trajectories of the file
  train and the next ``n_test`` (20) test (Sec. 5.1's 30/20; App. A's "60/40" is the
  same ratio).
* **Training protocol** (App. A): Adam, lr 1e-4, batch 16, MSE on ``w_m`` for every
  trained baseline, the GFM loss for GFM. Epochs are a benchmark option (App. E: 1000).
* A model that cannot run at this D (its size guard) is reported as ``not run: memory``;
  one whose module is not installed as ``not available``; a fit that diverges as
  ``failed: <reason>``. The table prints those words rather than a blank.

Example:
    >>> fmt_cell(0.0213, 0.0131), fmt_cell(2.427, 0.526)
    ('.021 (.013)', '2.427 (.526)')
    >>> summarize([1.0, 2.0, 3.0])["mean"]
    2.0
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

import torch

from ..._progress import progress
from .paper import PAPER_MODEL_NAMES

__all__ = [
    "PAPER_BASELINES",
    "REFERENCES",
    "GFM_VARIANTS",
    "DEFAULT_TABLE1_MODELS",
    "MODEL_LABELS",
    "NotRun",
    "ModelSpec",
    "resolve_models",
    "get_baseline_class",
    "fit_model",
    "predict",
    "mse",
    "summarize",
    "fmt_cell",
    "linreg_weights",
    "run_linreg_grid",
    "LinregGrid",
    "markdown_table",
    "cell_text",
    "best_keys",
    "verdicts",
    "add_linreg_arguments",
    "parse_list",
    "parse_seed_list",
    "linreg_settings",
]

logger = logging.getLogger(__name__)

#: The six baselines of Table 1, in the paper's row order.
PAPER_BASELINES: tuple[str, ...] = ("introspection", "dlinear", "lfd2", "wnn", "lstm", "transformer")
#: The simple references every reviewer asks for.
REFERENCES: tuple[str, ...] = ("last", "mean", "ridge")
#: GFM model key -> GFMForecaster keyword arguments.
GFM_VARIANTS: dict[str, dict[str, Any]] = {
    "gfm": {"variant": "dense", "condition": "none", "path": "paper"},
    "gfm_prefix": {"variant": "dense", "condition": "prefix", "path": "paper", "skip": "none"},
    "gfm_default": {"variant": "dense"},
    "gfm_from_last": {"variant": "dense", "condition": "none", "path": "from_last"},
    "gfm_coord": {"variant": "coordinate"},
}
DEFAULT_TABLE1_MODELS: tuple[str, ...] = (*PAPER_BASELINES, *REFERENCES, *GFM_VARIANTS)

MODEL_LABELS: dict[str, str] = {
    **{key: label for key, label in PAPER_MODEL_NAMES.items() if key != "gfm"},  # the paper's baselines
    "last": "last value w_n (ref.)",
    "mean": "train mean of w_m (ref.)",
    "ridge": "ridge on prefix (ref.)",
    "gfm": "GFM (dense, Algorithm 1 as written: the ablation)",
    "gfm_prefix": "GFM (dense, prefix-conditioned field alone)",
    "gfm_default": "GFM (dense, the default: skip='auto')",
    "gfm_from_last": "GFM (dense, from_last path)",
    "gfm_coord": "GFM (coordinate variant)",
}


class NotRun(Exception):
    """A model that cannot be run here; ``str(exc)`` is the table cell (e.g. ``not run: memory``)."""


@dataclass(frozen=True)
class ModelSpec:
    """One row of a benchmark table.

    Attributes:
        key: unique row key (e.g. ``gfm`` or ``gfm_b0.1_g1_z100``).
        base: a baseline name or a key of :data:`GFM_VARIANTS`.
        options: extra keyword arguments (GFMForecaster options such as beta, or baseline
            constructor arguments).

    Example:
        >>> ModelSpec("gfm", "gfm").is_gfm
        True
    """

    key: str
    base: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_gfm(self) -> bool:
        return self.base in GFM_VARIANTS

    @property
    def label(self) -> str:
        return MODEL_LABELS.get(self.key, self.key)


def resolve_models(names: Iterable[str]) -> list[ModelSpec]:
    """Model keys -> specs; raises ValueError naming an unknown key."""
    out = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in GFM_VARIANTS and name not in PAPER_BASELINES and name not in REFERENCES:
            try:
                get_baseline_class(name)
            except NotRun:
                known = ", ".join([*PAPER_BASELINES, *REFERENCES, *GFM_VARIANTS])
                raise ValueError(f"unknown model {name!r}; known models: {known}") from None
        out.append(ModelSpec(name, name))
    if not out:
        raise ValueError("no model given")
    return out


def get_baseline_class(name: str) -> type:
    """The baseline class registered as ``name`` (``gfm_accel.lab.baselines``).

    Raises:
        NotRun: ``not available`` when the baselines package does not provide it.
    """
    try:
        mod = importlib.import_module("gfm_accel.lab.baselines")
        registry = getattr(mod, "BASELINES", None)
        if registry and name in registry:
            return registry[name]
    except ImportError:
        pass
    # Fall back to scanning the modules (the registry may not be exported yet).
    for module in ("reference", "neural", "wnn"):
        try:
            m = importlib.import_module(f"gfm_accel.lab.baselines.{module}")
        except ImportError:
            continue
        for obj in vars(m).values():
            if isinstance(obj, type) and getattr(obj, "name", None) == name and hasattr(obj, "_fit"):
                return obj
    raise NotRun("not available")


def fit_model(
    spec: ModelSpec,
    train: torch.Tensor,
    *,
    n: int,
    m: int,
    epochs: int,
    batch_size: int = 16,
    lr: float = 1e-4,
    seed: int = 0,
    param_spec=None,
):
    """Fit one model on ``train`` ``(N, T, D)`` to map ``w_0..w_n`` to ``w_m``.

    Returns:
        The fitted object: a ``GFMForecaster`` or a baseline.

    Raises:
        NotRun: the model cannot run here (``not run: memory`` / ``not available``).
    """
    dim = int(train.shape[-1])
    if spec.is_gfm:
        from ...forecast.forecaster import GFMForecaster

        kwargs = {**GFM_VARIANTS[spec.base], **spec.options}
        variant = kwargs.pop("variant")
        try:
            model = GFMForecaster(variant, n=n, m=m, **kwargs)
        except ValueError as exc:
            if "not available" in str(exc):
                raise NotRun("not available") from exc
            raise
        return model.fit(train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    cls = get_baseline_class(spec.base)
    if hasattr(cls, "supports") and not cls.supports(dim, n):
        raise NotRun("not run: memory")
    model = cls(**spec.options)
    trained = getattr(cls, "default_epochs", 0) > 0
    model.fit(train, n, m, epochs=epochs if trained else 0, batch_size=batch_size, lr=lr, seed=seed,
              spec=param_spec)
    return model


def predict(model, prefix: torch.Tensor, *, param_spec=None) -> torch.Tensor:
    """``(B, n+1, D) -> (B, D)`` for a fitted GFM forecaster or baseline."""
    if hasattr(model, "predict"):
        return model.predict(prefix, spec=param_spec)
    return model.forecast(prefix, spec=param_spec)


def mse(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean squared error over trajectories and coordinates (``(B, D)`` each)."""
    if pred.shape != true.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(true.shape)} differ in shape")
    return float(((pred.double() - true.double()) ** 2).mean())


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "values"}`` with the sample std (ddof 1; 0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"mean": None, "std": None, "values": []}
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "values": vals}


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if 0 < abs(x) < 5e-4:
        return f"{x:.1e}"
    s = f"{x:.3f}"
    if s.startswith("0."):
        s = s[1:]
    return s


def fmt_cell(mean: float | None, std: float | None) -> str:
    """The paper's cell format ``.021 (.013)``: 3 decimals, leading zero dropped.

    Numbers below 5e-4 (which would print as ``.000``) are printed as ``1.2e-05``; a std
    below 1e-6 of the mean (round-off between identical seeds) prints as ``.000``.
    """
    if mean is None:
        return "-"
    std = std or 0.0
    if abs(std) < 1e-6 * abs(mean):  # float round-off between identical seeds
        std = 0.0
    return f"{_num(mean)} ({_num(std)})"


@lru_cache(maxsize=64)
def _linreg_cached(optimizer: str, seed: int, init: str, n_traj: int, steps: int) -> torch.Tensor:
    from ..generate.linreg import RegressionConfig, sample_regression_tasks, train_linreg_batched

    cfg = RegressionConfig(n_trajectories=n_traj, steps=steps, init=init)
    return train_linreg_batched(sample_regression_tasks(cfg, seed=seed), optimizer).weights


def linreg_weights(optimizer: str, seed: int, *, init: str = "normal", n_traj: int = 50, steps: int = 199) -> torch.Tensor:
    """The linreg trajectories of one file (``(n_traj, steps + 1, 2)``), generated in memory.

    Same data as ``gfm-accel generate linreg`` writes (``linreg_<opt>_seed<k>``): App. B's
    protocol via :mod:`gfm_accel.lab.generate.linreg`; cached per process.
    """
    return _linreg_cached(optimizer, int(seed), init, int(n_traj), int(steps)).clone()


@dataclass
class LinregGrid:
    """Results of :func:`run_linreg_grid`.

    Attributes:
        cells: model key -> optimizer -> ``summarize`` dict, or ``{"status": "not run: ..."}``.
        fit_seconds: model key -> total seconds spent fitting it.
        fitted: ``(model key, optimizer, seed) -> fitted model`` for the kept fits.
        data: ``(optimizer, seed) -> (N, T, D)`` weights of the kept fits.
    """

    cells: dict[str, dict[str, dict[str, Any]]]
    fit_seconds: dict[str, float]
    fitted: dict[tuple[str, str, int], Any] = field(default_factory=dict)
    data: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)


def run_linreg_grid(
    models: Sequence[ModelSpec],
    optimizers: Sequence[str],
    seeds: Sequence[int],
    *,
    n: int = 4,
    m: int = 199,
    init: str = "normal",
    epochs: int = 1000,
    baseline_epochs: int | None = None,
    batch_size: int = 16,
    lr: float = 1e-4,
    n_train: int = 30,
    n_test: int = 20,
    show_progress: bool = True,
    keep: Callable[[str, str, int], bool] | None = None,
    desc: str = "fits",
) -> LinregGrid:
    """Fit and score every (model, optimizer, seed) on the linreg data.

    Args:
        models: rows.
        optimizers: data optimizers (columns).
        seeds: data seeds (also the model seeds).
        n, m: prefix ``w_0..w_n`` and target index.
        init: data initialization (Table 3).
        epochs: GFM training epochs; ``baseline_epochs`` for the trained baselines
            (defaults to ``epochs``).
        batch_size, lr: App. A protocol.
        n_train, n_test: split of each file.
        keep: ``(key, optimizer, seed) -> bool``; kept fits are returned (figures).

    Returns:
        :class:`LinregGrid`.
    """
    baseline_epochs = epochs if baseline_epochs is None else baseline_epochs
    per: dict[str, dict[str, list[float]]] = {s.key: {o: [] for o in optimizers} for s in models}
    status: dict[str, dict[str, str]] = {s.key: {} for s in models}
    fit_seconds = {s.key: 0.0 for s in models}
    grid = LinregGrid(cells={}, fit_seconds=fit_seconds)
    jobs = [(o, sd, s) for o in optimizers for sd in seeds for s in models]
    for opt, seed, spec in progress(jobs, total=len(jobs), desc=desc, enabled=show_progress):
        if opt in status[spec.key]:
            continue  # already known not to run
        w = linreg_weights(opt, seed, init=init, n_traj=n_train + n_test, steps=max(m, 1))
        train, test = w[:n_train], w[n_train : n_train + n_test]
        t0 = time.perf_counter()
        try:
            model = fit_model(spec, train, n=n, m=m, epochs=epochs if spec.is_gfm else baseline_epochs,
                              batch_size=batch_size, lr=lr, seed=seed)
            pred = predict(model, test[:, : n + 1])
        except NotRun as exc:
            status[spec.key][opt] = str(exc)
            continue
        except (FloatingPointError, RuntimeError) as exc:
            logger.warning("%s on %s seed %d failed: %s", spec.key, opt, seed, exc)
            status[spec.key][opt] = f"failed: {type(exc).__name__}"
            continue
        fit_seconds[spec.key] += time.perf_counter() - t0
        per[spec.key][opt].append(mse(pred, test[:, m]))
        if keep is not None and keep(spec.key, opt, seed):
            grid.fitted[(spec.key, opt, seed)] = model
            grid.data[(opt, seed)] = w
    for spec in models:
        grid.cells[spec.key] = {}
        for opt in optimizers:
            if opt in status[spec.key]:
                grid.cells[spec.key][opt] = {"status": status[spec.key][opt]}
            else:
                grid.cells[spec.key][opt] = summarize(per[spec.key][opt])
    grid.fit_seconds = {k: round(v, 2) for k, v in fit_seconds.items()}
    return grid


def cell_text(cell: dict[str, Any] | None) -> str:
    """Table text of one result cell (``mean (std)`` or its status words)."""
    if cell is None:
        return "-"
    if "status" in cell:
        return cell["status"]
    return fmt_cell(cell.get("mean"), cell.get("std"))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def best_keys(cells: dict[str, dict[str, dict[str, Any]]], column: str) -> tuple[str | None, str | None]:
    """Keys of the lowest and second-lowest mean in one column (ignoring not-run cells)."""
    ranked = sorted(
        (c[column]["mean"], k) for k, c in cells.items()
        if column in c and c[column].get("mean") is not None and math.isfinite(c[column]["mean"])
    )
    first = ranked[0][1] if ranked else None
    second = ranked[1][1] if len(ranked) > 1 else None
    return first, second


def verdicts(cells: dict[str, dict[str, dict[str, Any]]], optimizers: Sequence[str], gfm_key: str = "gfm",
             references: Sequence[str] = REFERENCES) -> list[str]:
    """Plain sentences: where a simple reference (or any model) beats GFM, per optimizer."""
    out = []
    if gfm_key not in cells:
        return out
    for opt in optimizers:
        g = cells[gfm_key].get(opt, {})
        if g.get("mean") is None:
            continue
        better = [k for k, c in cells.items() if k != gfm_key and c.get(opt, {}).get("mean") is not None
                  and c[opt]["mean"] < g["mean"]]
        refs = [k for k in better if k in references]
        others = [k for k in better if k not in references]
        parts = []
        if refs:
            parts.append("simple reference(s) " + ", ".join(f"`{k}`" for k in refs) + " beat GFM")
        if others:
            parts.append("also better than GFM: " + ", ".join(f"`{k}`" for k in others))
        if not parts:
            parts.append("GFM (paper default) has the lowest MSE")
        out.append(f"- {opt}: " + "; ".join(parts) + ".")
    return out


def add_linreg_arguments(parser, *, models: Sequence[str] | None, epochs: int = 1000) -> None:
    """Options shared by the linreg benchmarks (table1, table3, table4, sensitivity)."""
    parser.add_argument("--seeds", default=None, help="data/model seeds, e.g. 0-4 or 0,1 (default 0-4; --quick 0,1)")
    parser.add_argument("--optimizers", default="sgd,adam,adamw,rmsprop,adagrad", help="comma-separated optimizers")
    if models is not None:
        parser.add_argument("--models", default=None,
                            help=f"comma-separated model keys (default {','.join(models)})")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs of GFM and the trained baselines (default {epochs}; --quick 200)")
    parser.add_argument("--n-train", type=int, default=30, help="training trajectories per file (paper 30)")
    parser.add_argument("--n-test", type=int, default=20, help="test trajectories per file (paper 20)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (App. A: 16 or 32)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (App. A: 1e-4)")


def parse_list(spec: str | None, default: Sequence[str]) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; None -> ``default``."""
    if spec is None:
        return list(default)
    out = [s.strip() for s in spec.split(",") if s.strip()]
    if not out:
        raise ValueError("empty list")
    return out


def parse_seed_list(spec: str | None, default: Sequence[int]) -> list[int]:
    """``"0-4"`` / ``"0,1"`` -> ints; None -> ``default``."""
    if spec is None:
        return list(default)
    from ..generate._util import parse_seeds

    return parse_seeds(spec)


def linreg_settings(args, *, quick_epochs: int = 200, full_epochs: int = 1000,
                    quick_seeds: Sequence[int] = (0, 1), full_seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> dict[str, Any]:
    """Resolve the shared options (quick/full defaults) into a JSON-able dict."""
    from ..optim import parse_optimizers

    seeds = parse_seed_list(args.seeds, quick_seeds if args.quick else full_seeds)
    epochs = args.epochs if args.epochs is not None else (quick_epochs if args.quick else full_epochs)
    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    if args.n_train < 2 or args.n_test < 1:
        raise ValueError(f"need --n-train >= 2 and --n-test >= 1, got {args.n_train} and {args.n_test}")
    return {
        "seeds": seeds,
        "optimizers": parse_optimizers(args.optimizers),
        "epochs": int(epochs),
        "n_train": int(args.n_train),
        "n_test": int(args.n_test),
        "batch_size": int(args.batch_size),
        "lr": float(args.lr),
    }
