"""GFMJump with the real transformers.Trainer and a tiny GPT-2 built from a config."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from _integration_models import flat_params, lm_datasets, tiny_gpt2, tiny_training_args  # noqa: E402
from gfm_accel.forecast.simple import LinearExtrapolationForecaster  # noqa: E402
from gfm_accel.integrations.hf import STATE_FILE, GFMJump  # noqa: E402


class Probe(TrainerCallback):
    """Copies the flat parameters (and optimizer state) at train begin and at each epoch/step end."""

    def __init__(self, unit: str = "epoch") -> None:
        self.unit = unit
        self.weights: dict[int, torch.Tensor] = {}
        self.opt_state: dict[int, dict] = {}

    def _grab(self, key: int, model, optimizer) -> None:
        self.weights[key] = flat_params(model)
        inner = getattr(optimizer, "optimizer", optimizer)
        self.opt_state[key] = {
            i: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
            for i, s in enumerate(inner.state.values())
        }

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kw):
        if state.global_step == 0:
            self._grab(0, model, optimizer)

    def on_epoch_end(self, args, state, control, model=None, optimizer=None, **kw):
        if self.unit == "epoch":
            self._grab(round(state.epoch), model, optimizer)

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kw):
        if self.unit == "step":
            self._grab(state.global_step, model, optimizer)


class LogSpy(TrainerCallback):
    """Every logs dict the Trainer's on_log event delivers (what reporters like TensorBoard see)."""

    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kw):
        self.logs.append(dict(logs))


class StopAfter(TrainerCallback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kw):
        if round(state.epoch) >= self.epochs:
            control.should_training_stop = True


class ConstantForecaster:
    """Returns a fixed vector (possibly NaN, or of the wrong size)."""

    def __init__(self, fn, expected_dim=None) -> None:
        self.fn = fn
        self.expected_dim = expected_dim

    def forecast(self, prefix, m, *, spec=None):
        return self.fn(prefix)


def _args(out, **kw) -> TrainingArguments:
    return tiny_training_args(out, **{"data_seed": 0, **kw})


def _trainer(out, callbacks, model=None, **kw) -> Trainer:
    train, held_out = lm_datasets()
    return Trainer(
        model=model if model is not None else tiny_gpt2(),
        args=_args(out, **kw),
        train_dataset=train,
        eval_dataset=held_out,
        callbacks=callbacks,
    )


def _jump_logs(trainer) -> list[dict]:
    return [e for e in trainer.state.log_history if "gfm/step" in e]


def test_epoch_far_jump_lands_on_the_forecast_and_is_logged(tmp_path):
    before, after = Probe(), Probe()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    spy = LogSpy()
    trainer = _trainer(tmp_path, [before, jump, after, spy])
    trainer.train()

    assert len(jump.history) == 1
    rec = jump.history[0]
    # 64 blocks / 16 = 4 steps per epoch; far target = the planned end (5 epochs).
    assert (rec.step, rec.n, rec.m, rec.mode) == (2, 2, 5, "far")
    assert rec.loss_before is not None and len(rec.losses_after) >= 1  # guard from the eval dataset
    assert rec.accepted, rec
    w1, w2 = before.weights[1], before.weights[2]
    expected = w2 + rec.alpha * (5 - 2) * (w2 - w1)
    assert torch.allclose(after.weights[2], expected, atol=1e-5)
    assert not torch.equal(after.weights[2], w2)
    # The guard's held-out loss: tolerance 1% of the loss before.
    assert rec.losses_after[-1] <= rec.loss_before * 1.01 + 1e-12

    logs = _jump_logs(trainer)
    assert len(logs) == 1
    assert logs[0]["gfm/step"] == 2.0 and logs[0]["gfm/m"] == 5.0 and logs[0]["gfm/accepted"] == 1.0
    assert logs[0]["step"] == 8  # global step at the end of epoch 2
    assert logs[0]["gfm/alpha"] == rec.alpha
    # Training went on after the jump: 5 epochs, 20 optimizer steps.
    assert trainer.state.global_step == 20
    # The jump reached the on_log event (reporters), and the Trainer's own per-epoch loss
    # log of that epoch was not swallowed.
    assert [e["gfm/step"] for e in spy.logs if "gfm/step" in e] == [2.0]
    assert [e["epoch"] for e in trainer.state.log_history if "loss" in e] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_max_steps_schedule_step_unit(tmp_path):
    before, after = Probe("step"), Probe("step")
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, unit="step", every_n_steps=2, guard=False, tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [before, jump, after], max_steps=10, num_train_epochs=1, eval_strategy="no")
    trainer.train()

    assert trainer.state.global_step == 10
    assert len(jump.history) == 1
    rec = jump.history[0]
    # Snapshots at steps 0, 2, 4; target m = max_steps // every_n_steps = 5 snapshot units.
    assert (rec.step, rec.m, rec.accepted, rec.alpha, rec.reason) == (4, 5, True, 1.0, "accepted (no guard)")
    w2, w4 = before.weights[2], before.weights[4]
    assert torch.allclose(after.weights[4], w4 + (5 - 2) * (w4 - w2), atol=1e-5)
    assert jump.core.recorder.steps == [0, 2, 4]
    logs = _jump_logs(trainer)
    assert [(e["gfm/step"], e["step"]) for e in logs] == [(4.0, 4)]


def test_max_steps_with_epoch_unit_reads_the_planned_epochs(tmp_path):
    # 4 steps per epoch and max_steps=14: the Trainer plans ceil(14 / 4) = 4 epochs.
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=False, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [jump], max_steps=14, eval_strategy="no")
    trainer.train()
    assert [(r.step, r.m) for r in jump.history] == [(2, 4)]
    assert jump.core.total == 4


def test_periodic_mode_jumps_every_window(tmp_path):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="periodic", n=2, horizon=1, alpha=0.5, unit="epoch", tolerance=0.01, optimizer_state="reset", every=2)
    trainer = _trainer(tmp_path, [jump], num_train_epochs=6)
    trainer.train()
    # Windows of n+1 = 3 snapshots; after an accepted jump the window restarts at the jumped
    # weights, so jumps come at epochs 2, 4, 6 (or later when one is rejected).
    steps = [r.step for r in jump.history]
    assert steps[0] == 2 and all(r.m == 3 for r in jump.history)
    assert len(_jump_logs(trainer)) == len(jump.history) >= 2


def test_guard_rejection_restores_weights_and_optimizer_exactly(tmp_path):
    before, after = Probe(), Probe()
    far_away = ConstantForecaster(lambda prefix: prefix[-1] + 50.0)
    jump = GFMJump(forecaster=far_away, mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [before, jump, after], num_train_epochs=4, optim="adamw_torch")
    trainer.train()

    rec = jump.history[0]
    assert not rec.accepted and rec.reason == "rejected by the guard"
    assert rec.alphas_tried == [1.0, 0.5, 0.25] and len(rec.losses_after) == 3
    assert all(v > rec.loss_before * 1.01 for v in rec.losses_after)
    assert torch.equal(after.weights[2], before.weights[2])  # bit for bit
    for i, s in before.opt_state[2].items():
        for k, v in s.items():
            got = after.opt_state[2][i][k]
            assert torch.equal(got, v) if torch.is_tensor(v) else got == v
    assert _jump_logs(trainer)[0]["gfm/accepted"] == 0.0
    assert trainer.state.global_step == 16


@pytest.mark.parametrize(
    "fn, reason",
    [
        (lambda p: torch.full_like(p[-1], float("nan")), "skipped: forecast NaN/Inf"),
        (lambda p: torch.zeros(p.shape[-1] + 3), "skipped: forecast has wrong size"),
    ],
)
def test_bad_forecast_skips_the_jump_and_training_goes_on(tmp_path, fn, reason, caplog):
    before, after = Probe(), Probe()
    jump = GFMJump(forecaster=ConstantForecaster(fn), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [before, jump, after], num_train_epochs=4)
    with caplog.at_level("WARNING"):
        trainer.train()
    assert [(r.step, r.accepted, r.reason) for r in jump.history] == [(2, False, reason)]
    assert torch.equal(after.weights[2], before.weights[2])
    assert trainer.state.global_step == 16
    assert any("no jump" in m for m in caplog.messages)


def test_forecaster_for_another_model_is_refused_at_start(tmp_path):
    wrong = ConstantForecaster(lambda p: p[-1], expected_dim=1234)
    trainer = _trainer(tmp_path, [GFMJump(forecaster=wrong, mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset")])
    with pytest.raises(ValueError, match="D=1234"):
        trainer.train()


def test_guard_true_without_held_out_data_is_a_clear_error(tmp_path):
    train, _ = lm_datasets()
    trainer = Trainer(
        model=tiny_gpt2(),
        args=_args(tmp_path, eval_strategy="no"),
        train_dataset=train,
        callbacks=[GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=True, unit="epoch", tolerance=0.01, optimizer_state="reset")],
    )
    with pytest.raises(ValueError, match="held-out data"):
        trainer.train()


def test_resume_in_the_middle_of_observation_makes_the_same_jump(tmp_path):
    def cfg():
        return GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=3, alpha=0.5, unit="epoch", tolerance=0.01, optimizer_state="reset")

    # Uninterrupted run: 6 epochs, jump after epoch 3 (snapshots w_0..w_3), target m = 6.
    ref = cfg()
    ref_trainer = _trainer(tmp_path / "ref", [ref], num_train_epochs=6)
    ref_trainer.train()
    assert [(r.step, r.m) for r in ref.history] == [(3, 6)]

    # Same run, interrupted after epoch 2 (observation: w_0, w_1, w_2 held), checkpointed.
    first = cfg()
    run = tmp_path / "run"
    t1 = _trainer(run, [first, StopAfter(2)], num_train_epochs=6, save_strategy="epoch")
    t1.train()
    assert first.history == [] and first.core.recorder.steps == [0, 1, 2]
    ckpt = run / "checkpoint-8"
    assert (ckpt / STATE_FILE).is_file()

    # Resumed by a fresh process-like setup: new model object, new callback.
    second = cfg()
    t2 = _trainer(run, [second], num_train_epochs=6, save_strategy="epoch", model=tiny_gpt2(seed=123))
    t2.train(resume_from_checkpoint=str(ckpt))

    assert len(second.history) == 1  # no double jump, and the jump did happen
    a, b = ref.history[0], second.history[0]
    assert (b.step, b.m, b.alpha, b.accepted) == (a.step, a.m, a.alpha, a.accepted)
    assert b.loss_before == pytest.approx(a.loss_before, rel=1e-5)
    assert b.losses_after == pytest.approx(a.losses_after, rel=1e-5)
    # No lost snapshot: the forecaster saw the same w_0..w_3.
    assert second.core.recorder.steps == ref.core.recorder.steps == [0, 1, 2, 3]
    assert torch.allclose(second.core.recorder.weights(), ref.core.recorder.weights(), atol=1e-6)
    assert torch.allclose(flat_params(t2.model), flat_params(ref_trainer.model), atol=1e-5)
    # The jump is in the resumed run's log history exactly once.
    assert len(_jump_logs(t2)) == 1
    # The sidecar is a safetensors file with JSON metadata (no pickle).
    head = json.loads((ckpt / STATE_FILE).read_bytes()[8 : 8 + int.from_bytes((ckpt / STATE_FILE).read_bytes()[:8], "little")])
    assert head["__metadata__"]["format"] == "gfm_accel.jump_state"


def test_constructor_validates_its_own_options():
    with pytest.raises(ValueError, match="eval_batches"):
        GFMJump(forecaster=LinearExtrapolationForecaster(), eval_batches=0, unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4)
    with pytest.raises(ValueError, match="mode"):
        GFMJump(forecaster=LinearExtrapolationForecaster(), mode="sideways", unit="epoch", tolerance=0.01, optimizer_state="reset", horizon=4, every=4)


def test_optimizer_state_reset_clears_the_real_adamw_state(tmp_path):
    before, after = Probe(), Probe()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=False, optimizer_state="reset", unit="epoch", tolerance=0.01)
    trainer = _trainer(tmp_path, [before, jump, after], num_train_epochs=4, optim="adamw_torch", eval_strategy="no")
    trainer.train()
    assert jump.history[0].accepted
    # Before the jump AdamW holds exp_avg/exp_avg_sq/step for every parameter tensor; the
    # reset reached the torch optimizer inside Accelerate's wrapper.
    assert len(before.opt_state[2]) > 0 and all("exp_avg" in s for s in before.opt_state[2].values())
    assert after.opt_state[2] == {}
    # Training goes on and rebuilds the state.
    assert trainer.state.global_step == 16 and len(after.opt_state[4]) == len(before.opt_state[2])


class StopAtStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            control.should_training_stop = True


def test_resume_mid_epoch_with_the_step_unit(tmp_path):
    def cfg():
        return GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=4, unit="step", every_n_steps=2, alpha=0.5, tolerance=0.01, optimizer_state="reset")

    # 4 optimizer steps per epoch; the checkpoint at step 6 is in the middle of epoch 2 and
    # of observation (w_0, w_2, w_4, w_6 held; the jump needs w_8). The guard uses the
    # Trainer's eval dataset even with eval_strategy="no".
    common = dict(max_steps=14, eval_strategy="no", save_strategy="steps", save_steps=6)
    ref = cfg()
    ref_trainer = _trainer(tmp_path / "ref", [ref], **{**common, "save_strategy": "no"})
    ref_trainer.train()
    # Snapshots every 2 steps; the jump after w_8; target m = 14 // 2 = 7 snapshot units.
    assert [(r.step, r.m) for r in ref.history] == [(8, 7)]

    run = tmp_path / "run"
    first = cfg()
    _trainer(run, [first, StopAtStep(6)], **common).train()
    assert first.history == [] and first.core.recorder.steps == [0, 2, 4, 6]

    second = cfg()
    t2 = _trainer(run, [second], model=tiny_gpt2(seed=5), **common)
    t2.train(resume_from_checkpoint=str(run / "checkpoint-6"))
    assert len(second.history) == 1
    a, b = ref.history[0], second.history[0]
    assert (b.step, b.m, b.alpha, b.accepted) == (a.step, a.m, a.alpha, a.accepted)
    assert b.loss_before == pytest.approx(a.loss_before, rel=1e-5)
    assert second.core.recorder.steps == ref.core.recorder.steps == [0, 2, 4, 6, 8]
    assert torch.allclose(second.core.recorder.weights(), ref.core.recorder.weights(), atol=1e-6)
    assert torch.allclose(flat_params(t2.model), flat_params(ref_trainer.model), atol=1e-5)


def test_eval_dataset_given_to_the_callback_drives_the_guard(tmp_path):
    train, held_out = lm_datasets()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, eval_dataset=held_out, eval_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = Trainer(model=tiny_gpt2(), args=_args(tmp_path, eval_strategy="no"), train_dataset=train, callbacks=[jump])
    trainer.train()
    rec = jump.history[0]
    assert rec.loss_before is not None and 3.0 < rec.loss_before < 6.0  # byte-level LM loss near log(128) = 4.85
    assert len(rec.losses_after) == len(rec.alphas_tried) >= 1


def test_unguarded_jump_logs_no_nan(tmp_path):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=False, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [jump], num_train_epochs=3, eval_strategy="no")
    trainer.train()
    (entry,) = _jump_logs(trainer)
    assert "gfm/loss_before" not in entry and entry["gfm/accepted"] == 1.0
    json.dumps(trainer.state.log_history, allow_nan=False)  # strict JSON


def test_resume_without_a_saved_jump_state_restarts_observation(tmp_path, caplog):
    run = tmp_path / "run"
    _trainer(run, [GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset"), StopAfter(2)],
             num_train_epochs=6, save_strategy="epoch").train()
    (run / "checkpoint-8" / STATE_FILE).unlink()

    before = Probe()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=False, unit="epoch", tolerance=0.01, optimizer_state="reset")
    t2 = _trainer(run, [before, jump], num_train_epochs=6, save_strategy="no")
    with caplog.at_level("WARNING"):
        t2.train(resume_from_checkpoint=str(run / "checkpoint-8"))
    assert any("without a saved jump state" in m for m in caplog.messages)
    # w_0 = the resumed weights (after epoch 2); snapshots after epochs 3 and 4; the target
    # is the planned end counted from the resume: 6 - 2 = 4 snapshot units.
    assert [(r.step, r.m, r.accepted) for r in jump.history] == [(4, 4, True)]
    assert jump.core.recorder.steps == [2, 3, 4]

    # Resumed with too little left for n+1 fresh snapshots: no jump, training completes.
    late = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=4, guard=False, unit="epoch", tolerance=0.01, optimizer_state="reset")
    t3 = _trainer(run, [late], num_train_epochs=6, save_strategy="no")
    t3.train(resume_from_checkpoint=str(run / "checkpoint-8"))
    assert late.history == [] and t3.state.global_step == 24


# ---------------------------------------------------------------- a new user's first runs (issue 16)
def _history(cb) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if not k.endswith("seconds")} for r in cb.history]


def _periodic(unit: str = "epoch") -> GFMJump:
    steps = dict(unit="step", every_n_steps=2) if unit == "step" else dict(unit="epoch")
    return GFMJump(forecaster=LinearExtrapolationForecaster(), mode="periodic", n=2, horizon=2, every=2,
                   tolerance=0.3, optimizer_state="keep", **steps)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Reference runs (8 epochs of 4 steps) that also write a checkpoint every 2 steps.

    eval_strategy="no": the Trainer's own evaluation at an epoch end iterates the eval loader,
    which draws from the global torch RNG after the checkpoint of that step was written, so
    the Trainer alone (without GFMJump) does not resume bit for bit from an epoch-boundary
    checkpoint then. The guard still uses the Trainer's eval_dataset.
    """
    out = {}
    for unit in ("epoch", "step"):
        d = tmp_path_factory.mktemp(f"ref_{unit}")
        cb = _periodic(unit)
        t = _trainer(d, [cb], num_train_epochs=8, save_strategy="steps", save_steps=2, eval_strategy="no")
        t.train()
        out[unit] = (d, _history(cb), flat_params(t.model))
    return out


@pytest.mark.parametrize(
    "unit, step, how",
    [
        ("epoch", 8, "path"),  # the last step of epoch 2, whose end makes a jump: saved before on_epoch_end
        ("epoch", 8, "args"),
        ("epoch", 8, "latest"),
        ("epoch", 12, "path"),  # an epoch boundary in the jump's cooldown (window restarted at epoch 2)
        ("epoch", 14, "path"),  # mid-epoch, mid-window
        ("step", 8, "path"),  # the step of a jump (on_step_end jumps before the checkpoint is written)
        ("step", 10, "path"),  # cooldown: the window restarted at step 8
        ("step", 6, "latest"),  # mid-window
    ],
)
def test_resume_anywhere_matches_the_uninterrupted_run_bit_for_bit(tmp_path, uninterrupted, unit, step, how):
    ref_dir, ref_history, ref_weights = uninterrupted[unit]
    assert sum(h["accepted"] for h in ref_history) >= 2
    ckpt = ref_dir / f"checkpoint-{step}"
    cb = _periodic(unit)
    if how == "latest":  # trainer.train(resume_from_checkpoint=True) in an output_dir holding only that checkpoint
        import shutil

        out = tmp_path / "same"
        shutil.copytree(ckpt, out / ckpt.name)
        t = _trainer(out, [cb], num_train_epochs=8, model=tiny_gpt2(seed=7), eval_strategy="no")
        t.train(resume_from_checkpoint=True)
    elif how == "args":  # the example scripts' way: args.resume_from_checkpoint, output_dir elsewhere
        t = _trainer(tmp_path / "elsewhere", [cb], num_train_epochs=8, model=tiny_gpt2(seed=7),
                     resume_from_checkpoint=str(ckpt), eval_strategy="no")
        t.train(resume_from_checkpoint=t.args.resume_from_checkpoint)
    else:  # trainer.train(resume_from_checkpoint=PATH) with output_dir elsewhere (it used to be ignored)
        t = _trainer(tmp_path / "elsewhere", [cb], num_train_epochs=8, model=tiny_gpt2(seed=7), eval_strategy="no")
        t.train(resume_from_checkpoint=str(ckpt))
    assert _history(cb) == ref_history
    assert torch.equal(flat_params(t.model), ref_weights)


def test_no_global_rng_consumed_by_the_callback(tmp_path):
    # Dropout draws from the torch RNG at every step: a callback that consumed any (e.g. by
    # iterating the eval loader) would change every later step. A NaN forecaster never jumps.
    nan = ConstantForecaster(lambda p: torch.full_like(p[-1], float("nan")))
    plain = _trainer(tmp_path / "plain", [], num_train_epochs=4)
    plain.train()
    cb = GFMJump(forecaster=nan, mode="periodic", n=1, horizon=1, every=1, unit="epoch")
    with_cb = _trainer(tmp_path / "cb", [cb], num_train_epochs=4)
    with_cb.train()
    assert [r.reason for r in cb.history] == ["skipped: forecast NaN/Inf"] * 3  # it ran, guard batches taken
    assert torch.equal(flat_params(plain.model), flat_params(with_cb.model))


def test_eval_set_without_labels_is_an_error_at_the_start(tmp_path):
    class NoLabels(torch.utils.data.Dataset):
        def __init__(self, ds):
            self.ds = ds

        def __len__(self):
            return len(self.ds)

        def __getitem__(self, i):
            return {"input_ids": self.ds[i]["input_ids"]}

    train, held_out = lm_datasets()
    seen = Probe()
    trainer = Trainer(model=tiny_gpt2(), args=_args(tmp_path, eval_strategy="no"), train_dataset=train,
                      callbacks=[GFMJump(forecaster=LinearExtrapolationForecaster(), unit="epoch",
                                         eval_dataset=NoLabels(held_out)), seen])
    with pytest.raises(ValueError, match="give the eval dataset a 'labels' column"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_short_run_and_no_guard_warn_and_the_summary_is_logged(tmp_path, caplog):
    train, _ = lm_datasets()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster())  # the defaults: schedule A
    trainer = Trainer(model=tiny_gpt2(), args=_args(tmp_path, eval_strategy="no", num_train_epochs=3),
                      train_dataset=train, callbacks=[jump])
    with caplog.at_level("INFO", logger="gfm_accel.jump.core"):
        trainer.train()
    # 3 epochs of 4 steps = 12 steps; schedule A's first jump needs 75.
    assert any("too short for any jump: the first can come at step 25 and needs a planned length of at "
               "least 75 steps" in m for m in caplog.messages), caplog.messages
    assert any("the guard is off" in m for m in caplog.messages)
    assert "GFMJump: 0/0 jumps accepted" in caplog.messages
    assert jump.history == []


def test_parameters_outside_the_optimizer_stay_put(tmp_path):
    from transformers.optimization import get_constant_schedule

    model = tiny_gpt2()
    head = [p for n, p in model.named_parameters() if n.startswith("transformer.h.")]
    opt = torch.optim.SGD(head, lr=0.05)
    body = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("transformer.h.")}
    jump = GFMJump(forecaster=ConstantForecaster(lambda p: p[-1] + 1.0), mode="far", n=1, horizon=3,
                   unit="epoch", guard=False)
    train, _ = lm_datasets()
    trainer = Trainer(model=model, args=_args(tmp_path, eval_strategy="no", num_train_epochs=3),
                      train_dataset=train, callbacks=[jump], optimizers=(opt, get_constant_schedule(opt)))
    trainer.train()
    assert jump.history[0].accepted
    assert all(n.startswith("transformer.h.") for n in jump.core.recorder.spec.names)
    for n, p in trainer.model.named_parameters():
        if n in body:
            assert torch.equal(p.detach(), body[n]), n  # requires_grad=True, but no optimizer step: not moved


def test_a_second_train_with_the_same_callback_starts_a_new_run(tmp_path):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch", guard=False)
    trainer = _trainer(tmp_path, [jump], num_train_epochs=3, eval_strategy="no")
    trainer.train()
    trainer.train()
    assert [(r.step, r.m) for r in jump.history] == [(2, 3)]  # the second run's own jump only


def test_lr_horizon_with_the_trainers_linear_schedule(tmp_path):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), n=2, horizon=2, every=2, every_n_steps=2,
                   guard=False, lr_horizon=True, max_jumps=1)
    trainer = _trainer(tmp_path, [jump], max_steps=20, eval_strategy="no")
    trainer.train()
    # HF's default schedule: linear decay to 0 over 20 steps, stepped after every optimizer
    # step. The jump after step 4 forecasts K=2 snapshots = 4 steps ahead, whose rates are
    # lr0 * (16, 15, 14, 13) / 20; the current one lr0 * 16 / 20.
    (rec,) = jump.history
    assert rec.step == 4 and rec.lr_ratio == pytest.approx((16 + 15 + 14 + 13) / (4 * 16), rel=1e-9)
    assert rec.alpha == pytest.approx(rec.lr_ratio) and rec.accepted
    assert _jump_logs(trainer)[0]["gfm/lr_ratio"] == pytest.approx(rec.lr_ratio)
