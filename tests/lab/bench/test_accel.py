"""The acceleration benchmark: metric arithmetic on hand-made runs, and a tiny end-to-end run."""

import json
import math

import pytest
import torch

from gfm_accel.lab.bench.accel import expand_task_names, load_source, pair_metrics, probe_line, probe_task
from gfm_accel.lab.datasets import load_split
from gfm_accel.lab.forecasters import make_forecaster, windows
from gfm_accel.lab.jumps import parse_schedule
from gfm_accel.lab.tasks.accel import ALL_TASKS, TASKS, TEST_TASKS, VALIDATION_TASKS, build_model, train_run
from gfm_accel.lab.training import RunLog, epochs_to_reach
from gfm_accel.cli import main


def _log(method, losses, accs=None, wall_step=1.0, jumps=(), train=None):
    accs = accs or [0.5] * len(losses)
    return RunLog("t", 0, method, val_loss=list(losses), val_acc=list(accs),
                  train_loss=list(train) if train is not None else [math.nan] * len(losses), wall=[wall_step * i for i in range(len(losses))],
                  jump_seconds=0.5, jumps=list(jumps))


def test_epochs_to_reach():
    assert epochs_to_reach([3.0, 2.0, 1.0, 0.5], 1.0) == 2
    assert epochs_to_reach([3.0, 2.0, 1.0, 0.5], 0.1) is None
    assert epochs_to_reach([float("nan"), 0.5], 1.0) == 1


def test_pair_metrics_numbers():
    # B = 8; plain reaches its best (0.2) at epoch 8; the jump run gets there at epoch 4.
    plain = _log("plain", [2.0, 1.6, 1.2, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2], accs=[0.1 * i for i in range(9)])
    jumps = [{"accepted": True, "alpha": 1.0}, {"accepted": False, "alpha": None}]
    fast = _log("gfm", [2.0, 1.6, 1.0, 0.5, 0.2, 0.15, 0.15, 0.15, 0.15], wall_step=1.25, jumps=jumps)
    m = pair_metrics(plain, fast)
    best = m["targets"]["best"]
    assert best["target"] == 0.2 and best["plain_epochs"] == 8 and best["jump_epochs"] == 4
    assert best["speedup"] == pytest.approx(2.0)
    assert best["plain_seconds"] == pytest.approx(8.0) and best["jump_seconds"] == pytest.approx(5.0)
    quarter = m["targets"]["quarter"]  # plain loss after B/4 = 2 epochs: 1.2
    assert quarter["target"] == 1.2 and quarter["plain_epochs"] == 2 and quarter["jump_epochs"] == 2
    assert m["targets"]["half"]["jump_epochs"] == 3  # plain loss at epoch 4 is 0.8
    assert m["equal_epochs"]["end"]["jump_loss"] == 0.15 and m["equal_epochs"]["end"]["plain_acc"] == pytest.approx(0.8)
    assert m["jumps"]["accept_rate"] == 0.5 and m["jumps"]["attempts"] == 2
    # A run that never reaches the best: "not reached", and the speedup bound plain/B.
    slow = _log("linear", [2.0] + [0.9] * 8)
    s = pair_metrics(plain, slow)["targets"]["best"]
    assert s["jump_epochs"] is None and s["speedup"] is None and s["speedup_bound"] == pytest.approx(1.0)


def test_pair_metrics_train_loss_target():
    # The validation targets use the val curves, the "train" target the training-loss curves:
    # the plain run's lowest training loss (0.1, epoch 4) is reached by the jump run at epoch 2.
    val = [2.0, 1.5, 1.0, 0.8, 0.7]
    plain = _log("plain", val, train=[math.nan, 1.0, 0.5, 0.2, 0.1])
    fast = _log("gfm", val, train=[math.nan, 0.6, 0.1, 0.05, 0.04])
    m = pair_metrics(plain, fast)
    tr = m["targets"]["train"]
    assert tr["target"] == 0.1 and tr["plain_epochs"] == 4 and tr["jump_epochs"] == 2 and tr["speedup"] == 2.0
    assert m["targets"]["best"]["speedup"] == 1.0  # same val curve
    # runs without training losses (all NaN) have no "train" target
    assert "train" not in pair_metrics(_log("plain", val), _log("gfm", val))["targets"]


def test_pair_metrics_rejects_different_budgets():
    with pytest.raises(ValueError, match="different budgets"):
        pair_metrics(_log("plain", [1.0, 0.5]), _log("gfm", [1.0, 0.5, 0.4]))


def test_parse_schedule():
    assert parse_schedule("periodic:n=4,K=10,P=5") == {"mode": "periodic", "n": 4, "horizon": 10, "every": 5}
    assert parse_schedule("far:n=9") == {"mode": "far", "n": 9}
    assert parse_schedule("periodic:n=4,K=10,P=5,steps=5,tol=0.3,opt=keep") == {
        "mode": "periodic", "n": 4, "horizon": 10, "every": 5, "unit": "step", "every_n_steps": 5,
        "tolerance": 0.3, "optimizer_state": "keep"}
    for bad in ("sideways:n=4", "periodic:q=3", "periodic:n=x"):
        with pytest.raises(ValueError, match="schedule"):
            parse_schedule(bad)


def test_windows_and_ridge_fit():
    w = torch.arange(2 * 6 * 3, dtype=torch.float32).view(2, 6, 3)
    win = windows(w, 4)
    assert win.shape == (2 * 3, 4, 3)
    assert torch.equal(win[2], w[0, 1:5]) and torch.equal(win[3], w[1, 1:5])
    # ridge_coord fitted on exactly-linear windows extrapolates them exactly
    t = torch.arange(12.0)
    lin = (t.view(1, 12, 1) * torch.tensor([0.5, -1.0, 2.0])).repeat(3, 1, 1) + torch.randn(3, 1, 3)
    f = make_forecaster("ridge_coord", n=2, m=6, source=(lin, None))
    pred = f.forecast(lin[0, 3:6], 6)  # w_3..w_5 re-indexed as w_0..w_2; m=6 -> w_9
    assert torch.allclose(pred, lin[0, 9], atol=1e-3)


def test_load_source_merges_files_along_d(tmp_path):
    from gfm_accel.params import ParamSpec
    from gfm_accel.trajectories import save_trajectories

    a, b = torch.randn(3, 6, 10), torch.randn(4, 5, 6)  # Linear(4, 2) and Linear(2, 2) layouts
    save_trajectories(tmp_path / "a.safetensors", a, spec=ParamSpec.from_model(torch.nn.Linear(4, 2)).to_dict())
    save_trajectories(tmp_path / "b.safetensors", b, spec=ParamSpec.from_model(torch.nn.Linear(2, 2)).to_dict())
    w, spec, desc = load_source([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    assert w.shape == (3, 5, 16) and spec.numel == 16 and len(spec) == 4
    assert torch.equal(w[:, :, :10], a[:, :5]) and torch.equal(w[:, :, 10:], b[:3])
    assert spec.names[2] == "b/weight" and spec.entries[2].offset == 10 and "2 files" in desc


def test_tasks_are_seeded_and_paired():
    task = TASKS["mlp_mnist1d"].with_epochs(2)
    split = load_split(task.dataset, 200)
    assert len(split.x_train) == 200 and len(split.x_guard) == 400 and len(split.x_val) == 800
    a, b = train_run(task, 3, split=split), train_run(task, 3, split=split)
    assert a.val_loss == b.val_loss and len(a.val_loss) == 3
    assert a.val_loss[-1] < a.val_loss[0]  # it learns
    m1, m2 = build_model(TASKS["vit_digits"], load_split("digits", 50), 0), build_model(TASKS["vit_digits"], load_split("digits", 50), 0)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


def test_train_run_step_fn_records_step_snapshots():
    """``step_fn`` sees every optimizer step: a WeightRecorder started at epoch 0 snapshots every 5 steps."""
    from gfm_accel import WeightRecorder

    task = TASKS["mlp_mnist1d"].with_epochs(2)
    split = load_split(task.dataset, 200)  # 200 samples, batch 256: one step per epoch
    task = task.__class__(**{**task.to_dict(), "batch_size": 32})  # 7 steps per epoch, 14 in all
    holder = {}
    log = train_run(task, 0, split=split, record_fn=lambda m, e: holder.setdefault("rec", WeightRecorder(m, every=5)),
                    step_fn=lambda m: holder["rec"].on_step())
    rec = holder["rec"]
    assert rec.optimizer_steps == 14 and rec.steps == [0, 5, 10]
    init = torch.cat([p.detach().flatten() for p in build_model(task, split, 0).parameters()])
    assert torch.equal(rec.weights()[0], init) and not torch.equal(rec.weights()[-1], init)
    assert log.val_loss == train_run(task, 0, split=split).val_loss  # recording does not change the run


def test_probe_task_reuses_plain_runs_and_matches_pair_metrics():
    from gfm_accel.forecast.simple import LinearExtrapolationForecaster
    from gfm_accel.jump import GFMJump

    task = TASKS["mlp_mnist1d"].with_epochs(6)
    make = lambda: GFMJump(LinearExtrapolationForecaster(), mode="periodic", n=2, horizon=2, every=2, tolerance=0.3)  # noqa: E731
    plain = {}
    res = probe_task(task, [0, 1], make, plain=plain)
    assert sorted(plain) == [("mlp_mnist1d", 0), ("mlp_mnist1d", 1)]
    assert {k: len(v) for k, v in res.items()} == {"best": 2, "quarter": 2, "half": 2, "dloss": 2, "accept": 2}
    m = pair_metrics(plain["mlp_mnist1d", 1], train_run(task, 1, jump=make()))
    assert res["dloss"][1] == pytest.approx(m["equal_epochs"]["end"]["jump_loss"] - m["equal_epochs"]["end"]["plain_loss"])
    assert res["accept"][1] == (m["jumps"]["accept_rate"] or 0.0)
    assert probe_line("mlp_mnist1d", res).split()[:2] == ["mlp_mnist1d", "best"]


def test_task_sets():
    assert expand_task_names(["heldout"]) == list(TASKS)
    assert expand_task_names(["validation", "gru_mnist1d", "mlp_mnist1d"]) == [*VALIDATION_TASKS, "mlp_mnist1d"]
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        expand_task_names(["nope"])
    # the validation tasks are new (architecture, dataset) combinations: none is a main task's
    combos = {(t.arch, t.dataset) for t in TASKS.values()}
    assert not combos & {(t.arch, t.dataset) for t in VALIDATION_TASKS.values()}
    assert expand_task_names(["test"]) == list(TEST_TASKS)
    assert set(ALL_TASKS) == set(TASKS) | set(VALIDATION_TASKS) | set(TEST_TASKS)
    assert len(ALL_TASKS) == len(TASKS) + len(VALIDATION_TASKS) + len(TEST_TASKS)  # no name shared


@pytest.mark.parametrize("name, d", [("gru_mnist1d", 3690), ("tfm_mnist1d", 18026), ("cnn1d_digits", 13578),
                                     ("lstm_digits", 4810), ("mlp_mnist1d_sgd", 23050), ("cnn1d_mnist1d_adam", 11658)])
def test_validation_and_test_tasks_train(name, d):
    task = ALL_TASKS[name].with_epochs(3)
    log = train_run(task, 0)
    assert log.weights_d == d
    assert all(math.isfinite(v) for v in log.val_loss) and log.train_loss[3] < log.train_loss[1]


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "accel"
    rc = main(["bench", "accel", "--quick", "--epochs", "8", "--limit", "200", "--methods", "linear,ridge_coord",
               "--schedule", "periodic:n=2,K=4,P=3", "--source", "generate", "--source-seeds", "1", "--out", str(out), "--no-progress"])
    assert rc == 0
    record = json.loads((out / "results.json").read_text())
    assert record["benchmark"] == "accel" and record["quick"] is True and record["seeds"] == [0]
    pairs = record["results"]["pairs"]
    assert {p["method"] for p in pairs} == {"linear", "ridge_coord"}
    for p in pairs:
        # due after epochs 3 and 6 (P = 3); epoch 6's target (6 + K = 10) lies past B = 8: skipped
        assert p["jumps"]["attempts"] == 1
        assert p["targets"]["best"]["plain_epochs"] is not None
    runs = record["results"]["runs"]
    plain = [r for r in runs if r["method"] == "plain"][0]
    assert len(plain["val_loss"]) == 9 and plain["wall"][-1] > 0
    table = (out / "table.md").read_text()
    assert "| mlp_mnist1d | linear |" in table and "mean speedup over tasks" in table
    assert (out / "val_loss.png").stat().st_size > 1000


def test_step_unit_schedule_jumps_every_k_steps():
    # 200 samples / batch 256 -> 1 optimizer step per epoch; snapshots every 2 steps, a window of
    # n + 1 = 3 snapshots, a jump every P = 2 snapshots, K = 1 snapshot (2 steps) ahead:
    # attempts after steps 4 and 8 of 10 (both targets, 6 and 10, lie within the run).
    from gfm_accel.forecast.simple import LineFitForecaster
    from gfm_accel.jump import GFMJump

    task = TASKS["mlp_mnist1d"].with_epochs(10)
    split = load_split(task.dataset, 200)
    jump = GFMJump(LineFitForecaster(), mode="periodic", unit="step", every_n_steps=2, n=2, horizon=1, every=2)
    log = train_run(task, 0, split=split, jump=jump, method="linefit")
    assert [r["step"] for r in log.jumps] == [4, 8]
    assert jump.total == 10  # attached with the budget in optimizer steps
    assert len(log.val_loss) == 11 and log.jump_seconds > 0
