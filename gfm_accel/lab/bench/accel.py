"""``gfm-accel bench accel``: do live runs reach their target in fewer epochs with GFMJump?

For every held-out task (:mod:`gfm_accel.lab.tasks.accel`, none of them in the
forecaster's zoo; ``--tasks validation`` runs the three tasks added after the main schedule
was chosen, to check it on tasks it was not tuned on) and every seed, one plain run and one
run per jump forecaster are trained with the same seed, data order and budget B. The jump
machinery (schedule, guard, back-off) is identical for every forecaster, so the table
credits only what the forecaster adds:

* ``gfm``: the shipped coordinate GFM forecaster (:func:`gfm_accel.pretrained_forecaster`),
  or ``--forecaster PATH``;
* ``linear``: linear extrapolation of the last two snapshots;
* ``linefit``: a least-squares line through the whole window, extended to ``m``
  (training-free, :class:`~gfm_accel.forecast.simple.LineFitForecaster`);
* ``ridge_coord``: the least-squares reference (per-coordinate ridge);
* ``wnn``: the WNN-style per-coordinate baseline.

``ridge_coord`` and ``wnn`` are fitted for the schedule's ``(n, m)`` on windows of
*source* trajectories, starting at every epoch (so the fitted map is not only the one
of the run's start): by default (``--source auto``) the zoo's trajectory files in
``runs/zoo/`` (the shipped forecaster's own training data, merged along D), or, without
a zoo on disk, trajectories generated here from a zoo-like task (an MLP on sklearn
digits, :data:`~gfm_accel.lab.tasks.accel.SOURCE_TASK`) with Adam, AdamW, SGD+momentum,
SGD and RMSprop. The table says which.

Metrics (per pair, then mean and std over seeds):

* targets from the plain run: its best validation loss, and its validation loss after
  B/4 and B/2 epochs;
* epochs (and wall time, jump overhead included) each run needs to reach each target;
  ``speedup = plain epochs / jump epochs``. A jump run that never reaches a target
  within B is "not reached": it is counted (the ``reached`` column), and its speedup
  enters the mean as the upper bound ``plain epochs / B`` (it would need more than B);
* validation loss and accuracy at equal epochs (B/4, B/2 and B);
* the same speedup on the *training* loss (to the plain run's lowest epoch-mean training
  loss): it separates faster optimization from a change in generalization;
* the guard's accept rate and the jump overhead (share of wall time).

``--probe`` instead runs one seed of each task under several jump schedules (``far`` and
``periodic`` with several ``n, K, P``) and tabulates them, which is how the default
schedule was chosen (``docs/acceleration.md``).

Example:
    >>> expand_task_names(["heldout"])
    ['mlp_mnist1d', 'cnn1d_mnist1d', 'vit_digits']
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..._progress import progress
from ..datasets import load_split
from ..forecasters import FORECASTERS, forecaster_sha256, make_forecaster
from ...jump import target_m
from ..jumps import jump_config, parse_schedule
from ..tasks.accel import ALL_TASKS, SOURCE_TASK, TASKS, TEST_TASKS, VALIDATION_TASKS, AccelTask, train_run
from ..tasks.fresh import FRESH_TASKS
from ..training import RunLog, epochs_to_reach
from .common import BenchResult

__all__ = [
    "probe_task",
    "probe_line",
    "DEFAULT_SCHEDULE",
    "PROBE_SCHEDULES",
    "METHODS",
    "pair_metrics",
    "source_trajectories",
    "load_source",
    "add_arguments",
    "output_name",
    "run",
]

logger = logging.getLogger(__name__)

#: The schedules of the benchmark's main table (see docs/acceleration.md): snapshots every 5
#: optimizer steps, K = 10 snapshots ahead every 5, a loose guard (tolerance 0.3) and the
#: optimizer state kept, which the probes of 2026-11-29 found best for every forecaster; and
#: the issue's reference configuration (K = 10 epochs ahead every 5 epochs, tolerance 0.01).
DEFAULT_SCHEDULE = "periodic:n=4,K=10,P=5,steps=5,tol=0.3,opt=keep;periodic:n=4,K=10,P=5"
#: Schedules compared by ``--probe``.
PROBE_SCHEDULES = (
    "far:n=4",
    "periodic:n=4,K=4,P=4",
    "periodic:n=4,K=10,P=5",
    "periodic:n=4,K=20,P=10",
)
METHODS = FORECASTERS


# --------------------------------------------------------------------------- metrics
def pair_metrics(plain: RunLog, jumped: RunLog) -> dict[str, Any]:
    """Compare one jump run to its plain twin (same seed and budget).

    Returns:
        ``{"targets": {"best"|"quarter"|"half"|"train": {...}}, "equal_epochs": {...}, "jumps": {...}}``;
        ``"train"`` is the plain run's lowest epoch-mean *training* loss, reached on the training
        loss curves (optimization speed, apart from generalization); the others are validation
        losses reached on the validation curves. Each target entry holds ``target`` (loss),
        ``plain_epochs``, ``jump_epochs`` (None = not reached), ``plain_seconds``,
        ``jump_seconds``, ``speedup`` (None when not reached) and ``speedup_bound``
        (``plain_epochs / B`` when not reached).
    """
    budget = len(plain.val_loss) - 1
    if len(jumped.val_loss) - 1 != budget:
        raise ValueError(f"runs have different budgets: {budget} and {len(jumped.val_loss) - 1} epochs")
    targets = {
        "best": min(plain.val_loss[1:]),
        "quarter": plain.val_loss[max(1, budget // 4)],
        "half": plain.val_loss[max(1, budget // 2)],
    }
    curves = {key: (plain.val_loss, jumped.val_loss) for key in targets}
    finite_train = [v for v in plain.train_loss[1:] if math.isfinite(v)]
    if finite_train:
        targets["train"] = min(finite_train)
        curves["train"] = (plain.train_loss, jumped.train_loss)
    out: dict[str, Any] = {"targets": {}, "equal_epochs": {}, "jumps": {}}
    for key, target in targets.items():
        pe = epochs_to_reach(curves[key][0], target)
        je = epochs_to_reach(curves[key][1], target)
        out["targets"][key] = {
            "target": target,
            "plain_epochs": pe,
            "jump_epochs": je,
            "plain_seconds": plain.wall[pe] if pe is not None else None,
            "jump_seconds": jumped.wall[je] if je is not None else None,
            "speedup": (pe / je if je else (math.inf if je == 0 else None)) if pe is not None else None,
            "speedup_bound": (pe / budget) if je is None and pe is not None else None,
        }
    for key, e in (("quarter", max(1, budget // 4)), ("half", max(1, budget // 2)), ("end", budget)):
        out["equal_epochs"][key] = {
            "epoch": e,
            "plain_loss": plain.val_loss[e],
            "jump_loss": jumped.val_loss[e],
            "plain_acc": plain.val_acc[e],
            "jump_acc": jumped.val_acc[e],
        }
    tried = len(jumped.jumps)
    accepted = sum(1 for r in jumped.jumps if r.get("accepted"))
    out["jumps"] = {
        "attempts": tried,
        "accepted": accepted,
        "accept_rate": accepted / tried if tried else None,
        "overhead_seconds": jumped.jump_seconds,
        "overhead_share": jumped.jump_seconds / jumped.wall[-1] if jumped.wall[-1] > 0 else 0.0,
        "alphas": [r.get("alpha") for r in jumped.jumps if r.get("accepted")],
    }
    return out


# --------------------------------------------------------------------------- forecasters
def probe_task(task: AccelTask, seeds: Sequence[int], make_jump: Callable[[], Any], *, method: str = "jump",
               plain: dict[tuple[str, int], RunLog] | None = None) -> dict[str, list[float]]:
    """Run one task's pairs for a probe: per seed, the speedups and the val-loss change at B.

    Args:
        task: the task.
        seeds: pair seeds.
        make_jump: returns a fresh, unattached ``GFMJump`` for each seed.
        method: label of the jump runs.
        plain: cache of plain runs by ``(task name, seed)``, filled as needed (shared across calls).

    Returns:
        Lists over seeds: ``best``, ``quarter``, ``half`` (speedups; a target not reached counts
        as its bound plain epochs / B), ``dloss`` (jump - plain val loss at B) and ``accept``.
    """
    plain = {} if plain is None else plain
    out: dict[str, list[float]] = {k: [] for k in ("best", "quarter", "half", "dloss", "accept")}
    for seed in seeds:
        if (task.name, seed) not in plain:
            plain[task.name, seed] = train_run(task, seed)
        m = pair_metrics(plain[task.name, seed], train_run(task, seed, jump=make_jump(), method=method))
        for key in ("best", "quarter", "half"):
            t = m["targets"][key]
            out[key].append(t["speedup"] if t["speedup"] is not None else t["speedup_bound"])
        end = m["equal_epochs"]["end"]
        out["dloss"].append(end["jump_loss"] - end["plain_loss"])
        out["accept"].append(m["jumps"]["accept_rate"] or 0.0)
    return out


def probe_line(name: str, res: dict[str, list[float]], width: int = 14) -> str:
    """One printed line of :func:`probe_task`'s result (means over seeds, per-seed speedups to best)."""
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return (f"  {name:{width}s} best {mean(res['best']):.2f} [{' '.join(f'{x:.2f}' for x in res['best'])}] "
            f"B/4 {mean(res['quarter']):.2f} B/2 {mean(res['half']):.2f} dloss@B {mean(res['dloss']):+.3f} "
            f"accept {mean(res['accept']):.2f}")


def source_trajectories(epochs: int, seeds: Sequence[int] = (0, 1), *, limit: int | None = None,
                        optimizers: Sequence[str] = ("adam", "adamw", "sgdm", "sgd", "rmsprop")):
    """Train the zoo-like source task with several optimizers; returns ``(weights (N, T, D), spec)``."""
    from ...params import ParamSpec, flatten_params

    lrs = {"adam": 1e-3, "adamw": 1e-3, "sgdm": 0.02, "sgd": 0.1, "rmsprop": 5e-4}
    split = load_split(SOURCE_TASK.dataset, limit)
    runs, spec = [], None
    for opt in optimizers:
        for seed in seeds:
            task = AccelTask(f"src_{opt}", SOURCE_TASK.dataset, SOURCE_TASK.arch, opt, lrs[opt], epochs,
                             SOURCE_TASK.batch_size, weight_decay=0.01 if opt == "adamw" else 0.0)
            snaps: list[torch.Tensor] = []

            def record(model, _epoch, snaps=snaps):
                nonlocal spec
                spec = spec or ParamSpec.from_model(model)
                snaps.append(flatten_params(model, spec).float().cpu())

            train_run(task, 100 + seed, split=split, record_fn=record, method="source")
            runs.append(torch.stack(snaps))
    return torch.stack(runs), spec


def load_source(paths: Sequence[str | Path]) -> tuple[torch.Tensor, Any, str]:
    """Trajectory files (e.g. the zoo's) merged along D for the per-coordinate baselines.

    Per-coordinate models treat every scalar parameter alike, so files of different
    models can be concatenated along D (trajectory ``i`` of each file side by side, the
    layouts merged with ``<file>/`` name prefixes); N and T are cut to the smallest file's.

    Returns:
        ``(weights (N, T, sum D), merged ParamSpec, description)``.
    """
    from ...params import ParamEntry, ParamSpec
    from ...trajectories import load_trajectories

    if not paths:
        raise ValueError("no source trajectory files given")
    loaded = [(Path(p), load_trajectories(p)) for p in paths]
    n = min(tr.weights.shape[0] for _, tr in loaded)
    t = min(tr.weights.shape[1] for _, tr in loaded)
    entries, offset, parts = [], 0, []
    for path, tr in loaded:
        spec = tr.spec or ParamSpec.flat(tr.weights.shape[-1])
        for e in spec.entries:
            entries.append(ParamEntry(f"{path.stem}/{e.name}", e.shape, e.dtype, offset + e.offset, e.numel, e.kind))
        offset += spec.numel
        parts.append(tr.weights[:n, :t])
    weights = torch.cat(parts, dim=-1)
    desc = f"{len(loaded)} files ({', '.join(p.name for p, _ in loaded)}), merged weights {tuple(weights.shape)}"
    return weights, ParamSpec(tuple(entries)), desc


# --------------------------------------------------------------------------- the benchmark
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=("fixed", "tuned"), default="fixed",
                        help="'fixed' (the default): plain vs jump at each task's default lr, in epochs; 'tuned' "
                             "(issue 14): time to a tuned baseline's target, every competitor "
                             "(docs/acceleration_tuned.md)")
    parser.add_argument("--workers", type=int, default=2, help="tuned: single-threaded worker processes (default 2)")
    parser.add_argument("--journal", type=Path, default=None,
                        help="tuned: append each finished run to this JSON-lines file and reuse the runs already "
                             "in it (a killed run resumes; the same plan only)")
    parser.add_argument("--journal-source", type=Path, default=None,
                        help="tuned: start --journal with this journal's runs of the shared tasks (it must be the "
                             "journal of the default task set with the same other options); the runs are reused "
                             "only where a task's workload, seeds and grids are the same")
    parser.add_argument("--variants", type=Path, default=None,
                        help="tuned: JSON file {NAME: {forecaster: shipped|linefit|PATH, config: {JumpConfig "
                             "overrides}}}: extra jump methods, at their recipe (issue 15)")
    parser.add_argument("--steps", type=int, default=None, help="tuned: override every task's budget in optimizer steps")
    parser.add_argument("--no-method-grid", action="store_true",
                        help="tuned: competitors at their recommended settings only (no tuned rows)")
    parser.add_argument("--tasks", default=None,
                        help=f"comma list of task names ({sorted(ALL_TASKS)}) or task sets: 'heldout' (the main "
                             f"held-out tasks {sorted(TASKS)}, the default; quick: mlp_mnist1d), 'validation' "
                             f"({sorted(VALIDATION_TASKS)}: added after the main schedule was chosen), 'test' "
                             f"({sorted(TEST_TASKS)}: added after every probe, to judge its picks)")
    parser.add_argument("--seeds", default=None, help="comma list of seeds (default 0,1,2; quick: 0)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {METHODS}")
    parser.add_argument("--schedule", default=DEFAULT_SCHEDULE,
                        help="jump schedule(s), ';'-separated, e.g. 'periodic:n=4,K=10,P=5' or 'far:n=4,alpha=0.5,tol=0'")
    parser.add_argument("--epochs", type=int, default=None, help="override every task's budget B")
    parser.add_argument("--limit", type=int, default=None, help="keep at most this many training samples")
    parser.add_argument("--forecaster", default=None, help="GFM forecaster file for 'gfm' (default: the shipped one)")
    parser.add_argument("--source", default="auto",
                        help="what ridge_coord/wnn are fitted on: 'auto' (the zoo files in runs/zoo/ if present, "
                             "else 'generate'), 'generate' (train the zoo-like source here), or files/folders")
    parser.add_argument("--source-seeds", type=int, default=2, help="seeds per optimizer of the generated source")
    parser.add_argument("--wnn-epochs", type=int, default=None, help="training epochs of the wnn baseline (default 200)")
    parser.add_argument("--probe", action="store_true", help="compare jump schedules (far/periodic) instead")
    parser.add_argument("--probe-schedules", default=";".join(PROBE_SCHEDULES), help="';'-separated schedules for --probe")


TASK_SETS = {"heldout": TASKS, "validation": VALIDATION_TASKS, "test": TEST_TASKS, "fresh": FRESH_TASKS}


def expand_task_names(names: Sequence[str]) -> list[str]:
    """Task names with the set names (``heldout``, ``validation``, ``test``) expanded, in order, without repeats.

    Example:
        >>> expand_task_names(["validation", "gru_mnist1d"])
        ['gru_mnist1d', 'tfm_mnist1d', 'cnn1d_digits']
    """
    out: list[str] = []
    for name in names:
        for t in TASK_SETS[name] if name in TASK_SETS else [name]:
            if t not in ALL_TASKS:
                raise ValueError(f"unknown task {t!r}; choose from {sorted(ALL_TASKS)} or a set {sorted(TASK_SETS)}")
            if t not in out:
                out.append(t)
    return out


def _source_files(source: str | None) -> list[Path]:
    """``--source``: "auto" (the zoo in runs/zoo if present, else generate), "generate", or files/folders."""
    if source in (None, "generate"):
        return []
    if source == "auto":
        return sorted(Path("runs/zoo").glob("*.safetensors"))
    files: list[Path] = []
    for item in _csv(source):
        p = Path(item)
        files += sorted(p.glob("*.safetensors")) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"--source {source!r} holds no trajectory files")
    return files


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _fmt(mean: float, std: float, digits: int = 2) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


@dataclass
class _Plan:
    tasks: list[AccelTask]
    seeds: list[int]
    methods: list[str]
    schedules: list[str]


def _plan(args: argparse.Namespace) -> _Plan:
    names = expand_task_names(_csv(args.tasks)) or (["mlp_mnist1d"] if args.quick else list(TASKS))
    tasks = [ALL_TASKS[t].with_epochs(args.epochs) if args.epochs else ALL_TASKS[t] for t in names]
    try:
        seeds = [int(s) for s in _csv(args.seeds)] or ([0] if args.quick else [0, 1, 2])
    except ValueError as exc:
        raise ValueError(f"--seeds must be a comma list of integers, got {args.seeds!r}") from exc
    methods = _csv(args.methods)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {METHODS}")
    schedules = [s.strip() for s in (args.probe_schedules if args.probe else args.schedule).split(";") if s.strip()]
    for s in schedules:
        parse_schedule(s)
    return _Plan(tasks, seeds, methods, schedules)


def output_name(args: argparse.Namespace) -> str:
    """The results folder's name: ``accel`` (fixed protocol) or ``accel_tuned``."""
    return "accel_tuned" if getattr(args, "protocol", "fixed") == "tuned" else "accel"


def run(args: argparse.Namespace) -> BenchResult:
    from ...jump import GFMJump

    if getattr(args, "protocol", "fixed") == "tuned":
        from .accel_tuned import run_tuned

        return run_tuned(args)

    torch.set_num_threads(1)
    plan = _plan(args)
    budget = max(t.epochs for t in plan.tasks)
    ms = [target_m(jump_config(s), budget) for s in plan.schedules]
    needs_source = any(m in ("ridge_coord", "wnn") for m in plan.methods)
    source, source_desc = None, None
    if needs_source:
        t0 = time.perf_counter()
        files = _source_files(args.source)
        if files:
            w, spec, desc = load_source(files)
            source, source_desc = (w, spec), f"zoo trajectories: {desc}"
        else:
            # windows need m + 1 snapshots; quick runs keep the source as short as the budget allows
            src_epochs = max(max(ms), min(budget, 20) if args.quick else SOURCE_TASK.epochs)
            source = source_trajectories(src_epochs, seeds=tuple(range(args.source_seeds)), limit=args.limit)
            source_desc = (f"generated: {SOURCE_TASK.arch} on {SOURCE_TASK.dataset}, adam/adamw/sgdm/sgd/rmsprop x "
                           f"{args.source_seeds} seeds, {src_epochs} epochs, weights {tuple(source[0].shape)}")
        logger.info("source trajectories for ridge_coord/wnn: %s (%.1f s)", source_desc, time.perf_counter() - t0)

    # Pin the GFM forecaster (and its file hash) before any training: a file rebuilt while
    # the benchmark runs must not change the forecaster half-way or mislabel the results.
    gfm_sha, gfm_pinned = None, None
    if "gfm" in plan.methods:
        gfm_sha = forecaster_sha256(args.forecaster)
        try:
            gfm_pinned = make_forecaster("gfm", n=1, m=2, forecaster_path=args.forecaster)
        except ValueError as exc:
            logger.warning("gfm not run: %s", exc)

    runs: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    not_run: dict[str, str] = {}
    forecasters: dict[tuple[str, str, int], Any] = {}
    jobs = [(t, s) for t in plan.tasks for s in plan.seeds]
    for task, seed in progress(jobs, desc="accel", enabled=not args.no_progress):
        split = load_split(task.dataset, args.limit)
        plain = train_run(task, seed, split=split)
        runs.append(plain.to_dict())
        logger.info("%s seed %d plain: best val %.4f at %d, %.1f s", task.name, seed, min(plain.val_loss[1:]),
                    plain.val_loss.index(min(plain.val_loss[1:])), plain.wall[-1])
        for sched in plan.schedules:
            opts = parse_schedule(sched)
            config = jump_config(opts)
            m = target_m(config, task.epochs)
            for method in plan.methods:
                key = (method, sched, m)
                if method == "gfm" and key not in forecasters:
                    forecasters[key] = gfm_pinned
                    if gfm_pinned is None:
                        not_run[method] = "the GFM forecaster could not be loaded (see the log)"
                if key not in forecasters:
                    try:
                        forecasters[key] = make_forecaster(method, n=opts.get("n", 4), m=m, source=source,
                                                           forecaster_path=args.forecaster, wnn_epochs=args.wnn_epochs)
                    except Exception as exc:  # a missing competitor is reported, not fatal
                        logger.warning("%s not run: %s", method, exc)
                        forecasters[key] = None
                        not_run[method] = f"{type(exc).__name__}: {exc}"
                if forecasters[key] is None:
                    continue
                jump = GFMJump(forecasters[key], config=config)
                log = train_run(task, seed, split=split, jump=jump, method=method)
                runs.append({**log.to_dict(), "schedule": sched})
                metrics = pair_metrics(plain, log)
                pairs.append({"task": task.name, "seed": seed, "method": method, "schedule": sched, **metrics})
                b = metrics["targets"]["best"]
                logger.info("%s seed %d %s [%s]: best-target epochs %s -> %s, accept %s/%s", task.name, seed, method,
                            sched, b["plain_epochs"], b["jump_epochs"], metrics["jumps"]["accepted"],
                            metrics["jumps"]["attempts"])

    summary = _summarize(pairs, plan)
    table = _table(summary, plan, not_run, source_desc, probe=args.probe)
    figures = _figure(runs, Path(args.out), plan) if not args.probe else []
    config = {
        "tasks": [t.to_dict() for t in plan.tasks],
        "methods": plan.methods,
        "schedules": plan.schedules,
        "probe": bool(args.probe),
        "limit": args.limit,
        "forecaster": args.forecaster or "shipped (gfm_accel.pretrained_forecaster())",
        "forecaster_sha256": gfm_sha,
        "source": source_desc,
        "guard": ("loss on the task's fixed guard split (never the val split); alphas (1, 0.5, 0.25); "
                  "tolerance per schedule (tol=, default 0.01)"),
    }
    return BenchResult(
        results={"summary": summary, "pairs": pairs, "not_run": not_run, "runs": runs},
        table_md=table, config=config, seeds=plan.seeds, figures=figures,
    )


def _summarize(pairs: list[dict[str, Any]], plan: _Plan) -> list[dict[str, Any]]:
    rows = []
    for task in plan.tasks:
        for sched in plan.schedules:
            for method in plan.methods:
                ps = [p for p in pairs if p["task"] == task.name and p["method"] == method and p["schedule"] == sched]
                if not ps:
                    continue
                row: dict[str, Any] = {"task": task.name, "method": method, "schedule": sched, "seeds": len(ps)}
                for key in ("best", "quarter", "half", "train"):
                    ts = [p["targets"][key] for p in ps if key in p["targets"]]
                    if not ts:
                        continue
                    sp = [t["speedup"] if t["speedup"] is not None else t["speedup_bound"] for t in ts]
                    row[f"speedup_{key}"] = _mean_std([s for s in sp if s is not None])
                    row[f"reached_{key}"] = sum(1 for t in ts if t["jump_epochs"] is not None)
                    row[f"plain_epochs_{key}"] = _mean_std([t["plain_epochs"] for t in ts if t["plain_epochs"] is not None])
                    row[f"jump_epochs_{key}"] = _mean_std([t["jump_epochs"] for t in ts if t["jump_epochs"] is not None])
                    row[f"plain_seconds_{key}"] = _mean_std([t["plain_seconds"] for t in ts if t["plain_seconds"] is not None])
                    row[f"jump_seconds_{key}"] = _mean_std([t["jump_seconds"] for t in ts if t["jump_seconds"] is not None])
                for key in ("quarter", "half", "end"):
                    es = [p["equal_epochs"][key] for p in ps]
                    row[f"epoch_{key}"] = es[0]["epoch"]
                    for f in ("plain_loss", "jump_loss", "plain_acc", "jump_acc"):
                        row[f"{f}_{key}"] = _mean_std([e[f] for e in es])
                    row[f"worse_{key}"] = sum(1 for e in es if e["jump_loss"] > e["plain_loss"])
                att = sum(p["jumps"]["attempts"] for p in ps)
                acc = sum(p["jumps"]["accepted"] for p in ps)
                row["accept_rate"] = acc / att if att else None
                row["attempts"], row["accepted"] = att, acc
                row["overhead_share"] = _mean_std([p["jumps"]["overhead_share"] for p in ps])
                rows.append(row)
    return rows


def _table(summary: list[dict[str, Any]], plan: _Plan, not_run: dict[str, str], source_desc: str | None,
           *, probe: bool) -> str:
    lines = []
    title = ("Jump schedules (probe)" if probe else
             "Live acceleration, schedule " + ", ".join(f"`{s}`" for s in plan.schedules))
    lines.append(f"## {title}\n")
    lines.append(
        "Speedup = plain epochs / jump epochs to reach the plain run's best val loss (and its val loss at B/4, B/2); "
        "mean ± std over seeds; a target not reached counts as plain epochs / B. "
        "Epochs and seconds (jump overhead included) are plain → jump. Val loss / acc at equal epochs B. "
        "Speedup train: the same to the plain run's lowest epoch-mean training loss, on the training-loss curves "
        "(optimization speed, apart from generalization).\n"
    )
    head = ("| task | method | schedule | speedup best | reached | epochs to best | seconds to best | speedup B/4 | "
            "speedup B/2 | speedup train | val loss @B | val acc @B | worse @B | accept | overhead |")
    lines.append(head)
    lines.append("|" + "---|" * (head.count("|") - 1))
    for r in summary:
        sb, sq, sh = r["speedup_best"], r["speedup_quarter"], r["speedup_half"]
        lines.append(
            f"| {r['task']} | {r['method']} | `{r['schedule']}` | **{_fmt(*sb)}x** | {r['reached_best']}/{r['seeds']} | "
            f"{_fmt(*r['plain_epochs_best'], 1)} → {_fmt(*r['jump_epochs_best'], 1)} | "
            f"{_fmt(*r['plain_seconds_best'], 1)} → {_fmt(*r['jump_seconds_best'], 1)} | "
            f"{_fmt(*sq)}x ({r['reached_quarter']}/{r['seeds']}) | {_fmt(*sh)}x ({r['reached_half']}/{r['seeds']}) | "
            f"{_train_cell(r)} | {_fmt(*r['plain_loss_end'], 3)} → {_fmt(*r['jump_loss_end'], 3)} | "
            f"{_fmt(*r['plain_acc_end'], 3)} → {_fmt(*r['jump_acc_end'], 3)} | {r['worse_end']}/{r['seeds']} | "
            f"{(r['accept_rate'] if r['accept_rate'] is not None else float('nan')):.2f} ({r['accepted']}/{r['attempts']}) | "
            f"{100 * r['overhead_share'][0]:.1f}% |"
        )
    # Mean over tasks per method (the issue's headline number).
    lines.append("")
    lines.append("| method | schedule | mean speedup over tasks (best) | (B/4) | (B/2) | (train loss) | "
                 "tasks worse @B (mean val loss) |")
    lines.append("|---|---|---|---|---|---|---|")
    for sched in plan.schedules:
        for method in plan.methods:
            rs = [r for r in summary if r["method"] == method and r["schedule"] == sched]
            if not rs:
                continue
            worse = sum(1 for r in rs if r["jump_loss_end"][0] > r["plain_loss_end"][0])
            def mean(k: str) -> float:
                vals = [r[k][0] for r in rs if k in r and math.isfinite(r[k][0])]
                return statistics.fmean(vals) if vals else float("nan")

            lines.append(f"| {method} | `{sched}` | **{mean('speedup_best'):.2f}x** | {mean('speedup_quarter'):.2f}x | "
                         f"{mean('speedup_half'):.2f}x | {mean('speedup_train'):.2f}x | {worse}/{len(rs)} |")
    if not_run:
        lines.append("")
        for method, why in not_run.items():
            lines.append(f"- `{method}`: not run: {why}")
    if source_desc:
        lines.append(f"\nridge_coord / wnn fitted on source trajectories: {source_desc}.")
    return "\n".join(lines) + "\n"


def _train_cell(row: dict[str, Any]) -> str:
    if "speedup_train" not in row:
        return "n/a"
    return f"{_fmt(*row['speedup_train'])}x ({row['reached_train']}/{row['seeds']})"


def _figure(runs: list[dict[str, Any]], out: Path, plan: _Plan) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib not installed: no figure")
        return []
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(plan.tasks), figsize=(5 * len(plan.tasks), 4.2), squeeze=False)
    seed = plan.seeds[0]
    # Schedules are long strings: the legend names them by letter, the title spells them out.
    letters = {sched: chr(ord("A") + i) for i, sched in enumerate(plan.schedules)}
    for ax, task in zip(axes[0], plan.tasks):
        for r in runs:
            if r["task"] == task.name and r["seed"] == seed:
                style = "-" if r["method"] in ("plain", "gfm") else "--"
                lw = 2.2 if r["method"] in ("plain", "gfm") else 1.2
                sched = r.get("schedule")
                label = r["method"] + (f" [{letters.get(sched, sched)}]" if sched and len(letters) > 1 else "")
                ax.plot(range(len(r["val_loss"])), r["val_loss"], style, lw=lw, label=label)
                for j in r.get("jumps", []):
                    if j.get("accepted") and r["method"] == "gfm" and sched == plan.schedules[0]:
                        ax.axvline(j["epoch"], color="0.8", lw=0.6, zorder=0)
        ax.set_title(f"{task.name} (seed {seed})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("val loss")
        ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=2)
    first = plan.schedules[0] if plan.schedules else ""
    fig.suptitle("; ".join(f"{letter}: {sched}" for sched, letter in letters.items())
                 + (f"  (grey lines: accepted gfm jumps under {letters[first]})" if first else ""), fontsize=9)
    fig.tight_layout()
    path = out / "val_loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
