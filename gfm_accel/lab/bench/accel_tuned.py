"""``gfm-accel bench accel --protocol tuned``: time to a tuned baseline's target (issue 14, AlgoPerf-style).

The runner only strings together the lab's pieces: workloads (:mod:`gfm_accel.lab.tasks`:
the nine held-out tasks through :class:`~gfm_accel.lab.tasks.heldout.HeldoutWorkload`, the
char GPT and the residual CNN), methods (:mod:`gfm_accel.lab.methods`), one measured run
(:func:`~gfm_accel.lab.bench.curves.run_curve`) and the numbers (:mod:`gfm_accel.lab.bench.stats`).

Protocol per task (``docs/acceleration_tuned.md`` gives every choice and its reason):

1. **Tune the baseline.** The plain optimizer on a log2 lr grid centred on the task's
   default, with the schedules ``constant`` and ``warmup_cosine``, on the *grid seeds*. The
   best ``(schedule, lr)`` by median best val loss (:func:`~.stats.choose_baseline`); while
   it lies on the grid's edge the grid of that schedule is widened by one point
   (:func:`~.stats.widen`), up to ``max_widen`` times. Every point is recorded.
2. **Target.** The tuned baseline on the *report seeds* (disjoint from the grid seeds); the
   target is the median of their best val losses.
3. **Methods**, each with the tuned baseline's optimizer, lr and schedule, on the report
   seeds: ``gfm`` (GFMJump, shipped forecaster, default config), ``linefit`` and ``wnn`` (the
   same jump machinery with those forecasters), ``ema``, ``lookahead``, ``schedulefree``,
   ``outer_nesterov`` at their recommended settings (the *recipe* rows). Where method tuning
   is on, each competitor's own :attr:`~gfm_accel.lab.methods.Method.GRID` (and, for ``gfm``,
   :data:`JUMP_GRID`: guard tolerance x horizon) runs on the grid seeds, the point with the
   lowest median best val loss is chosen (the baseline's rule), and
   it runs on the report seeds (the *tuned* rows). The report seeds never select anything.
4. **Numbers.** Speedup in steps and in wall seconds (all of the method's overhead) to the
   target, as the ratio of medians over the report seeds with a paired bootstrap 90%
   interval; the geometric mean over tasks; val loss and accuracy at the equal budget; the
   tasks made worse (:func:`~.stats.is_worse`).

**Jump variants** (``--variants FILE.json``, issue 15): further jump methods, each a forecaster
(``"shipped"``, ``"linefit"`` or a forecaster file) and :class:`~gfm_accel.jump.JumpConfig`
overrides, run at their recipe only (no grid: a variant *is* a tuned point, chosen on the
tuning tasks). A variant's method name is ``NAME@HASH``, ``HASH`` the first 8 hex digits of
the SHA-256 of its spec and its forecaster file's bytes (:func:`variant_methods`): a journal
never hands a changed variant the runs of the old one.

Runs go to a pool of ``workers`` single-threaded processes (``torch.set_num_threads(1)``);
results are collected in submission order, so they do not depend on which worker finishes
first. Only the timings vary between two runs of the same command.

Example:
    >>> plan = build_plan(quick=True)
    >>> [w.name for w in plan.workloads], plan.grid_points, plan.grid_seeds, plan.report_seeds
    (['mlp_mnist1d', 'cnn1d_digits', 'mlp_mnist1d_sgd'], 3, (0, 1), (100, 101))
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..forecasters import forecaster_sha256, make_forecaster
from ..methods import METHODS, Jump, build_method
from ..methods.ema import EMA
from ..optim import build_optimizer
from ..tasks.char_gpt import CharGPT
from ..tasks.fresh import FRESH_TASKS, fresh_workload
from ..tasks.heldout import HELDOUT_NAMES, HeldoutWorkload
from ..tasks.resnet import ResNetTask
from ..tasks.workload import WorkloadConfig
from . import stats
from .common import BenchResult, atomic_write_text
from .curves import run_curve

__all__ = [
    "JUMP_METHODS",
    "COMPETITORS",
    "QUICK_TASKS",
    "LARGE_TASKS",
    "Job",
    "TunedPlan",
    "build_plan",
    "jump_config_for",
    "method_grid",
    "JUMP_GRID",
    "variant_methods",
    "subset_journal",
    "task_fingerprint",
    "Journal",
    "plan_fingerprint",
    "run_jobs",
    "run_tuned",
]

logger = logging.getLogger(__name__)

#: The jump methods: GFMJump with the shipped forecaster, the least-squares line, WNN.
JUMP_METHODS: tuple[str, ...] = ("gfm", "linefit", "wnn")
#: What users would pick instead (each from its own library; :mod:`gfm_accel.lab.methods`).
COMPETITORS: tuple[str, ...] = ("ema", "lookahead", "schedulefree", "outer_nesterov")
#: ``--quick``'s three tasks: the cheapest held-out tasks, with three different optimizers.
QUICK_TASKS: tuple[str, ...] = ("mlp_mnist1d", "cnn1d_digits", "mlp_mnist1d_sgd")
#: The two larger tasks (coarser protocol: 5-point grid, warmup_cosine only, 3 seeds,
#: competitors at their recommended settings).
LARGE_TASKS: tuple[str, ...] = ("char_gpt", "resnet_digits")
#: The jump methods' own grid (the tuned ``gfm`` row, AlgoPerf's "a method may be tuned too"):
#: the guard's tolerance (0: a jump may not raise the guard loss at all) and the horizon K in
#: snapshots (30: NiNo-style far jumps). Four points, as Lookahead's grid.
JUMP_GRID: dict[str, tuple[Any, ...]] = {"tolerance": (0.0, 0.3), "horizon": (10, 30)}
#: Snapshot count of the wnn source trajectories per run (epochs of the zoo-like source task).
WNN_SOURCE_EPOCHS = 40


def variant_methods(specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Jump variants keyed by their method name ``NAME@HASH``.

    Args:
        specs: ``{NAME: {"forecaster": "shipped" | "linefit" | PATH, "config": {JumpConfig field: value}}}``;
            ``config`` may be omitted. ``NAME`` must not contain ``@``.

    Returns:
        ``{NAME@HASH: spec}`` (the spec with ``"name"`` and, for a file, ``"sha256"`` added).

    Raises:
        ValueError: a bad name, an unknown key, a missing forecaster file or a config field
            :class:`~gfm_accel.jump.JumpConfig` does not have (checked here, before any run).

    Example:
        >>> sorted(variant_methods({"gfm_tol0": {"forecaster": "shipped", "config": {"tolerance": 0.0}}}))[0][:9]
        'gfm_tol0@'
    """
    import hashlib

    from ...jump import JumpConfig

    out: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        if not name or "@" in name or name in (*JUMP_METHODS, *COMPETITORS, "plain"):
            raise ValueError(f"jump variant name {name!r}: must be non-empty, without '@', and not a built-in method")
        unknown = set(spec) - {"forecaster", "config", "note"}
        if unknown or "forecaster" not in spec:
            raise ValueError(f"jump variant {name!r}: needs 'forecaster' (and optional 'config', 'note'); "
                             f"unknown keys {sorted(unknown)}")
        config = dict(spec.get("config", {}))
        replace(JumpConfig(), **config)  # an unknown field or a bad value fails here
        digest = hashlib.sha256(json.dumps({"forecaster": spec["forecaster"], "config": config},
                                           sort_keys=True).encode())
        full = {"name": name, "forecaster": spec["forecaster"], "config": config, "note": spec.get("note", "")}
        if spec["forecaster"] not in ("shipped", "linefit"):
            path = Path(spec["forecaster"])
            if not path.is_file():
                raise ValueError(f"jump variant {name!r}: forecaster file {str(path)!r} does not exist")
            file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            digest.update(file_hash.encode())
            full["sha256"] = file_hash
        out[f"{name}@{digest.hexdigest()[:8]}"] = full
    return out


def jump_config_for(schedule: str):
    """The jump methods' config: GFMJump's issue-14 defaults (tolerance 0.3, no max_rejections), with ``lr_horizon`` on under a decaying schedule.

    Why: the forecaster extrapolates the window's pace K snapshots ahead; under cosine decay
    the next K snapshots cover less ground, and late in the run (lr near 0) a full-length
    jump overshoots by far more than the remaining steps can correct. ``lr_horizon`` scales
    the jump by the summed future lr (``docs/jump.md``); under ``constant`` it changes
    nothing (the ratio is 1), so it is off there.

    Args:
        schedule: the tuned baseline's schedule name.

    Returns:
        The :class:`~gfm_accel.jump.JumpConfig`.
    """
    from ...jump import JumpConfig

    # tolerance 0.3 and no max_rejections pinned: the defaults when the committed "gfm" rows (and
    # their journals, keyed by method name) were measured (issue 14); the later defaults are the
    # variants gfm_tol0 (tolerance 0) and gfm_margin_giveup (tolerance -0.01, max_rejections 3).
    return JumpConfig(lr_horizon=schedule != "constant", tolerance=0.3, max_rejections=None)


@dataclass(frozen=True)
class Job:
    """One run: a task, a method with its hyperparameters, the recipe's schedule and lr, a seed.

    Attributes:
        task: the workload's name.
        method: ``plain``, a jump method or a competitor.
        hparams: the method's hyperparameters as sorted ``(name, value)`` pairs.
        schedule, lr: the base optimizer's schedule and learning rate.
        seed: the run seed.
        phase: ``grid``, ``baseline``, ``recipe``, ``method_grid`` or ``tuned``.
    """

    task: str
    method: str
    hparams: tuple[tuple[str, Any], ...]
    schedule: str
    lr: float
    seed: int
    phase: str

    @property
    def key(self) -> tuple:
        return (self.task, self.method, self.hparams, self.schedule, self.lr, self.seed)


@dataclass
class TunedPlan:
    """Everything that defines a tuned-protocol run.

    Attributes:
        workloads: the tasks, in table order.
        coarse: names of the tasks under the coarser protocol (the larger tasks).
        grid_points: lr grid points per schedule (coarse tasks: ``coarse_points``).
        schedules: the baseline's schedules (coarse tasks: ``warmup_cosine`` only).
        grid_seeds: seeds of every selection (the baseline grid, the methods' grids).
        report_seeds: seeds of the reported rows (the target, every method's row).
        coarse_seeds: the coarse tasks' grid and report seeds.
        methods: the methods compared (jump methods and competitors).
        tune_methods: run the competitors' own grids (the tuned rows).
        tune_jumps: jump methods that get :data:`JUMP_GRID` as their own grid too (``wnn`` is
            fitted for one horizon, so it cannot take part).
        max_widen: most grid widenings per task.
        variants: jump variants by method name (:func:`variant_methods`), also in ``methods``;
            run at their recipe only.
        workers: worker processes.
        wnn_epochs: wnn's training epochs; source_seeds: seeds per optimizer of its source.
    """

    workloads: list[WorkloadConfig]
    coarse: tuple[str, ...] = ()
    grid_points: int = 7
    coarse_points: int = 5
    schedules: tuple[str, ...] = ("constant", "warmup_cosine")
    grid_seeds: tuple[int, ...] = (0, 1, 2)
    report_seeds: tuple[int, ...] = (100, 101, 102, 103, 104)
    coarse_seeds: tuple[tuple[int, ...], tuple[int, ...]] = ((0, 1, 2), (100, 101, 102))
    methods: tuple[str, ...] = (*JUMP_METHODS, *COMPETITORS)
    tune_methods: bool = True
    tune_jumps: tuple[str, ...] = ("gfm",)
    max_widen: int = 4
    workers: int = 2
    wnn_epochs: int | None = None
    source_seeds: int = 2
    limit: int | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def is_jump(self, method: str) -> bool:
        """A jump method: built in (:data:`JUMP_METHODS`) or one of :attr:`variants`."""
        return method in JUMP_METHODS or method in self.variants

    def seeds(self, task: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(grid seeds, report seeds)`` of ``task``."""
        return self.coarse_seeds if task in self.coarse else (self.grid_seeds, self.report_seeds)

    def task_schedules(self, task: str) -> tuple[str, ...]:
        return ("warmup_cosine",) if task in self.coarse else self.schedules

    def task_points(self, task: str) -> int:
        return self.coarse_points if task in self.coarse else self.grid_points

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "workloads"}
        d["workloads"] = [{"class": type(w).__name__, **w.to_dict()} for w in self.workloads]
        return d


def method_grid(method: str) -> list[dict[str, Any]]:
    """A method's own grid: a competitor's :attr:`~gfm_accel.lab.methods.Method.GRID`, a jump method's :data:`JUMP_GRID`."""
    if method in JUMP_METHODS:
        import itertools

        keys = sorted(JUMP_GRID)
        return [dict(zip(keys, v)) for v in itertools.product(*(JUMP_GRID[k] for k in keys))]
    return METHODS[method].grid()


def _tuned(plan: "TunedPlan", method: str) -> bool:
    """Whether ``method`` gets its own grid under ``plan``."""
    return plan.tune_methods and (method in COMPETITORS or method in plan.tune_jumps)


def _workload(name: str, *, steps: int | None, limit: int | None) -> WorkloadConfig:
    if name in HELDOUT_NAMES:
        w = HeldoutWorkload(name, limit=limit)
        return replace(w, total_steps=steps) if steps else w
    kw = {"total_steps": steps} if steps else {}
    if name == "char_gpt":
        return CharGPT(**kw)
    if name == "resnet_digits":
        return ResNetTask(**kw)
    if name in FRESH_TASKS:
        return fresh_workload(name, steps)
    raise ValueError(f"unknown tuned task {name!r}; choose from {[*HELDOUT_NAMES, *LARGE_TASKS, *FRESH_TASKS]}")


def build_plan(tasks: Sequence[str] | None = None, *, quick: bool = False, steps: int | None = None,
               limit: int | None = None, workers: int = 2, seeds: Sequence[int] | None = None,
               wnn_epochs: int | None = None, source_seeds: int | None = None) -> TunedPlan:
    """The plan of a full or ``--quick`` run.

    ``--quick``: :data:`QUICK_TASKS` at half their budgets, a 3-point grid (at most 2
    widenings), grid seeds ``(0, 1)`` and report seeds ``(100, 101)``, the competitors at their
    recommended settings only (no method grids).

    Args:
        tasks: task names (default: the nine held-out tasks and :data:`LARGE_TASKS`; quick:
            :data:`QUICK_TASKS`).
        quick: the quick configuration.
        steps: override every task's budget (optimizer steps; tests).
        limit: keep at most this many training samples of the held-out tasks (tests).
        workers: worker processes.
        seeds: the report seeds (default ``100..104``; quick ``100, 101``).
        wnn_epochs, source_seeds: the wnn baseline's fitting (default 200 epochs, 2 seeds).

    Returns:
        The :class:`TunedPlan`.
    """
    names = list(tasks) if tasks else list(QUICK_TASKS if quick else (*HELDOUT_NAMES, *LARGE_TASKS))
    if len(set(names)) != len(names):
        raise ValueError(f"repeated task names in {names}")
    workloads = [_workload(n, steps=steps, limit=limit) for n in names]
    plan = TunedPlan(workloads, coarse=tuple(n for n in names if n in LARGE_TASKS), workers=workers,
                     wnn_epochs=wnn_epochs, limit=limit)
    if quick:
        if steps is None:  # half the budget: the quick run must fit in minutes on two busy cores
            plan.workloads = [replace(w, total_steps=max(1, w.total_steps // 2)) for w in workloads]
        plan = replace(plan, grid_points=3, coarse_points=3, grid_seeds=(0, 1), report_seeds=(100, 101),
                       coarse_seeds=((0, 1), (100, 101)), tune_methods=False, max_widen=2, source_seeds=1)
    if seeds:
        report = tuple(int(s) for s in seeds)
        if set(report) & set(plan.grid_seeds):
            raise ValueError(f"report seeds {report} overlap the grid seeds {plan.grid_seeds}: nothing may be "
                             "selected on the reported seeds")
        plan = replace(plan, report_seeds=report)
    if source_seeds is not None:
        plan = replace(plan, source_seeds=source_seeds)
    return plan


# --------------------------------------------------------------------------- running jobs
#: What worker processes read (set before the pool forks, so they inherit it).
_STATE: dict[str, Any] = {}


def _factory(w: WorkloadConfig, method: str, lr: float) -> Callable:
    name = w.optimizer
    if method == "schedulefree" and name not in ("adam", "adamw", "sgd", "sgdm"):
        # schedulefree has AdamW and SGD variants only: an RMSprop/Adagrad recipe gets AdamW
        # at the same lr and weight decay (stated in the table)
        name = "adamw"
    return lambda params: build_optimizer(name, params, lr, weight_decay=w.weight_decay)


def _method(job: Job):
    hp = dict(job.hparams)
    if job.method in JUMP_METHODS:
        return Jump(_STATE["forecasters"][job.method], replace(jump_config_for(job.schedule), **hp), name=job.method)
    if job.method in _STATE.get("variants", {}):
        config = replace(jump_config_for(job.schedule), **_STATE["variants"][job.method]["config"], **hp)
        return Jump(_STATE["forecasters"][job.method], config, name=job.method)
    return build_method(job.method, **hp)


def _eval_every(w: WorkloadConfig) -> int:
    per_epoch = getattr(w, "steps_per_epoch", None)
    return max(1, min(per_epoch or w.total_steps, w.total_steps // 30 or 1))


def _execute(job: Job) -> dict[str, Any]:
    torch.set_num_threads(1)
    w = _STATE["workloads"][job.task]
    t0 = time.perf_counter()
    curve = run_curve(w.build(job.seed), _method(job), _factory(w, job.method, job.lr), total_steps=w.total_steps,
                      schedule=job.schedule, warmup=w.warmup, eval_every=_eval_every(w))
    # the curve's "hparams" (every setting the method reports) replaces the job's; the job's own
    # stay under "key_hparams", which is what a journal keys the run by
    out = {**asdict(job), "hparams": dict(job.hparams), **curve.to_dict(), "run_seconds": time.perf_counter() - t0,
           "key_hparams": dict(job.hparams)}
    out["final"] = asdict(curve.final) if curve.final is not None else None
    return out


def _init_worker() -> None:
    torch.set_num_threads(1)


def run_jobs(jobs: Sequence[Job], pool: Any = None) -> list[dict[str, Any]]:
    """Run ``jobs`` (in ``pool`` when given) and return their results in the order of ``jobs``.

    Args:
        jobs: the runs.
        pool: a ``multiprocessing`` pool whose workers inherited :data:`_STATE`; ``None``
            runs here, one after another.

    Returns:
        One dict per job: the job's fields, its curve (:class:`~.curves.RunCurve` as a dict)
        and ``run_seconds`` (its wall time including the benchmark's validation passes).
    """
    if pool is None:
        return [_execute(j) for j in jobs]
    return list(pool.map(_execute, list(jobs), chunksize=1))  # map keeps submission order


# --------------------------------------------------------------------------- the protocol
def _hp(d: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(d.items()))


def _recipe_hparams(name: str, total_steps: int) -> dict[str, Any]:
    """A competitor's recommended settings (its class defaults; EMA's decay fitted to the budget)."""
    if name == "ema":
        return EMA.for_budget(total_steps).hparams
    return {}


def _result_key(res: dict[str, Any]) -> tuple:
    """The :attr:`Job.key` of a finished run's result dict (as read back from a journal).

    Raises:
        ValueError: the result has no ``key_hparams`` (the job's own hyperparameters; its
            ``hparams`` are the method's full report, e.g. a jump's whole config).
    """
    if "key_hparams" not in res:
        raise ValueError(f"journal run {res.get('task')}/{res.get('method')} seed {res.get('seed')} has no "
                         "'key_hparams': the journal predates them and cannot be keyed; start a new one")
    return (res["task"], res["method"], _hp(res["key_hparams"]), res["schedule"], res["lr"], res["seed"])


#: Plan fields that do not change what a given job computes (a journal stays valid across them).
_NOT_FINGERPRINTED = ("methods", "tune_methods", "tune_jumps", "workers", "variants")


def plan_fingerprint(plan: TunedPlan) -> str:
    """SHA-256 of what decides a job's result: the workloads, seeds, grids and fitting options.

    The methods compared, which of them are tuned and the worker count are left out: a run is
    fixed by its :class:`Job` and the workloads, so a journal written with fewer methods is
    reused by a plan with more (only the new runs execute).
    """
    import hashlib

    d = {k: v for k, v in plan.to_dict().items() if k not in _NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def task_fingerprint(plan: TunedPlan, task: str) -> str:
    """SHA-256 of what decides the results of ``task``'s jobs: its workload, whether it is coarse,
    and the plan's seeds, grids and fitting options (not the other tasks)."""
    import hashlib

    d = {k: v for k, v in plan.to_dict().items() if k not in (*_NOT_FINGERPRINTED, "workloads", "coarse")}
    w = next((w for w in plan.workloads if w.name == task), None)
    if w is None:
        raise ValueError(f"task {task!r} is not in the plan")
    d["workload"] = {"class": type(w).__name__, **w.to_dict()}
    d["coarse"] = task in plan.coarse
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def subset_journal(source: str | os.PathLike, source_plan: TunedPlan, dest: str | os.PathLike,
                   plan: TunedPlan) -> int:
    """Start the journal ``dest`` of ``plan`` with ``source``'s runs of the tasks both plans share.

    A run is copied only when its task's :func:`task_fingerprint` is the same under both plans
    (same workload, seeds, grids, fitting options), so it is exactly the run ``plan`` would
    make. ``source`` must be ``source_plan``'s journal (its header is checked).

    Returns:
        The number of runs copied.

    Raises:
        ValueError: ``dest`` exists, or ``source`` belongs to another plan.
    """
    dest = Path(dest)
    if dest.exists():
        raise ValueError(f"journal {dest} exists: subset_journal only starts a new one")
    src = Journal(source, source_plan)
    same = {w.name for w in plan.workloads
            if w.name in {v.name for v in source_plan.workloads}
            and task_fingerprint(plan, w.name) == task_fingerprint(source_plan, w.name)}
    runs = [r for r in src.runs if r["task"] in same]
    lines = [json.dumps({"plan": plan_fingerprint(plan), "from": str(source)})] + [json.dumps(r) for r in runs]
    atomic_write_text(dest, "\n".join(lines) + "\n")
    logger.info("journal %s: started with %d runs of %s from %s", dest, len(runs), sorted(same), source)
    return len(runs)


class Journal:
    """Finished runs, one JSON line each, appended as they finish: a killed run resumes from it.

    The first line names the plan (:func:`plan_fingerprint`); a journal written by another
    plan (other tasks, budgets, seeds, grid) is refused rather than mixed in. A line cut short
    by a kill (the last one) is dropped on reading; every other line must parse.

    Args:
        path: the journal file (created with its header when missing).
        plan: the plan of this run.

    Raises:
        ValueError: the journal belongs to another plan, or a line other than the last is corrupt.
    """

    def __init__(self, path: str | os.PathLike, plan: TunedPlan) -> None:
        self.path = Path(path)
        self.fingerprint = plan_fingerprint(plan)
        self.runs: list[dict[str, Any]] = []
        if self.path.exists() and self.path.stat().st_size:
            lines = self.path.read_text().split("\n")
            complete, tail = lines[:-1], lines[-1]  # text after the last newline is a cut-off line
            if tail.strip():
                logger.warning("journal %s: dropping its last line (cut short)", self.path)
            header = json.loads(complete[0]) if complete else {}
            if header.get("plan") != self.fingerprint:
                raise ValueError(f"journal {self.path} was written by another plan (fingerprint "
                                 f"{header.get('plan')!r}, this plan {self.fingerprint!r}): pass another --journal "
                                 "or delete it")
            for i, line in enumerate(complete[1:], start=2):
                try:
                    self.runs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"journal {self.path}: line {i} is not JSON ({e})") from None
            if tail.strip():
                self.path.write_text("\n".join(complete) + "\n")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"plan": self.fingerprint}) + "\n")

    def append(self, res: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(res) + "\n")
            f.flush()
            os.fsync(f.fileno())


class _Runner:
    """Holds the pool and every finished run, keyed by job (seeded from ``journal`` when given)."""

    def __init__(self, pool: Any, journal: Journal | None = None) -> None:
        self.pool, self.done, self.journal = pool, {}, journal
        if journal is not None:
            self.done = {_result_key(r): r for r in journal.runs}
            if self.done:
                logger.info("journal %s: reusing %d finished runs", journal.path, len(self.done))

    def run(self, jobs: list[Job]) -> None:
        todo = [j for j in dict.fromkeys(jobs) if j.key not in self.done]
        t0 = time.perf_counter()
        results = map(_execute, todo) if self.pool is None else self.pool.imap(_execute, todo, chunksize=1)
        for job, res in zip(todo, results):  # imap yields in submission order, as runs finish
            self.done[job.key] = res
            if self.journal is not None:
                self.journal.append(res)
        if todo:
            logger.info("%d runs in %.1f s", len(todo), time.perf_counter() - t0)

    def get(self, job: Job) -> dict[str, Any]:
        return self.done[job.key]


def _grid_jobs(plan: TunedPlan, w: WorkloadConfig, lrs: dict[str, list[float]]) -> list[Job]:
    seeds, _ = plan.seeds(w.name)
    return [Job(w.name, "plain", (), s, lr, seed, "grid") for s in lrs for lr in lrs[s] for seed in seeds]


def _choice(plan: TunedPlan, runner: _Runner, w: WorkloadConfig, lrs: dict[str, list[float]]) -> stats.BaselineChoice:
    seeds, _ = plan.seeds(w.name)
    points = [stats.GridPoint(s, lr, tuple(stats.best_loss(runner.get(Job(w.name, "plain", (), s, lr, seed, "grid"))["records"])
                                            for seed in seeds)) for s in lrs for lr in lrs[s]]
    return stats.choose_baseline(points)


def _tune_baselines(plan: TunedPlan, runner: _Runner) -> dict[str, tuple[stats.BaselineChoice, dict[str, list[float]], int]]:
    grids = {w.name: {s: stats.log2_grid(w.lr, plan.task_points(w.name)) for s in plan.task_schedules(w.name)}
             for w in plan.workloads}
    widened = {w.name: 0 for w in plan.workloads}
    runner.run([j for w in plan.workloads for j in _grid_jobs(plan, w, grids[w.name])])
    while True:
        pending = []
        for w in plan.workloads:
            c = _choice(plan, runner, w, grids[w.name])
            if not c.interior and widened[w.name] < plan.max_widen:
                grids[w.name][c.schedule] = stats.widen(grids[w.name][c.schedule], c.widen)
                widened[w.name] += 1
                pending += _grid_jobs(plan, w, grids[w.name])
        if not pending:
            break
        logger.info("widening the grid of %s", sorted({j.task for j in pending}))
        runner.run(pending)
    return {w.name: (_choice(plan, runner, w, grids[w.name]), grids[w.name], widened[w.name]) for w in plan.workloads}


def _method_jobs(plan: TunedPlan, w: WorkloadConfig, base: stats.BaselineChoice) -> tuple[list[Job], list[Job]]:
    """``(recipe rows' jobs on the report seeds, method-grid jobs on the grid seeds)``."""
    grid_seeds, report_seeds = plan.seeds(w.name)
    mk = lambda m, hp, seed, phase: Job(w.name, m, _hp(hp), base.schedule, base.lr, seed, phase)  # noqa: E731
    recipe = [mk("plain", {}, s, "baseline") for s in report_seeds]
    grid: list[Job] = []
    for m in plan.methods:
        hp = _recipe_hparams(m, w.total_steps) if m in COMPETITORS else {}
        recipe += [mk(m, hp, s, "recipe") for s in report_seeds]
        if _tuned(plan, m) and w.name not in plan.coarse:
            grid += [mk(m, g, s, "method_grid") for g in method_grid(m) for s in grid_seeds]
    return recipe, grid


def _median(xs: Sequence[float]) -> float:
    vals = [x if math.isfinite(x) else math.inf for x in xs]
    return float(statistics.median(vals))


def _row(label: str, method: str, hparams: dict[str, Any], base_runs: list[dict], runs: list[dict], target: float,
         seed: int) -> dict[str, Any]:
    b = [stats.time_to_target(r["records"], target) for r in base_runs]
    m = [stats.time_to_target(r["records"], target) for r in runs]
    sp_steps = stats.speedup([x.steps for x in b], [x.steps for x in m], seed=seed)
    sp_secs = stats.speedup([x.seconds for x in b], [x.seconds for x in m], seed=seed)
    base_final = [r["final"]["loss"] for r in base_runs]
    final = [r["final"]["loss"] for r in runs]
    return {
        "method": method, "row": label, "hparams": hparams, "seeds": [r["seed"] for r in runs],
        "speedup_steps": asdict(sp_steps), "speedup_seconds": asdict(sp_secs),
        "reached": sum(x.reached for x in m), "steps_to_target": [x.steps for x in m],
        "seconds_to_target": [x.seconds for x in m],
        "val_loss_end": _median(final), "val_acc_end": _median([r["final"]["accuracy"] for r in runs]),
        "baseline_val_loss_end": _median(base_final),
        "baseline_val_acc_end": _median([r["final"]["accuracy"] for r in base_runs]),
        "best_val_loss": _median([stats.best_loss(r["records"]) for r in runs]),
        "worse": stats.is_worse(base_final, final),
        "train_seconds": _median([r["records"][-1][1] for r in runs]),
    }


def _select(plan: TunedPlan, runner: _Runner, w: WorkloadConfig, base: stats.BaselineChoice, method: str) -> dict[str, Any]:
    """A method's grid point with the lowest median best val loss on the grid seeds (ties: grid order)."""
    grid_seeds, _ = plan.seeds(w.name)
    scored = []
    for g in method_grid(method):
        runs = [runner.get(Job(w.name, method, _hp(g), base.schedule, base.lr, s, "method_grid")) for s in grid_seeds]
        scored.append((_median([stats.best_loss(r["records"]) for r in runs]), g))
    return min(scored, key=lambda t: t[0])[1]


def _forecasters(plan: TunedPlan, no_progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The jump methods' forecasters, built once in the parent (the workers inherit them)."""
    from ...jump import JumpConfig
    from .accel import source_trajectories

    out, info = {}, {}
    cfg = JumpConfig()
    m = cfg.n + cfg.periodic_horizon
    if "gfm" in plan.methods:
        out["gfm"] = make_forecaster("gfm")
        info["gfm"] = {"file": "shipped (gfm_accel.pretrained_forecaster())", "sha256": forecaster_sha256(None)}
    if "linefit" in plan.methods:
        out["linefit"] = make_forecaster("linefit")
        info["linefit"] = {"forecaster": "LineFitForecaster (training-free)"}
    if "wnn" in plan.methods:
        t0 = time.perf_counter()
        epochs = max(m + 1, WNN_SOURCE_EPOCHS if plan.source_seeds > 1 else 20)
        source = source_trajectories(epochs, seeds=tuple(range(plan.source_seeds)), limit=plan.limit)
        out["wnn"] = make_forecaster("wnn", n=cfg.n, m=m, source=source, wnn_epochs=plan.wnn_epochs)
        info["wnn"] = {"fitted_for": {"n": cfg.n, "m": m}, "wnn_epochs": plan.wnn_epochs or 200,
                       "source": f"the fixed protocol's zoo-like source task (MLP on digits), adam/adamw/sgdm/sgd/"
                                 f"rmsprop x {plan.source_seeds} seeds, {epochs} epochs, weights "
                                 f"{tuple(source[0].shape)}", "fit_seconds": round(time.perf_counter() - t0, 1)}
    for name, spec in plan.variants.items():
        kind = spec["forecaster"]
        out[name] = make_forecaster("linefit" if kind == "linefit" else "gfm",
                                    forecaster_path=None if kind in ("shipped", "linefit") else kind)
        info[name] = dict(spec)
    return out, info


def run_tuned(args: argparse.Namespace) -> BenchResult:
    """Run the tuned protocol as ``args`` (the ``bench accel`` command line) says.

    Returns:
        The :class:`~.common.BenchResult`; ``summary.json``, the table and one plot per task
        are written into ``args.out`` (results.json and table.md by the harness).
    """
    torch.set_num_threads(1)
    from .accel import TASK_SETS

    tasks = [n for t in (args.tasks or "").split(",") if t.strip()
             for n in (TASK_SETS[t.strip()] if t.strip() in TASK_SETS else [t.strip()])] or None
    seeds = [s.strip() for s in (args.seeds or "").split(",") if s.strip()] or None
    plan = build_plan(tasks, quick=args.quick, steps=args.steps, limit=args.limit, workers=args.workers,
                      seeds=seeds, wnn_epochs=args.wnn_epochs, source_seeds=args.source_seeds if args.source_seeds != 2 else None)
    if args.no_method_grid:
        plan = replace(plan, tune_methods=False)
    if getattr(args, "variants", None):
        variants = variant_methods(json.loads(Path(args.variants).read_text()))
        plan = replace(plan, variants=variants, methods=(*plan.methods, *variants))
    t_start = time.perf_counter()
    forecasters, finfo = _forecasters(plan)
    _STATE.update(workloads={w.name: w for w in plan.workloads}, forecasters=forecasters, variants=plan.variants)
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(plan.workers, initializer=_init_worker) if plan.workers > 1 else None
    try:
        if getattr(args, "journal_source", None):
            if not getattr(args, "journal", None):
                raise ValueError("--journal-source needs --journal (the new journal it starts)")
            if not Path(args.journal).exists():  # a later call resumes the journal it started
                source_plan = build_plan(None, quick=args.quick, steps=args.steps, limit=args.limit,
                                         workers=args.workers, seeds=seeds, wnn_epochs=args.wnn_epochs,
                                         source_seeds=plan.source_seeds if plan.source_seeds != 2 else None)
                subset_journal(args.journal_source, source_plan, args.journal, plan)
        runner = _Runner(pool, Journal(args.journal, plan) if getattr(args, "journal", None) else None)
        chosen = _tune_baselines(plan, runner)
        recipe_jobs, grid_jobs = {}, {}
        for w in plan.workloads:
            recipe_jobs[w.name], grid_jobs[w.name] = _method_jobs(plan, w, chosen[w.name][0])
        runner.run([j for w in plan.workloads for j in recipe_jobs[w.name] + grid_jobs[w.name]])
        tuned_jobs: dict[str, dict[str, dict]] = {}
        for w in plan.workloads:
            tuned_jobs[w.name] = {}
            if grid_jobs[w.name]:
                base = chosen[w.name][0]
                for m in plan.methods:
                    if _tuned(plan, m):
                        tuned_jobs[w.name][m] = _select(plan, runner, w, base, m)
        runner.run([Job(w.name, m, _hp(g), chosen[w.name][0].schedule, chosen[w.name][0].lr, s, "tuned")
                    for w in plan.workloads for m, g in tuned_jobs[w.name].items() for s in plan.seeds(w.name)[1]])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    wall = time.perf_counter() - t_start

    per_task, summary_rows, recipe_rows = {}, {m: {} for m in plan.methods}, {m: {} for m in plan.methods}
    for ti, w in enumerate(plan.workloads):
        base, grid, widened = chosen[w.name]
        _, report = plan.seeds(w.name)
        get = lambda m, hp, s, phase: runner.get(Job(w.name, m, _hp(hp), base.schedule, base.lr, s, phase))  # noqa: E731
        base_runs = [get("plain", {}, s, "baseline") for s in report]
        target = stats.target_loss([stats.best_loss(r["records"]) for r in base_runs])
        rows = []
        for m in plan.methods:
            hp = _recipe_hparams(m, w.total_steps) if m in COMPETITORS else {}
            row = _row("recipe", m, hp, base_runs, [get(m, hp, s, "recipe") for s in report], target, seed=ti)
            rows.append(row)
            recipe_rows[m][w.name] = row
            summary_rows[m][w.name] = row
            if m in tuned_jobs[w.name]:
                g = tuned_jobs[w.name][m]
                trow = _row("tuned", m, g, base_runs, [get(m, g, s, "tuned") for s in report], target, seed=ti)
                rows.append(trow)
                if m in COMPETITORS:  # a jump method's headline stays at its defaults (its tuned row is beside it)
                    summary_rows[m][w.name] = trow
        per_task[w.name] = {
            "protocol": "coarse" if w.name in plan.coarse else "full",
            "recipe": {"optimizer": w.optimizer, "default_lr": w.lr, "weight_decay": w.weight_decay,
                       "total_steps": w.total_steps, "batch_size": w.batch_size, "warmup": w.warmup},
            "baseline": {"schedule": base.schedule, "lr": base.lr, "grid_median": base.median,
                         "interior": base.interior, "widened": widened, "lrs": grid},
            "grid": base.grid, "target": target,
            "baseline_steps_to_target": [stats.time_to_target(r["records"], target).steps for r in base_runs],
            "baseline_seconds_to_target": [stats.time_to_target(r["records"], target).seconds for r in base_runs],
            "rows": rows,
        }

    def to_summary(rows_by_method):
        return stats.summary([w.name for w in plan.workloads], {
            m: {t: stats.TaskResult(r["speedup_steps"]["speedup"], r["speedup_steps"]["lo"], r["speedup_steps"]["hi"],
                                    r["worse"]) for t, r in by_task.items()}
            for m, by_task in rows_by_method.items() if m in stats.SUMMARY_METHODS or m in plan.variants},
            extra=tuple(plan.variants))

    summary = to_summary(summary_rows)
    summary_recipe = to_summary(recipe_rows)
    seconds = {m: stats.geomean([r["speedup_seconds"]["speedup"] for r in by_task.values()])
               for m, by_task in summary_rows.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary_recipe.json", json.dumps(summary_recipe, indent=2) + "\n")
    figures = _plots(plan, runner, chosen, out)
    runs = sorted(runner.done.values(), key=lambda r: (r["task"], r["phase"], r["method"], json.dumps(r["hparams"], sort_keys=True),
                                                        r["schedule"], r["lr"], r["seed"]))
    timing = _timing(runs)
    table = _table(plan, per_task, summary, seconds, finfo, wall, timing)
    config = {"protocol": "tuned", "plan": plan.to_dict(), "forecasters": finfo,
              "jump_config": {s: jump_config_for(s).to_dict() for s in ("constant", "warmup_cosine")},
              "selection": ("baseline: lowest median best val loss over the grid seeds (ties: grid order), widened "
                            "while on an edge; the methods' own grids (competitors' GRID, gfm's JUMP_GRID): the same rule "
                            "on the grid seeds; every reported "
                            "row on the report seeds"),
              "schedulefree_base": "AdamW at the recipe's lr for RMSprop/Adagrad recipes (no Schedule-Free variant)",
              "threads_per_worker": 1, "workers": plan.workers, "cpu_count": os.cpu_count()}
    return BenchResult(
        results={"summary": summary, "summary_recipe": summary_recipe, "geomean_speedup_seconds": seconds,
                 "tasks": per_task, "timing": timing, "protocol_wall_seconds": wall, "runs": runs},
        table_md=table, config=config, seeds=sorted({*plan.grid_seeds, *plan.report_seeds}),
        figures=figures + [out / "summary.json", out / "summary_recipe.json"],
    )


def _timing(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Measured per-run wall seconds by (task, method) (medians), for the full run's estimate."""
    by: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        by.setdefault(r["task"], {}).setdefault(r["method"], []).append(r["run_seconds"])
    return {t: {m: {"runs": len(v), "median_seconds": statistics.median(v), "total_seconds": sum(v)}
                for m, v in ms.items()} for t, ms in by.items()}


def _fmt_sp(s: dict[str, float]) -> str:
    return f"{s['speedup']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}]"


def _table(plan: TunedPlan, per_task: dict, summary: dict, seconds: dict, finfo: dict, wall: float, timing: dict) -> str:
    lines = ["## Tuned protocol: speedup to the tuned baseline's target (issue 14)\n",
             "Speedup = median over the report seeds of the tuned baseline's steps (or wall seconds, all overhead "
             "included) to the target / the method's; [5th, 95th] percentile of a paired bootstrap (90%). A run that "
             "never reaches the target counts at its budget (its speedup is then an upper bound). Val loss / acc: "
             "medians at the equal budget, baseline → method. *recipe*: the method at its library's recommended "
             "settings; *tuned*: its own grid chosen on the grid seeds (never on the report seeds). Every method runs "
             "with the tuned baseline's optimizer, lr and schedule.\n"]
    if plan.coarse:
        lines.append(f"Coarser protocol (stated per task): {', '.join(plan.coarse)}: {plan.coarse_points}-point grid, "
                     f"warmup_cosine only, {len(plan.coarse_seeds[1])} seeds, competitors at recommended settings.\n")
    for task, d in per_task.items():
        b = d["baseline"]
        lines.append(f"### {task} ({d['protocol']} protocol; {d['recipe']['optimizer']}, {d['recipe']['total_steps']} "
                     f"steps)\n")
        lines.append(f"Tuned baseline: `{b['schedule']}` at lr {b['lr']:.4g} (default {d['recipe']['default_lr']:.4g}; "
                     f"{'interior' if b['interior'] else 'ON THE GRID EDGE'} of {len(b['lrs'][b['schedule']])} lrs, "
                     f"widened {b['widened']}x); target val loss {d['target']:.4f}; baseline steps to target "
                     f"{d['baseline_steps_to_target']}.\n")
        lines.append("| method | row | hparams | speedup steps | speedup seconds | reached | val loss @B | val acc @B | worse |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for r in d["rows"]:
            hp = ", ".join(f"{k}={v}" for k, v in r["hparams"].items()) or "-"
            lines.append(f"| {r['method']} | {r['row']} | {hp} | {_fmt_sp(r['speedup_steps'])} | "
                         f"{_fmt_sp(r['speedup_seconds'])} | {r['reached']}/{len(r['seeds'])} | "
                         f"{r['baseline_val_loss_end']:.4f} → {r['val_loss_end']:.4f} | "
                         f"{r['baseline_val_acc_end']:.3f} → {r['val_acc_end']:.3f} | {'yes' if r['worse'] else 'no'} |")
        lines.append("")
    lines.append("### Over tasks (summary.json: a competitor's tuned row where it was tuned, else the recipe row; "
                 "the jump methods at their defaults)\n")
    lines.append("| method | geomean speedup (steps) | geomean speedup (seconds) | tasks worse | per task (steps) |")
    lines.append("|---|---|---|---|---|")
    for m, s in summary["methods"].items():
        per = ", ".join(f"{t} {v['speedup']:.2f}" for t, v in s["per_task"].items())
        lines.append(f"| {m} | **{s['geomean_speedup']:.2f}x** | {seconds[m]:.2f}x | {s['tasks_worse']}/{len(summary['tasks'])} | {per} |")
    lines.append("")
    lines.append(f"Forecasters: {json.dumps(finfo)}")
    lines.append(f"\nProtocol wall time {wall:.1f} s on {plan.workers} single-threaded workers; per-run medians "
                 f"(s) by task: " + "; ".join(f"{t}: " + ", ".join(f"{m} {v['median_seconds']:.2f}" for m, v in ms.items())
                                             for t, ms in timing.items()))
    return "\n".join(lines) + "\n"


def _plots(plan: TunedPlan, runner: _Runner, chosen: dict, out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib not installed: no plots")
        return []
    paths = []
    for w in plan.workloads:
        base = chosen[w.name][0]
        seeds = plan.seeds(w.name)[1]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for r in sorted(runner.done.values(), key=lambda r: (r["method"], r["seed"])):
            if r["task"] != w.name or r["phase"] not in ("baseline", "recipe") or r["seed"] != seeds[0]:
                continue
            steps = [x[0] for x in r["records"]]
            loss = [x[2] for x in r["records"]]
            plain = r["method"] == "plain"
            ax.plot(steps, loss, "-" if plain or r["method"] == "gfm" else "--", lw=2.4 if plain else 1.2,
                    color="k" if plain else None, label="plain (tuned)" if plain else r["method"])
        ax.set_title(f"{w.name}: tuned plain ({base.schedule}, lr {base.lr:.3g}) vs methods, seed {seeds[0]}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("val loss")
        ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out / f"curves_{w.name}.png"
        tmp = path.with_name(path.stem + ".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(path)
        paths.append(path)
    return paths
