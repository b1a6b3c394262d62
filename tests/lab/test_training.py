"""The lab's training loops: the trajectory recorder (train_classifier) and the live-run loop (run_classifier)."""

import pytest
import torch

from gfm_accel.lab.training import evaluate_classifier, train_classifier
from gfm_accel.lab.datasets import load_image_dataset
from gfm_accel.params import ParamSpec, assign_params


@pytest.fixture(scope="module")
def digits():
    return load_image_dataset("digits").subset(400, 200)


def _linear():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


def test_records_every_epoch_and_learns(digits):
    run = train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y,
                           optimizer="sgd", lr=0.05, optimizer_kwargs={"momentum": 0.9}, epochs=4, batch_size=32, seed=3)
    assert run.weights.shape == (5, 650)
    assert run.spec == ParamSpec.from_model(_linear())
    for t in (run.train_loss, run.val_loss, run.train_acc, run.val_acc):
        assert t.shape == (5,)
    assert float(run.val_acc[-1]) > 0.85 and float(run.val_acc[0]) < 0.3
    assert float(run.train_loss[-1]) < 0.5 * float(run.train_loss[0])
    assert run.hparams == {"lr": 0.05, "momentum": 0.9}
    # The recorded metrics describe the recorded weights.
    m = _linear()
    assign_params(m, run.weights[2], run.spec)
    vl, va = evaluate_classifier(m, digits.val_x, digits.val_y)
    assert vl == pytest.approx(float(run.val_loss[2]), rel=1e-5) and va == pytest.approx(float(run.val_acc[2]))


def test_deterministic_and_rng_isolated(digits):
    kw = dict(optimizer="adam", lr=0.01, epochs=2, batch_size=64)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y, seed=5, **kw)
    assert torch.equal(torch.rand(1), before)  # caller's RNG untouched
    b = train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y, seed=5, **kw)
    c = train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y, seed=6, **kw)
    assert torch.equal(a.weights, b.weights) and torch.equal(a.val_loss, b.val_loss)
    assert not torch.equal(a.weights[0], c.weights[0])


def test_snapshot_every_and_errors(digits):
    run = train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y,
                           epochs=5, snapshot_every=2, eval_train=False, lr=0.05)
    assert run.weights.shape[0] == 3  # epochs 0, 2, 4
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y, epochs=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train_classifier(_linear, digits.train_x, digits.train_y, digits.val_x, digits.val_y, optimizer="lbfgs")


def test_evaluate_restores_mode():
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    m.train()
    evaluate_classifier(m, torch.randn(6, 4), torch.zeros(6, dtype=torch.long))
    assert m.training


def test_run_classifier_is_a_controlled_pair():
    """Same model init and seed: the same batches and numbers; a jump run logs its attempts."""
    from gfm_accel.forecast.simple import LinearExtrapolationForecaster
    from gfm_accel.jump import GFMJump
    from gfm_accel.lab.datasets import load_split
    from gfm_accel.lab.jumps import jump_config
    from gfm_accel.lab.training import run_classifier

    split = load_split("digits", 128)

    def run(jump=None):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        return run_classifier(model, torch.optim.SGD(model.parameters(), lr=0.1), split, epochs=6, batch_size=32,
                              seed=3, jump=jump, task="t", method="plain" if jump is None else "linear")

    a, b = run(), run()
    assert a.val_loss == b.val_loss and a.train_loss[1:] == b.train_loss[1:] and len(a.val_loss) == 7
    assert a.val_loss[-1] < a.val_loss[0] and a.weights_d == 650
    jumped = run(GFMJump(LinearExtrapolationForecaster(), config=jump_config("periodic:n=4,K=1,P=5")))
    assert len(jumped.jumps) == 1 and jumped.val_loss[:5] == a.val_loss[:5]  # identical until the jump after epoch 5
    assert jumped.to_dict()["method"] == "linear"
    with pytest.raises(ValueError, match="epochs and batch_size must be >= 1"):
        run_classifier(torch.nn.Linear(64, 10), None, split, epochs=0, batch_size=32, seed=0)


def test_train_epoch_steps_every_batch_and_returns_the_weighted_mean_loss():
    from gfm_accel.lab.training import train_epoch

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    with torch.no_grad():
        first = float(torch.nn.functional.cross_entropy(model(x[:4]), y[:4]))
    steps = []
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the losses are those of the initial weights
    mean = train_epoch(model, opt, batches, after_step=lambda: steps.append(1))
    with torch.no_grad():
        second = float(torch.nn.functional.cross_entropy(model(x[4:]), y[4:]))
    assert len(steps) == 2 and mean == pytest.approx((4 * first + 6 * second) / 10)
    assert train_epoch(model, opt, []) != train_epoch(model, opt, [])  # NaN for no batches
