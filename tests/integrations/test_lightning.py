"""GFMJump with a real lightning.Trainer (CPU, tiny MLP regression)."""

from __future__ import annotations

import csv

import pytest
import torch

pytest.importorskip("lightning")

import lightning as L  # noqa: E402
from lightning.pytorch.callbacks import Callback, ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from _integration_models import flat_params  # noqa: E402
from gfm_accel.forecast.simple import LinearExtrapolationForecaster  # noqa: E402
from gfm_accel.integrations.lightning import GFMJump  # noqa: E402


class Regressor(L.LightningModule):
    def __init__(self, returns_loss: bool = True, momentum: float = 0.0) -> None:
        super().__init__()
        self.momentum = momentum
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        self.returns_loss = returns_loss

    def forward(self, x):  # used by the BatchNorm refresh (it calls model(inputs))
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("val_loss", loss)
        return loss if self.returns_loss else None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=self.momentum)


def _loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(192, 1, generator=g)
    train = torch.utils.data.TensorDataset(x[:128], y[:128])
    val = torch.utils.data.TensorDataset(x[128:], y[128:])
    return (
        torch.utils.data.DataLoader(train, batch_size=32, shuffle=False),
        torch.utils.data.DataLoader(val, batch_size=16),
    )


class Probe(Callback):
    """Flat parameters at train start and at each train-epoch end (placed before/after GFMJump)."""

    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor] = {}

    def on_train_start(self, trainer, pl_module):
        self.weights.setdefault(-1, flat_params(pl_module))

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights[trainer.current_epoch] = flat_params(pl_module)


class StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def _trainer(tmp_path, callbacks, max_epochs=5, **kw) -> L.Trainer:
    base = dict(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        deterministic=True,
    )
    base.update(kw)
    return L.Trainer(callbacks=callbacks, **base)


def _module(seed: int = 0, **kw) -> Regressor:
    torch.manual_seed(seed)
    return Regressor(**kw)


def test_fit_jumps_onto_the_forecast_and_logs_it(tmp_path):
    before, after = Probe(), Probe()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, alpha=0.5, unit="epoch", tolerance=0.01, optimizer_state="reset")
    logger = CSVLogger(str(tmp_path), name="csv")
    trainer = _trainer(tmp_path, [before, jump, after], logger=logger)
    trainer.fit(_module(), *_loaders())

    assert len(jump.history) == 1
    rec = jump.history[0]
    assert (rec.step, rec.n, rec.m) == (2, 2, 5)
    assert rec.loss_before is not None  # guard from the val dataloader (validation_step's loss)
    # w_0 is the weights at train start, w_1 / w_2 after epochs 0 / 1; the jump comes after epoch index 1.
    assert jump.core.recorder.steps == [0, 1, 2]
    assert rec.accepted and rec.alpha == 0.5, rec
    assert rec.losses_after[-1] < rec.loss_before  # the guard's val loss went down
    w1, w2 = before.weights[0], before.weights[1]
    assert torch.allclose(after.weights[1], w2 + 0.5 * (5 - 2) * (w2 - w1), atol=1e-6)
    assert not torch.equal(after.weights[1], w2)

    logger.finalize("success")
    with open(logger.log_dir + "/metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("gfm/step")]
    assert len(rows) == 1
    assert float(rows[0]["gfm/step"]) == 2.0 and float(rows[0]["gfm/m"]) == 5.0
    assert float(rows[0]["gfm/accepted"]) == (1.0 if rec.accepted else 0.0)
    # The guard's validation_step calls were silenced: val_loss is logged once per epoch only.
    assert trainer.current_epoch == 5


def test_step_unit_jumps_on_train_batch_end(tmp_path):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, unit="step", every_n_steps=2, guard=False, tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [jump], max_epochs=-1, max_steps=12)
    trainer.fit(_module(), *_loaders())
    # 4 batches/epoch; snapshots at steps 0, 2, 4; target m = 12 // 2 = 6.
    assert [(r.step, r.m, r.accepted) for r in jump.history] == [(4, 6, True)]
    assert trainer.global_step == 12


def test_guard_rejection_restores_weights_and_momentum_exactly(tmp_path):
    class FarAway:
        expected_dim = None

        def forecast(self, prefix, m, *, spec=None):
            return prefix[-1] + 100.0

    class MomentumProbe(Callback):
        def __init__(self) -> None:
            self.state = {}

        def on_train_epoch_end(self, trainer, pl_module):
            opt = trainer.optimizers[0]
            self.state[trainer.current_epoch] = [opt.state[p]["momentum_buffer"].clone() for p in pl_module.parameters()]

    before, after, mb, ma = Probe(), Probe(), MomentumProbe(), MomentumProbe()
    jump = GFMJump(forecaster=FarAway(), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [before, mb, jump, after, ma], max_epochs=3)
    trainer.fit(_module(momentum=0.9), *_loaders())
    rec = jump.history[0]
    assert not rec.accepted and rec.alphas_tried == [1.0, 0.5, 0.25]
    assert torch.equal(after.weights[1], before.weights[1])
    assert all(torch.equal(a, b) for a, b in zip(ma.state[1], mb.state[1]))


def test_validation_step_without_a_loss_is_a_clear_error(tmp_path):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=1, unit="epoch", tolerance=0.01, optimizer_state="reset")
    trainer = _trainer(tmp_path, [jump], max_epochs=3)
    with pytest.raises(ValueError, match="validation_step returned no loss"):
        trainer.fit(_module(returns_loss=False), *_loaders())


def test_wrong_size_forecaster_is_refused_at_start(tmp_path):
    class Wrong:
        expected_dim = 7

        def forecast(self, prefix, m, *, spec=None):
            return prefix[-1]

    trainer = _trainer(tmp_path, [GFMJump(forecaster=Wrong(), mode="far", n=2, unit="epoch", tolerance=0.01, optimizer_state="reset")])
    with pytest.raises(ValueError, match="D=7"):
        trainer.fit(_module(), *_loaders())


@pytest.mark.parametrize("save_on_train_epoch_end", [True, None])  # None: Lightning decides (here: after validation)
def test_resume_in_the_middle_of_observation_makes_the_same_jump(tmp_path, save_on_train_epoch_end):
    def cfg():
        return GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=3, alpha=0.5, unit="epoch", tolerance=0.01, optimizer_state="reset")

    ref = cfg()
    ref_trainer = _trainer(tmp_path / "ref", [ref], max_epochs=6)
    ref_module = _module()
    ref_trainer.fit(ref_module, *_loaders())
    assert [(r.step, r.m, r.accepted) for r in ref.history] == [(3, 6, True)]

    ckpt_dir = tmp_path / "ckpt"
    first = cfg()
    saver = ModelCheckpoint(
        dirpath=str(ckpt_dir), save_top_k=-1, every_n_epochs=1, save_on_train_epoch_end=save_on_train_epoch_end
    )
    t1 = _trainer(tmp_path / "run", [first, StopAfter(2), saver], max_epochs=6, enable_checkpointing=True)
    t1.fit(_module(), *_loaders())
    assert first.history == [] and first.core.recorder.steps == [0, 1, 2]
    ckpt = ckpt_dir / "epoch=1-step=8.ckpt"
    assert ckpt.is_file()

    second = cfg()
    t2 = _trainer(tmp_path / "run", [second], max_epochs=6)
    module2 = _module(seed=99)
    t2.fit(module2, *_loaders(), ckpt_path=str(ckpt))

    assert len(second.history) == 1
    a, b = ref.history[0], second.history[0]
    assert (b.step, b.m, b.alpha, b.accepted) == (a.step, a.m, a.alpha, a.accepted)
    assert b.loss_before == pytest.approx(a.loss_before, rel=1e-6)
    assert second.core.recorder.steps == [0, 1, 2, 3]
    assert torch.allclose(second.core.recorder.weights(), ref.core.recorder.weights(), atol=1e-6)
    assert torch.allclose(flat_params(module2), flat_params(ref_module), atol=1e-6)


def test_batchnorm_statistics_are_refreshed_after_the_jump(tmp_path):
    class BNRegressor(Regressor):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
            )

    class BNProbe(Callback):
        def __init__(self) -> None:
            self.stats = {}

        def on_train_epoch_end(self, trainer, pl_module):
            bn = pl_module.net[1]
            self.stats[trainer.current_epoch] = (bn.running_mean.clone(), int(bn.num_batches_tracked))

    before, after = BNProbe(), BNProbe()
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=False, refresh_bn_batches=2, unit="epoch", tolerance=0.01, optimizer_state="reset")
    torch.manual_seed(0)
    trainer = _trainer(tmp_path, [before, jump, after], max_epochs=4)
    trainer.fit(BNRegressor(), *_loaders())
    assert jump.history[0].accepted
    # 4 batches per epoch: 8 batches tracked after epoch index 1; the refresh recomputes the
    # statistics from exactly 2 training batches with the jumped weights.
    assert before.stats[1][1] == 8
    assert after.stats[1][1] == 2
    assert not torch.allclose(after.stats[1][0], before.stats[1][0])


def test_callback_added_to_a_resumed_run_starts_observing_there(tmp_path, caplog):
    ckpt_dir = tmp_path / "ckpt"
    saver = ModelCheckpoint(dirpath=str(ckpt_dir), save_top_k=-1, every_n_epochs=1)
    _trainer(tmp_path / "run", [StopAfter(2), saver], max_epochs=6, enable_checkpointing=True).fit(_module(), *_loaders())

    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, guard=False, unit="epoch", tolerance=0.01, optimizer_state="reset")
    t2 = _trainer(tmp_path / "run", [jump], max_epochs=6)
    with caplog.at_level("WARNING"):
        t2.fit(_module(), *_loaders(), ckpt_path=str(ckpt_dir / "epoch=1-step=8.ckpt"))
    assert any("without a saved jump state" in m for m in caplog.messages)
    # w_0 = the weights after 2 epochs (step index 2); the target counts from there: 6 - 2 = 4.
    assert [(r.step, r.m, r.accepted) for r in jump.history] == [(4, 4, True)]
    assert jump.core.recorder.steps == [2, 3, 4]


# ---------------------------------------------------------------- a new user's first runs (issue 16)
def _history(cb) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if not k.endswith("seconds")} for r in cb.history]


def _periodic(unit: str) -> GFMJump:
    # epoch unit: jumps due at epochs 2, 4, 6; step unit (4 steps per epoch): at steps 3, 6, 9, ...
    steps = dict(unit="step", every_n_steps=1, every=3) if unit == "step" else dict(unit="epoch", every=2)
    return GFMJump(forecaster=LinearExtrapolationForecaster(), mode="periodic", n=2, horizon=2, tolerance=1.0,
                   optimizer_state="keep", **steps)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Reference runs of 8 epochs (4 steps each) that write checkpoints at every epoch boundary twice:
    after the epoch's last batch (``every_n_train_steps=4``, before ``on_train_epoch_end``) and
    after validation (``every_n_epochs=1``)."""
    out = {}
    for unit in ("epoch", "step"):
        d = tmp_path_factory.mktemp(f"ref_{unit}")
        cb = _periodic(unit)
        savers = [ModelCheckpoint(dirpath=str(d / "steps"), save_top_k=-1, every_n_train_steps=4),
                  ModelCheckpoint(dirpath=str(d / "epochs"), save_top_k=-1, every_n_epochs=1)]
        module = _module(momentum=0.9)
        _trainer(d, [cb, *savers], max_epochs=8, enable_checkpointing=True).fit(module, *_loaders())
        out[unit] = (d, _history(cb), flat_params(module))
    return out


@pytest.mark.parametrize(
    "unit, ckpt",
    [
        ("epoch", "steps/epoch=1-step=8.ckpt"),  # after the last batch of the epoch whose end jumps
        ("epoch", "epochs/epoch=1-step=8.ckpt"),  # after validation, before on_train_epoch_end
        ("epoch", "steps/epoch=2-step=12.ckpt"),  # cooldown: the window restarted at epoch 2
        ("step", "steps/epoch=0-step=4.ckpt"),  # cooldown: the window restarted at step 3
        ("step", "steps/epoch=1-step=8.ckpt"),  # mid-window (snapshots 6, 7, 8; the jump at 9)
        ("step", "steps/epoch=2-step=12.ckpt"),  # the step of a jump
    ],
)
def test_resume_at_epoch_boundaries_matches_the_uninterrupted_run_bit_for_bit(tmp_path, uninterrupted, unit, ckpt):
    # Mid-epoch checkpoints are not covered: Lightning 2.x restarts a plain DataLoader's epoch
    # from its first batch, so even a run without GFMJump does not resume bit for bit there
    # (docs/integrations.md).
    ref_dir, ref_history, ref_weights = uninterrupted[unit]
    assert sum(h["accepted"] for h in ref_history) >= 2
    cb = _periodic(unit)
    module = _module(seed=5, momentum=0.9)
    _trainer(tmp_path, [cb], max_epochs=8).fit(module, *_loaders(), ckpt_path=str(ref_dir / ckpt))
    assert _history(cb) == ref_history
    assert torch.equal(flat_params(module), ref_weights)


def test_resume_from_the_final_checkpoint_without_a_jump_state(tmp_path, uninterrupted, caplog):
    ref_dir, _, ref_weights = uninterrupted["epoch"]
    cb = _periodic("epoch")
    module = _module(seed=5, momentum=0.9)
    state = torch.load(ref_dir / "steps/epoch=7-step=32.ckpt", weights_only=True)  # before the last epoch end
    state["callbacks"] = {}
    torch.save(state, tmp_path / "no_state.ckpt")
    with caplog.at_level("WARNING"):
        _trainer(tmp_path, [cb], max_epochs=8).fit(module, *_loaders(), ckpt_path=str(tmp_path / "no_state.ckpt"))
    assert any("too little of the resumed run is left" in m for m in caplog.messages)
    assert cb.history == [] and torch.equal(flat_params(module), ref_weights)


class _Noisy(Regressor):
    """Dropout in training: every step draws from the global torch RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Dropout(0.3),
                                       torch.nn.Linear(16, 1))


def test_no_global_rng_consumed_by_the_callback(tmp_path):
    class NaN:
        expected_dim = None

        def forecast(self, prefix, m, *, spec=None):
            return torch.full_like(prefix[-1], float("nan"))

    torch.manual_seed(0)
    plain = _Noisy()
    _trainer(tmp_path / "a", [], max_epochs=4).fit(plain, *_loaders())
    torch.manual_seed(0)
    with_cb = _Noisy()
    cb = GFMJump(forecaster=NaN(), mode="periodic", n=1, horizon=1, every=1, unit="epoch")
    _trainer(tmp_path / "b", [cb], max_epochs=4).fit(with_cb, *_loaders())
    assert [r.reason for r in cb.history] == ["skipped: forecast NaN/Inf"] * 3
    assert torch.equal(flat_params(plain), flat_params(with_cb))


def test_validation_step_without_a_loss_fails_before_training(tmp_path):
    seen = Probe()
    trainer = _trainer(tmp_path, [GFMJump(forecaster=LinearExtrapolationForecaster(), unit="epoch"), seen], max_epochs=3)
    with pytest.raises(ValueError, match="validation_step returned no loss; return the loss tensor"):
        trainer.fit(_module(returns_loss=False), *_loaders())
    assert trainer.global_step == 0 and 0 not in seen.weights  # no epoch ran


def test_guard_evaluations_leave_the_logged_validation_metrics_alone(tmp_path):
    logged = []

    class Spy(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            logged.append(float(trainer.callback_metrics["val_loss"]))

    from gfm_accel.forecast.simple import LastValueForecaster

    # w_hat = w_n: accepted jumps that leave the weights as they are, so any difference in the
    # logged val_loss could only come from the guard's own validation_step calls.
    jump = GFMJump(forecaster=LastValueForecaster(), mode="periodic", n=1, horizon=1, every=1,
                   unit="epoch", tolerance=1.0)
    plain_logged = []

    class PlainSpy(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            plain_logged.append(float(trainer.callback_metrics["val_loss"]))

    _trainer(tmp_path / "j", [jump, Spy()], max_epochs=3).fit(_module(), *_loaders())
    _trainer(tmp_path / "p", [PlainSpy()], max_epochs=3).fit(_module(), *_loaders())
    # The guard's validation_step calls (attach check, before and after each jump) logged nothing.
    assert logged == plain_logged and len(logged) == 3
    assert [r.accepted for r in jump.history] == [True, True]


def test_summary_short_run_warning_and_second_fit(tmp_path, caplog):
    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), mode="far", n=2, unit="epoch", guard=False)
    with caplog.at_level("INFO", logger="gfm_accel.jump.core"):
        _trainer(tmp_path, [jump], max_epochs=4).fit(_module(), *_loaders())
        _trainer(tmp_path, [jump], max_epochs=4).fit(_module(), *_loaders())
    assert [(r.step, r.m) for r in jump.history] == [(2, 4)]  # the second fit is a new run
    assert caplog.messages.count("GFMJump: 1/1 jumps accepted; forecast 2 epochs ahead in total (nominal)") == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="gfm_accel.jump.core"):
        _trainer(tmp_path, [GFMJump(forecaster=LinearExtrapolationForecaster())], max_epochs=3).fit(_module(), *_loaders())
    assert any("too short for any jump" in m and "at least 75 steps" in m for m in caplog.messages)


def test_parameters_outside_the_optimizer_stay_put(tmp_path):
    class HeadOnly(Regressor):
        def configure_optimizers(self):
            return torch.optim.SGD(self.net[2].parameters(), lr=0.05)

    class PlusOne:
        expected_dim = None

        def forecast(self, prefix, m, *, spec=None):
            return prefix[-1] + 1.0

    torch.manual_seed(0)
    module = HeadOnly()
    body = module.net[0].weight.detach().clone()
    jump = GFMJump(forecaster=PlusOne(), mode="far", n=1, horizon=3, unit="epoch", guard=False)
    _trainer(tmp_path, [jump], max_epochs=3).fit(module, *_loaders())
    assert jump.history[0].accepted and jump.core.recorder.spec.names == ["net.2.weight", "net.2.bias"]
    assert torch.equal(module.net[0].weight, body)


def test_lr_horizon_with_a_lightning_step_scheduler(tmp_path):
    class Decaying(Regressor):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.05)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / 16))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), n=2, horizon=2, every=2, every_n_steps=2,
                   guard=False, lr_horizon=True, max_jumps=1)
    torch.manual_seed(0)
    _trainer(tmp_path, [jump], max_epochs=4).fit(Decaying(), *_loaders())
    # 4 steps per epoch; the jump after step 4 looks 4 steps ahead: rates (12, 11, 10, 9) / 16
    # of lr0 against the current 12 / 16.
    (rec,) = jump.history
    assert rec.step == 4 and rec.lr_ratio == pytest.approx((12 + 11 + 10 + 9) / (4 * 12), rel=1e-9)
    assert rec.accepted and rec.alpha == pytest.approx(rec.lr_ratio)


def test_lr_horizon_with_an_epoch_scheduler_and_epoch_snapshots(tmp_path):
    class StepDecay(Regressor):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.05)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)}

    jump = GFMJump(forecaster=LinearExtrapolationForecaster(), unit="epoch", n=2, horizon=2, every=2,
                   guard=False, lr_horizon=True, max_jumps=1)
    torch.manual_seed(0)
    _trainer(tmp_path, [jump], max_epochs=6).fit(StepDecay(), *_loaders())
    # Stepped once per epoch. The jump at the end of epoch index 1 looks 2 epochs ahead:
    # epochs 2 and 3 run at lr0 and lr0 / 2 (StepLR halves after 3 epochs): r = (1 + 0.5) / 2.
    (rec,) = jump.history
    assert rec.step == 2 and rec.lr_ratio == pytest.approx(0.75, rel=1e-9)
