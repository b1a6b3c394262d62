"""EMA: the evaluated weights (and BatchNorm buffers) are the hand-computed EMA."""

import torch
from _method_helpers import data, evaluated, flat, mlp, run, sgd

from gfm_accel.lab.methods import EMA, Plain


def test_evaluated_weights_are_the_hand_computed_ema():
    decay = 0.8
    model, plain_model = mlp(), mlp()
    ema = EMA(decay=decay).attach(model, sgd(momentum=0.9), total_steps=6)
    assert torch.equal(evaluated(ema), flat(model))  # before any step: the initialization
    live = run(ema, model, 6)
    plain_live = run(Plain().attach(plain_model, sgd(momentum=0.9), total_steps=6), plain_model, 6)
    for a, b in zip(live, plain_live):
        assert torch.equal(a, b)  # the EMA never changes the training run
    expected = live[0].clone()  # the library copies on its first update
    for w in live[1:]:
        expected = decay * expected + (1 - decay) * w
    torch.testing.assert_close(evaluated(ema), expected, rtol=0, atol=1e-6)
    assert not torch.allclose(evaluated(ema), live[-1])


def test_batchnorm_running_stats_are_averaged_too():
    decay = 0.5
    model = mlp(bn=True)
    ema = EMA(decay=decay).attach(model, sgd(), total_steps=3)
    x, y = data()
    means = []
    for i in range(3):
        run(ema, model, 1, (x, y), start=i)
        means.append(model[1].running_mean.clone())
    expected = decay * (decay * means[0] + (1 - decay) * means[1]) + (1 - decay) * means[2]
    with ema.evaluating() as m:
        torch.testing.assert_close(m[1].running_mean, expected, rtol=0, atol=1e-7)
        assert not m.training
    assert model.training


def test_default_and_budget_rule():
    assert EMA().hparams == {"decay": 0.99}
    assert EMA.for_budget(300).hparams == {"decay": 0.99}  # 1 / (1 - 0.999) = 1000 > 100
    assert EMA.for_budget(3000).hparams == {"decay": 0.999}
    assert EMA.for_budget(30000).hparams == {"decay": 0.9999}
    assert EMA.for_budget(10).hparams == {"decay": 0.99}
