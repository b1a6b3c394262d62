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
