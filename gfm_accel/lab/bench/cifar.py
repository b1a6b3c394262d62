"""``gfm-accel bench cifar``: CNN cells and Transformers (paper Sec. 5.3, Table 2).

Data (App. D, via :func:`gfm_accel.lab.generate.generate.generate_vision`): per family, one fixed
architecture trained ``runs`` times from different initialization seeds with SGD, one weight
snapshot per epoch. Split: the first 60 % of the runs train the forecasters, the rest test
(the paper's 60/40 of 100 runs).

Presets (``--preset``):

* ``cpu`` (default): the data generator's CPU preset on the offline sklearn ``digits``
  images (8x8, 10 classes), with ``--runs`` (default 20) runs per family so that the split
  is 12/8; 15 epochs, so ``m = 15`` and ``n = 4``; the Transformer is shrunk to depth 1,
  hidden 32 (:data:`CPU_TRANSFORMER`, D = 10,954); forecasters get 100 epochs and 3 model
  seeds (0, 1, 2) instead of 1000 and 5. Generation included, it targets <= 20 minutes on
  this machine; at the generator's own Transformer size (D = 71,754) Introspection alone
  needs ~1 s per epoch here.
* ``paper``: CIFAR-10 (``--dataset cifar10 --data-dir DIR``), 100 runs, 200 epochs
  (``m = 199``; our T is 201 with ``w_0`` at epoch 0, and the paper forecasts ``w_199``).
  Hours of GPU time; we have not run it.

Scores, per model, mean (std) over ``--seeds`` (model seeds on the same data; the paper's
"5 seeds", whose stds of 0.000 suggest the same reading):

* ``MSE``: parameter-space MSE of the forecast ``w_m`` on the test runs (mean over runs and
  coordinates, as everywhere in these benchmarks);
* ``f_source``: the cross-entropy of the forecast weights, loaded into the network
  (:func:`gfm_accel.params.assign_params`), on the source task's training set, averaged
  over the test runs. For the CNN, BatchNorm running statistics are not parameters and are
  not forecast: they are recomputed for the forecast weights with
  :func:`gfm_accel.jump.bn.refresh_batchnorm` on the training images (the paper does not
  say what it did). The true ``w_m`` gets the same treatment in the ``true w_m`` row.

A model whose size guard refuses this D is reported as "not run: memory" (the paper omits
DLinear and WNN for Transformers "due to memory issues"); our guards follow
:mod:`gfm_accel.lab.baselines`, so which models are refused can differ from the paper.

Example:
    >>> from gfm_accel.cli import main  # doctest: +SKIP
    >>> main(["bench", "cifar"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import _forecast_eval as fe
from ..._progress import progress
from .common import BenchResult
from .paper import TABLE2, paper_cell

__all__ = ["add_arguments", "run", "DEFAULT_MODELS", "FAMILIES", "source_loss"]

logger = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("cnn", "transformer")
DEFAULT_MODELS: tuple[str, ...] = (*fe.PAPER_BASELINES, *fe.REFERENCES, "gfm")
#: The cpu preset's Transformer, smaller than the data generator's cpu preset (depth 2,
#: hidden 64, D = 71,754) so that every baseline fits the 20-minute budget: D = 10,954 on digits.
CPU_TRANSFORMER = {"depth": 1, "hidden": 32}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="cpu", choices=("cpu", "paper"), help="data preset (default cpu)")
    parser.add_argument("--dataset", default=None, help="override the preset's dataset (cifar10, digits, fake)")
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 folder (torchvision layout) for --preset paper")
    parser.add_argument("--families", default="cnn,transformer", help="cnn,transformer")
    parser.add_argument("--runs", type=int, default=None, help="runs per family (cpu default 20; paper 100)")
    parser.add_argument("--data-epochs", type=int, default=None, help="epochs of the data runs (preset default)")
    parser.add_argument("--traj-dir", type=Path, default=None,
                        help="where trajectory files go / are reused (default: a temporary folder)")
    parser.add_argument("--seeds", default=None, help="model seeds (cpu default 0-2, paper 0-4; --quick 0)")
    parser.add_argument("--models", default=None, help=f"models (default {','.join(DEFAULT_MODELS)})")
    parser.add_argument("--n", type=int, default=4, help="last observed epoch (paper 4)")
    parser.add_argument("--m", type=int, default=None, help="target epoch (default: last; paper 199)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="forecaster epochs (cpu default 100, paper 1000; --quick 50)")
    parser.add_argument("--batch-size", type=int, default=16, help="forecaster batch size (App. A)")
    parser.add_argument("--lr", type=float, default=1e-4, help="forecaster Adam lr (App. A)")


def _generate(family: str, args, traj_dir: Path) -> Path:
    from ..generate.generate import VisionConfig, generate_vision, trajectory_filename

    overrides = {}
    if args.dataset:
        overrides["dataset"] = args.dataset
    if args.runs is not None:
        overrides["runs"] = args.runs
    elif args.preset == "cpu":
        overrides["runs"] = 20
    if args.preset == "cpu" and family == "transformer":
        overrides.update(CPU_TRANSFORMER)
    if args.data_epochs is not None:
        overrides["epochs"] = args.data_epochs
    overrides["runs_per_file"] = None
    cfg = VisionConfig.preset(args.preset, family, **overrides)
    path = traj_dir / trajectory_filename(family, "sgd", 0)
    if path.exists():
        logger.info("reusing %s", path)
        return path
    generate_vision(traj_dir, cfg, seed=0, optimizer="sgd", data_dir=args.data_dir,
                    show_progress=not args.no_progress)
    return path


def _dataset(meta: dict, args):
    from ..datasets import load_image_dataset

    params = meta.get("task_params") or {}
    ds = load_image_dataset(params.get("dataset", "digits"), data_dir=args.data_dir)
    if params.get("n_train") is not None or params.get("n_val") is not None:
        ds = ds.subset(params.get("n_train"), params.get("n_val"))
    return ds


def _deterministic(spec: fe.ModelSpec) -> bool:
    try:
        return getattr(fe.get_baseline_class(spec.base), "default_epochs", 1) == 0
    except fe.NotRun:
        return False


@torch.no_grad()
def source_loss(factory, weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, batch: int = 512) -> torch.Tensor:
    """Cross-entropy on ``(x, y)`` of each weight vector loaded into a fresh network.

    Args:
        factory: zero-argument model constructor (the file's architecture).
        weights: ``(B, D)`` flat weights (canonical :func:`~gfm_accel.params.flatten_params` order).
        x, y: the task's inputs and labels.

    Returns:
        ``(B,)`` mean cross-entropy; ``inf`` where the forward pass is not finite.
    """
    from ...jump.bn import refresh_batchnorm
    from ...params import assign_params

    out = torch.empty(weights.shape[0])
    chunks = [x[i : i + batch] for i in range(0, len(x), batch)]
    for b in range(weights.shape[0]):
        model = factory()
        if not bool(torch.isfinite(weights[b]).all()):
            out[b] = float("inf")
            continue
        assign_params(model, weights[b])
        refresh_batchnorm(model, chunks, num_batches=len(chunks))
        model.eval()
        total = 0.0
        for i in range(0, len(x), batch):
            total += float(F.cross_entropy(model(x[i : i + batch]), y[i : i + batch], reduction="sum"))
        out[b] = total / len(x)
    return out


def run(args: argparse.Namespace) -> BenchResult:
    from ..generate.generate import build_vision_model_factory
    from ...trajectories import load_trajectories

    full_seeds, full_epochs = ((0, 1, 2), 100) if args.preset == "cpu" else ((0, 1, 2, 3, 4), 1000)
    seeds = fe.parse_seed_list(args.seeds, (0,) if args.quick else full_seeds)
    epochs = args.epochs if args.epochs is not None else (50 if args.quick else full_epochs)
    families = fe.parse_list(args.families, FAMILIES)
    for f in families:
        if f not in FAMILIES:
            raise ValueError(f"unknown family {f!r}; choose from {', '.join(FAMILIES)}")
    specs = fe.resolve_models(fe.parse_list(args.models, DEFAULT_MODELS))
    traj_dir = args.traj_dir or Path(tempfile.mkdtemp(prefix="gfm_bench_cifar_"))
    traj_dir.mkdir(parents=True, exist_ok=True)
    cfg = {"preset": args.preset, "dataset": args.dataset, "families": families, "runs": args.runs,
           "data_epochs": args.data_epochs, "seeds": seeds, "epochs": epochs, "n": args.n, "m": args.m,
           "batch_size": args.batch_size, "lr": args.lr, "models": [s.key for s in specs], "split": "first 60% train"}
    results: dict = {"families": {}}
    timings = {}
    for family in families:
        t0 = time.perf_counter()
        path = _generate(family, args, traj_dir)
        timings[f"generate_{family}"] = round(time.perf_counter() - t0, 2)
        tr = load_trajectories(path)
        w = tr.weights.float()
        num, steps, dim = w.shape
        m = args.m if args.m is not None else steps - 1
        if not 0 <= args.n < m < steps:
            raise ValueError(f"need 0 <= n < m < T={steps}; got n={args.n}, m={m}")
        n_train = max(2, round(0.6 * num))
        if num - n_train < 1:
            raise ValueError(f"{family}: {num} runs are too few for a 60/40 split")
        train, test = w[:n_train], w[n_train:]
        meta = tr.metadata
        ds = _dataset(meta, args)
        factory = build_vision_model_factory(meta["arch"], ds.input_shape, ds.num_classes)
        true_f = source_loss(factory, test[:, m], ds.train_x, ds.train_y)
        fam = {"D": dim, "T": steps, "m": m, "n_train": n_train, "n_test": num - n_train, "arch": meta["arch"],
               "dataset": ds.name, "true_final_f_source": fe.summarize([float(true_f.mean())]), "models": {}}
        per = {s.key: {"mse": [], "f_source": []} for s in specs}
        status = {}
        jobs = [(s, sd) for s in specs for sd in seeds]
        for spec, seed in progress(jobs, total=len(jobs), desc=f"cifar {family}", enabled=not args.no_progress):
            if spec.key in status:
                continue
            if not spec.is_gfm and per[spec.key]["mse"] and _deterministic(spec):
                # closed-form models on the same data: every seed gives the same numbers
                for k in ("mse", "f_source"):
                    per[spec.key][k].append(per[spec.key][k][-1])
                continue
            t1 = time.perf_counter()
            try:
                model = fe.fit_model(spec, train, n=args.n, m=m, epochs=epochs, batch_size=args.batch_size,
                                     lr=args.lr, seed=seed, param_spec=tr.spec)
                pred = fe.predict(model, test[:, : args.n + 1], param_spec=tr.spec)
            except fe.NotRun as exc:
                status[spec.key] = str(exc)
                continue
            except (MemoryError, RuntimeError, FloatingPointError) as exc:
                logger.warning("%s on %s failed: %s", spec.key, family, exc)
                status[spec.key] = "not run: memory" if "memory" in str(exc).lower() else f"failed: {type(exc).__name__}"
                continue
            per[spec.key]["mse"].append(fe.mse(pred, test[:, m]))
            per[spec.key]["f_source"].append(float(source_loss(factory, pred, ds.train_x, ds.train_y).mean()))
            timings[f"{family}_{spec.key}"] = round(timings.get(f"{family}_{spec.key}", 0.0) + time.perf_counter() - t1, 2)
        for s in specs:
            if s.key in status:
                fam["models"][s.key] = {"status": status[s.key]}
            else:
                fam["models"][s.key] = {k: fe.summarize(v) for k, v in per[s.key].items()}
        results["families"][family] = fam
    results["timings_s"] = timings

    header = ["Model"]
    for f in families:
        header += [f"{f} MSE ours", f"{f} MSE paper", f"{f} f_source ours", f"{f} f_source paper"]
    rows = []
    for s in specs:
        row = [s.label]
        for f in families:
            c = results["families"][f]["models"][s.key]
            paper = (TABLE2.get(s.key) or {}).get(f) if s.key in TABLE2 else None
            if "status" in c:
                row += [c["status"], paper_cell(paper["mse"]) if paper else ("-" if s.key in TABLE2 else "n/a"),
                        c["status"], paper_cell(paper["f_source"]) if paper else ("-" if s.key in TABLE2 else "n/a")]
            else:
                row += [fe.cell_text(c["mse"]), paper_cell(paper["mse"]) if paper else ("-" if s.key in TABLE2 else "n/a"),
                        fe.cell_text(c["f_source"]),
                        paper_cell(paper["f_source"]) if paper else ("-" if s.key in TABLE2 else "n/a")]
        rows.append(row)
    row = ["true w_m (for reference)"]
    for f in families:
        row += ["0", "", fe.cell_text(results["families"][f]["true_final_f_source"]), ""]
    rows.append(row)
    desc = "; ".join(
        f"{f}: D = {results['families'][f]['D']}, {results['families'][f]['n_train']}/{results['families'][f]['n_test']} "
        f"runs, forecast w_{results['families'][f]['m']} from w_0..w_{args.n} on {results['families'][f]['dataset']}"
        for f in families)
    md = [
        f"Preset `{args.preset}` ({desc}). Mean (std) over model seeds {seeds}; {epochs} forecaster epochs. "
        "f_source = cross-entropy of the forecast weights on the training images (BatchNorm statistics "
        "recomputed). 'paper' = Table 2 on CIFAR-10 with 100 runs x 200 epochs: "
        + ("comparable in kind only, not in value." if args.preset == "cpu" else "same protocol."),
        "",
        fe.markdown_table(header, rows),
        "",
        "Generation and fit times (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()),
    ]
    for f in families:
        mods = results["families"][f]["models"]
        ok = {k: v for k, v in mods.items() if "f_source" in v and v["f_source"]["mean"] is not None}
        if "gfm" in ok:
            better = [k for k, v in ok.items() if k != "gfm" and v["f_source"]["mean"] < ok["gfm"]["f_source"]["mean"]]
            better_mse = [k for k, v in ok.items() if k != "gfm" and v["mse"]["mean"] < ok["gfm"]["mse"]["mean"]]
            md.append(f"- {f}: lower f_source than GFM: {', '.join(better) or 'none'}; "
                      f"lower MSE than GFM: {', '.join(better_mse) or 'none'}.")
    if args.quick:
        md.insert(0, "**Quick run** (one model seed, 50 forecaster epochs).\n")
    return BenchResult(results=results, table_md="\n".join(md), config=cfg, seeds=seeds)
