"""The zoo at tuned learning rates: plan, sweep rule, step snapshots with lr_sum, files, resume, exclusions."""

import doctest
import hashlib
import json
import math
from dataclasses import replace

import pytest
import torch

from gfm_accel import cli
from gfm_accel.lab import zoo_tuned
from gfm_accel.lab.schedules import lr_factor
from gfm_accel.lab.zoo_tuned import (
    ZOO_TASKS,
    RecordedRun,
    ZooPlan,
    benchmark_pairs,
    build_tuned_zoo,
    estimate_runtime,
    record_run,
    sweep_lr,
)
from gfm_accel.trajectories import load_trajectories

TINY = dict(tasks=("mlp_relu_digits",), optimizers=("adam",), seeds=(0, 1), steps=10, sweep_points=3, max_widen=1)


def test_doctests_and_names():
    assert doctest.testmod(zoo_tuned, optionflags=doctest.ELLIPSIS).failed == 0
    assert all(isinstance(n, str) and hasattr(zoo_tuned, n) for n in zoo_tuned.__all__)


def test_plan_counts_round_trip_and_validation():
    full = ZooPlan()
    assert full.n_runs == 8 * 3 * 2 * 3 * 4 == 576 >= 500
    assert {t.arch for t in ZOO_TASKS.values()} == {"mlp", "preact_resnet", "gru_rows", "lstm_patch", "tfm_rows",
                                                   "chargpt_small"}
    assert set(full.optimizers) >= {"adam", "adamw", "sgdm"} and full.schedules == ("constant", "warmup_cosine")
    assert full.multiples == (0.5, 1.0, 2.0) and full.every == 5
    assert ZooPlan.from_json(full.to_json()) == full and ZooPlan.quick().n_runs == 24
    assert full.task("lstm_patch_mnist1d").total_steps == 300 and full.sweep_steps("lstm_patch_mnist1d") == 150
    assert ZooPlan(steps=10).sweep_steps("mlp_relu_digits") == 5
    for bad, match in [(dict(tasks=("mlp_digits",)), "unknown tasks"), (dict(steps=12), "not a multiple of every"),
                       (dict(seeds=(0, 0)), "without repeats"), (dict(multiples=(0.5, -1.0)), "multiples"),
                       (dict(optimizers=("lamb",)), "unknown optimizers"), (dict(sweep_fraction=0.0), "sweep_fraction")]:
        with pytest.raises(ValueError, match=match):
            ZooPlan(**bad)


def test_no_zoo_task_is_a_benchmark_task():
    from gfm_accel.lab.bench.accel_tuned import LARGE_TASKS
    from gfm_accel.lab.tasks.fresh import FRESH_TASKS
    from gfm_accel.lab.tasks.heldout import HELDOUT_NAMES
    from gfm_accel.lab.tasks.resnet import ResNetTask

    bench = benchmark_pairs()
    # every task the tuned protocol can run is in the exclusion list
    assert set(bench) == {*HELDOUT_NAMES, *LARGE_TASKS, *FRESH_TASKS} and len(bench) == 14
    assert ResNetTask().dataset == "digits" and bench["vit_digits"] == ("digits", "vit")
    zoo = {name: (t.data, t.arch) for name, t in ZOO_TASKS.items()}
    clash = {z: b for z, pz in zoo.items() for b, pb in bench.items() if pz == pb}
    assert not clash, f"zoo tasks that are benchmark tasks: {clash}"
    assert not set(zoo) & set(bench)


def test_step_snapshots_carry_lr_sum_of_the_schedule_and_losses():
    task = ZooPlan(steps=20).task("mlp_relu_digits")
    lr = 3e-3
    state = torch.get_rng_state()
    r = record_run(task, "adam", lr, "warmup_cosine", 0, every=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert r.finite and r.steps == [0, 5, 10, 15, 20] and tuple(r.weights.shape) == (5, 4810)
    want = [0.0] + [sum(lr * lr_factor("warmup_cosine", s, 20, 0.05) for s in range(5 * (t - 1), 5 * t))
                    for t in range(1, 5)]
    assert r.lr_sum.dtype == torch.float32
    assert torch.allclose(r.lr_sum.double(), torch.tensor(want, dtype=torch.float64), atol=1e-6, rtol=0)
    assert r.lr_sum[1] > r.lr_sum[2] > r.lr_sum[3] > r.lr_sum[4] > 0  # cosine decay after one warmup step
    assert torch.isfinite(r.loss).all() and torch.isfinite(r.val_loss).all() and r.val_loss[-1] < r.val_loss[0]
    assert not torch.equal(r.weights[0], r.weights[-1])
    c = record_run(task, "sgdm", 0.1, "constant", 0, every=10)
    assert c.lr_sum.tolist() == pytest.approx([0.0, 1.0, 1.0]) and c.steps == [0, 10, 20]
    again = record_run(task, "adam", lr, "warmup_cosine", 0, every=5)
    assert torch.equal(again.weights, r.weights)  # seeded: the same run twice
    with pytest.raises(ValueError, match="dividing the budget"):
        record_run(task, "adam", lr, "constant", 0, every=3)


def _fake_record(score):
    """A record_run stand-in whose best val loss is ``score(lr)``; counts its calls."""
    calls = []

    def fake(task, optimizer, lr, schedule, seed, *, every, keep_weights=True):
        calls.append(lr)
        v = score(lr)
        return RecordedRun(torch.zeros(1, 2), torch.zeros(1), torch.tensor([v]), torch.zeros(1), torch.zeros(1), [0],
                           None, 0.5, math.isfinite(v))

    return fake, calls


def test_sweep_widens_until_the_best_is_interior(monkeypatch):
    fake, calls = _fake_record(lambda lr: math.log2(lr / 0.01) ** 2)  # best at 0.01
    monkeypatch.setattr(zoo_tuned, "record_run", fake)
    plan = ZooPlan(sweep_points=3, max_widen=3, steps=10)
    s = sweep_lr(plan, "mlp_relu_digits", "adam", "constant")  # centre 2e-3: 1e-3, 2e-3, 4e-3, then 8e-3, 1.6e-2
    lrs = [p["lr"] for p in s["points"]]
    assert lrs == pytest.approx([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]) and len(calls) == 5
    assert s["best_lr"] == pytest.approx(8e-3) and s["interior"] and s["widened"] == 2 and s["seconds"] == 2.5
    # every point diverges: widened downwards max_widen times, the best stays on the edge
    fake, calls = _fake_record(lambda lr: math.inf)
    monkeypatch.setattr(zoo_tuned, "record_run", fake)
    s = sweep_lr(replace(plan, max_widen=1), "mlp_relu_digits", "sgdm", "constant")
    assert not s["interior"] and s["widened"] == 1 and s["points"][0]["best_val_loss"] is None
    assert s["best_lr"] == pytest.approx(0.1 / 4)


def test_build_writes_loadable_files_with_metadata_and_resumes(tmp_path, monkeypatch):
    plan = ZooPlan(**TINY)
    state = torch.get_rng_state()
    m = build_tuned_zoo(plan, tmp_path, command="test")
    assert torch.equal(torch.get_rng_state(), state)
    assert m["complete"] and m["runs"] == plan.n_runs == 12 and len(m["files"]) == 6 and m["command"] == "test"
    assert json.loads((tmp_path / "manifest.json").read_text()) == m
    assert m["runtime"]["total_seconds"] > 0 and m["machine"]
    for f in m["files"]:
        path = tmp_path / f["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
        tr = load_trajectories(path)
        md = tr.metadata
        assert (tr.N, tr.T, tr.D) == (2, 3, 4810) and tr.steps == [0, 5, 10]
        assert tr.extra["lr_sum"].dtype == torch.float32 and tuple(tr.extra["lr_sum"].shape) == (2, 3)
        assert torch.all(tr.extra["lr_sum"][:, 0] == 0) and tr.val_loss is not None and tr.loss is not None
        sweep = json.loads((tmp_path / "sweeps" / f"mlp_relu_digits__adam__{md['schedule']}.json").read_text())
        assert md["lr"] == pytest.approx(sweep["best_lr"] * md["lr_multiple"]) and md["seeds"] == [0, 1]
        assert (md["task"], md["arch"], md["optimizer"], md["total_steps"]) == ("mlp_relu_digits", "mlp", "adam", 10)
        assert [r["seed"] for r in md["runs"]] == [0, 1] and tr.spec.numel == 4810
        if md["schedule"] == "constant":  # lr_sum = 5 steps at the constant lr
            assert torch.allclose(tr.extra["lr_sum"][:, 1:], torch.full((2, 2), 5 * md["lr"]), atol=1e-7)
    # resume: nothing left to run
    fake, calls = _fake_record(lambda lr: 1.0)
    monkeypatch.setattr(zoo_tuned, "record_run", fake)
    assert build_tuned_zoo(plan, tmp_path)["runs"] == 12 and calls == []
    # a lost group is rerun alone (its sweep is reused: 2 seeds, no sweep points)
    lost = m["files"][0]["file"]
    (tmp_path / lost).unlink()
    (tmp_path / lost.replace(".safetensors", ".json")).unlink()
    monkeypatch.undo()
    calls, real = [], zoo_tuned.record_run

    def counting(*a, **k):
        calls.append(a[2])
        return real(*a, **k)

    monkeypatch.setattr(zoo_tuned, "record_run", counting)
    m2 = build_tuned_zoo(plan, tmp_path)
    assert len(calls) == 2 and m2["complete"] and (tmp_path / lost).exists()
    with pytest.raises(ValueError, match="another plan"):
        build_tuned_zoo(replace(plan, seeds=(0,)), tmp_path)


def test_shards_split_the_sweep_keys(tmp_path):
    plan = ZooPlan(**{**TINY, "seeds": (0,), "multiples": (1.0,)})
    a = build_tuned_zoo(plan, tmp_path, shard=(0, 2))
    assert not a["complete"] and [f["schedule"] for f in a["files"]] == ["constant"]
    b = build_tuned_zoo(plan, tmp_path, shard=(1, 2))
    assert b["complete"] and len(b["files"]) == 2
    with pytest.raises(ValueError, match="shard"):
        build_tuned_zoo(plan, tmp_path, shard=(2, 2))


def test_estimate_and_command_line(tmp_path, capsys):
    plan = ZooPlan(**TINY)
    est = estimate_runtime(plan, probe_steps=5)
    e = est["per_task"]["mlp_relu_digits"]
    assert e["runs"] == 12 and e["sweep_runs"] == 2 * 4
    assert e["seconds"] == pytest.approx(e["seconds_per_step"] * (12 * 10 + 8 * 5)) and est["total_seconds"] == e["seconds"]
    args = ["zoo", "--tuned", "--quick", "--tasks", "mlp_relu_digits", "--steps", "10", "--seeds", "0"]
    assert cli.main(args + ["--estimate"]) == 0 and "total ~" in capsys.readouterr().out
    assert cli.main(args + ["--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["complete"] and m["runs"] == 12 and m["plan"]["optimizers"] == ["adam", "sgdm"]
    assert cli.main(["zoo", "--tuned", "--shard", "x", "--out", str(tmp_path)]) == 2
