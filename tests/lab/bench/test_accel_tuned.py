"""The tuned protocol (``bench accel --protocol tuned``): plan, determinism across workers, an end-to-end quick run."""

import json
import math
from dataclasses import replace

import pytest
import torch

from gfm_accel.cli import main
from gfm_accel.lab.bench import accel_tuned
from gfm_accel.lab.bench.accel_tuned import QUICK_TASKS, Job, build_plan, jump_config_for, run_jobs
from gfm_accel.lab.bench.stats import SUMMARY_METHODS
from gfm_accel.lab.tasks.heldout import HELDOUT_NAMES, HeldoutWorkload


def test_plans_full_and_quick():
    full = build_plan()
    assert [w.name for w in full.workloads] == [*HELDOUT_NAMES, "char_gpt", "resnet_digits"]
    assert full.grid_points == 7 and full.schedules == ("constant", "warmup_cosine") and full.tune_methods
    assert full.grid_seeds == (0, 1, 2) and full.report_seeds == (100, 101, 102, 103, 104)
    assert full.task_schedules("char_gpt") == ("warmup_cosine",) and full.task_points("resnet_digits") == 5
    assert full.seeds("char_gpt") == ((0, 1, 2), (100, 101, 102))
    quick = build_plan(quick=True)
    assert tuple(w.name for w in quick.workloads) == QUICK_TASKS and quick.grid_points == 3
    assert len(quick.report_seeds) == 2 and not quick.tune_methods
    with pytest.raises(ValueError, match="overlap the grid seeds"):
        build_plan(seeds=[0, 100])
    with pytest.raises(ValueError, match="unknown tuned task"):
        build_plan(["nope"])


def test_heldout_workload_budget_in_steps_and_disjoint_guard():
    w = HeldoutWorkload("mlp_mnist1d")
    assert w.total_steps == 40 * 11 and w.optimizer == "adam" and w.lr == 1e-3  # 2800 samples / 256 = 11 steps
    val, guard = w.eval_sets()
    s = w.split()
    assert sum(len(y) for _, y in val) == len(s.y_val) == 800 and sum(len(y) for _, y in guard) == 400
    xb, yb = next(w.train_batches(0))
    assert xb.shape == (256, 40)
    # the same seed, the same initialization; another seed, another one; the global RNG untouched
    state = torch.random.get_rng_state()
    a, b, c = (next(w.build(s).model.parameters()).detach().clone() for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())


def test_lr_horizon_only_under_a_decaying_schedule():
    assert jump_config_for("warmup_cosine").lr_horizon and not jump_config_for("constant").lr_horizon
    assert jump_config_for("constant").n == 4 and jump_config_for("constant").tolerance == 0.3


def test_results_come_back_in_submission_order_with_the_same_numbers():
    import multiprocessing

    w = HeldoutWorkload("mlp_mnist1d_sgd", total_steps=6, limit=100)
    accel_tuned._STATE.update(workloads={w.name: w}, forecasters={})
    jobs = [Job(w.name, m, (), "warmup_cosine", 0.05, seed, "grid") for m in ("plain", "lookahead", "ema")
            for seed in (0, 1)]
    state = torch.random.get_rng_state()
    here = run_jobs(jobs)
    assert torch.equal(state, torch.random.get_rng_state())  # the runner draws from no global RNG
    with multiprocessing.get_context("fork").Pool(2, initializer=accel_tuned._init_worker) as pool:
        pooled = run_jobs(jobs, pool)
    assert [(r["method"], r["seed"]) for r in pooled] == [(j.method, j.seed) for j in jobs]
    assert [[x[2] for x in r["records"]] for r in pooled] == [[x[2] for x in r["records"]] for r in here]
    assert here[0]["records"] != here[1]["records"]  # seeds differ


def test_quick_protocol_end_to_end(tmp_path):
    out = tmp_path / "q"
    rc = main(["bench", "accel", "--protocol", "tuned", "--quick", "--tasks", "mlp_mnist1d_sgd", "--steps", "20",
               "--limit", "200", "--wnn-epochs", "2", "--workers", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"protocol", "tasks", "methods"} and summary["protocol"] == "tuned"
    assert summary["tasks"] == ["mlp_mnist1d_sgd"] and set(summary["methods"]) == set(SUMMARY_METHODS)
    for m, s in summary["methods"].items():
        assert set(s) == {"geomean_speedup", "tasks_worse", "per_task"}
        r = s["per_task"]["mlp_mnist1d_sgd"]
        assert set(r) == {"speedup", "lo", "hi", "worse"} and isinstance(r["worse"], bool)
        assert 0 < r["speedup"] < math.inf and r["lo"] <= r["speedup"] <= r["hi"], (m, r)
        assert s["geomean_speedup"] == pytest.approx(r["speedup"]) and s["tasks_worse"] == int(r["worse"])
    record = json.loads((out / "results.json").read_text())
    assert record["benchmark"] == "accel_tuned" and record["config"]["protocol"] == "tuned"
    task = record["results"]["tasks"]["mlp_mnist1d_sgd"]
    base = task["baseline"]
    assert base["lr"] in base["lrs"][base["schedule"]] and len(base["lrs"]["constant"]) >= 3
    assert {(p["schedule"], p["lr"]) for p in task["grid"]} >= {(base["schedule"], base["lr"])}
    assert all(len(p["best_losses"]) == 2 for p in task["grid"])
    base_best = [min(x[2] for x in r["records"]) for r in record["results"]["runs"] if r["phase"] == "baseline"]
    assert len(base_best) == 2 and task["target"] == pytest.approx(sum(base_best) / 2)  # median of 2 report seeds
    assert {r["method"] for r in task["rows"]} == set(SUMMARY_METHODS)
    assert all(len(r["records"]) == 21 for r in record["results"]["runs"])  # step 0 and every step of 20
    assert (out / "curves_mlp_mnist1d_sgd.png").stat().st_size > 0 and (out / "table.md").exists()
    assert not list(out.glob("*.tmp*"))


def test_journal_resumes_a_killed_run_and_refuses_another_plan(tmp_path, monkeypatch):
    w = HeldoutWorkload("mlp_mnist1d_sgd", total_steps=6, limit=100)
    plan = build_plan(["mlp_mnist1d_sgd"], steps=6, limit=100)
    accel_tuned._STATE.update(workloads={w.name: w}, forecasters={})
    from gfm_accel.lab.forecasters import make_forecaster

    accel_tuned._STATE["forecasters"] = {"linefit": make_forecaster("linefit")}
    jobs = [Job(w.name, m, hp, "constant", 0.05, 0, "grid")
            for m, hp in (("plain", ()), ("ema", (("decay", 0.9),)), ("linefit", (("tolerance", 0.0),)))]
    path = tmp_path / "j.jsonl"
    first = accel_tuned._Runner(None, accel_tuned.Journal(path, plan))
    first.run(jobs)
    with path.open("a") as f:
        f.write('{"task": "cut sho')  # a kill in the middle of a line
    calls = []
    monkeypatch.setattr(accel_tuned, "_execute", lambda job: calls.append(job) or {})
    again = accel_tuned._Runner(None, accel_tuned.Journal(path, plan))
    again.run(jobs)
    assert calls == []  # both runs came from the journal, the cut line was dropped
    assert [again.get(j)["records"] for j in jobs] == [json.loads(json.dumps(first.get(j)["records"])) for j in jobs]
    assert len(path.read_text().splitlines()) == 4  # header + three runs
    # a jump run reports its whole config as "hparams"; the journal keys it by the job's own
    res = first.get(jobs[2])
    assert "config" in res["hparams"] and res["key_hparams"] == {"tolerance": 0.0}
    assert accel_tuned._result_key(res) == jobs[2].key
    with pytest.raises(ValueError, match="key_hparams"):
        accel_tuned._result_key({k: v for k, v in res.items() if k != "key_hparams"})
    other = build_plan(["mlp_mnist1d_sgd"], steps=7, limit=100)
    with pytest.raises(ValueError, match="another plan"):
        accel_tuned.Journal(path, other)


def test_gfm_gets_its_own_grid_and_a_journal_survives_adding_methods(tmp_path):
    grid = accel_tuned.method_grid("gfm")
    assert len(grid) == 4 and {"tolerance": 0.0, "horizon": 30} in grid
    assert accel_tuned.method_grid("lookahead") == accel_tuned.METHODS["lookahead"].grid()
    # a grid point reaches the jump config the run uses
    w = HeldoutWorkload("mlp_mnist1d_sgd", total_steps=6, limit=100)
    accel_tuned._STATE.update(workloads={w.name: w}, forecasters={"gfm": None})
    job = Job(w.name, "gfm", (("horizon", 30), ("tolerance", 0.0)), "warmup_cosine", 0.05, 0, "method_grid")
    cfg = accel_tuned._method(job).jump.config
    assert (cfg.horizon, cfg.tolerance, cfg.lr_horizon) == (30, 0.0, True)
    # only the jump/competitor grids are added; the baseline choice is untouched
    plan = build_plan(["mlp_mnist1d_sgd"], steps=6, limit=100)
    base = accel_tuned.stats.BaselineChoice(schedule="constant", lr=0.05, median=1.0, interior=True, widen=None, grid=[])
    recipe, mgrid = accel_tuned._method_jobs(plan, plan.workloads[0], base)
    assert sum(j.method == "gfm" for j in mgrid) == 4 * len(plan.grid_seeds)
    assert not any(j.method in ("linefit", "wnn") for j in mgrid)
    few = replace(plan, methods=("gfm",), tune_jumps=())
    assert accel_tuned.plan_fingerprint(few) == accel_tuned.plan_fingerprint(plan)
    assert accel_tuned.plan_fingerprint(replace(plan, grid_seeds=(5, 6, 7))) != accel_tuned.plan_fingerprint(plan)


def test_jump_variants_are_named_by_their_spec_and_forecaster_bytes(tmp_path):
    shipped = {"forecaster": "shipped", "config": {"tolerance": 0.0}}
    a = accel_tuned.variant_methods({"tol0": shipped})
    b = accel_tuned.variant_methods({"tol0": {"forecaster": "shipped", "config": {"tolerance": 0.1}}})
    (name_a,), (name_b,) = a, b
    assert name_a.startswith("tol0@") and name_b.startswith("tol0@") and name_a != name_b
    assert accel_tuned.variant_methods({"tol0": dict(shipped)}) == a  # deterministic
    f = tmp_path / "f.safetensors"
    f.write_bytes(b"one")
    first = next(iter(accel_tuned.variant_methods({"v": {"forecaster": str(f)}})))
    f.write_bytes(b"two")  # the same path, other bytes: another method name, so no journal reuse
    second, spec = next(iter(accel_tuned.variant_methods({"v": {"forecaster": str(f)}}).items()))
    assert first != second and spec["sha256"] == __import__("hashlib").sha256(b"two").hexdigest()
    with pytest.raises(ValueError, match="does not exist"):
        accel_tuned.variant_methods({"v": {"forecaster": str(tmp_path / "missing.safetensors")}})
    with pytest.raises(TypeError, match="no_such_knob"):
        accel_tuned.variant_methods({"v": {"forecaster": "shipped", "config": {"no_such_knob": 1}}})
    with pytest.raises(ValueError, match="built-in method"):
        accel_tuned.variant_methods({"gfm": shipped})
    with pytest.raises(ValueError, match="unknown keys"):
        accel_tuned.variant_methods({"v": {"forecaster": "shipped", "horizon": 3}})
    # a variant's config reaches the run, over the schedule's jump config
    w = HeldoutWorkload("mlp_mnist1d_sgd", total_steps=6, limit=100)
    accel_tuned._STATE.update(workloads={w.name: w}, forecasters={name_a: None}, variants=a)
    cfg = accel_tuned._method(Job(w.name, name_a, (), "warmup_cosine", 0.05, 0, "recipe")).jump.config
    assert (cfg.tolerance, cfg.lr_horizon) == (0.0, True)
    plan = build_plan(["mlp_mnist1d_sgd"], steps=6, limit=100)
    with_variant = replace(plan, variants=a, methods=(*plan.methods, *a))
    assert with_variant.is_jump(name_a) and not plan.is_jump(name_a)
    assert accel_tuned.plan_fingerprint(with_variant) == accel_tuned.plan_fingerprint(plan)
    base = accel_tuned.stats.BaselineChoice(schedule="constant", lr=0.05, median=1.0, interior=True, widen=None, grid=[])
    recipe, mgrid = accel_tuned._method_jobs(with_variant, with_variant.workloads[0], base)
    assert sum(j.method == name_a for j in recipe) == len(plan.report_seeds)
    assert not any(j.method == name_a for j in mgrid)  # a variant is not tuned


def test_a_journal_subset_keeps_only_the_runs_the_new_plan_would_make(tmp_path):
    two = build_plan(["mlp_mnist1d_sgd", "mlp_mnist1d"], steps=6, limit=100)
    src = tmp_path / "all.jsonl"
    j = accel_tuned.Journal(src, two)
    for task in ("mlp_mnist1d_sgd", "mlp_mnist1d"):
        for seed in (0, 1):
            j.append({"task": task, "method": "plain", "key_hparams": {}, "schedule": "constant", "lr": 0.1,
                      "seed": seed, "records": [[0, 0.0, 1.0]]})
    one = build_plan(["mlp_mnist1d"], steps=6, limit=100)
    assert accel_tuned.task_fingerprint(one, "mlp_mnist1d") == accel_tuned.task_fingerprint(two, "mlp_mnist1d")
    assert accel_tuned.subset_journal(src, two, tmp_path / "one.jsonl", one) == 2
    runs = accel_tuned.Journal(tmp_path / "one.jsonl", one).runs
    assert [(r["task"], r["seed"]) for r in runs] == [("mlp_mnist1d", 0), ("mlp_mnist1d", 1)]
    longer = build_plan(["mlp_mnist1d"], steps=7, limit=100)  # another budget: nothing is the same run
    assert accel_tuned.subset_journal(src, two, tmp_path / "longer.jsonl", longer) == 0
    with pytest.raises(ValueError, match="exists"):
        accel_tuned.subset_journal(src, two, tmp_path / "one.jsonl", one)
    with pytest.raises(ValueError, match="another plan"):
        accel_tuned.subset_journal(src, one, tmp_path / "x.jsonl", one)
