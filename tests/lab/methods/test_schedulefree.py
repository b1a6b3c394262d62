"""Schedule-Free (schedulefree): the base optimizer's counterpart, eval() shows x, train() gives y back."""

import pytest
import schedulefree
import torch
from _method_helpers import data, evaluated, flat, mlp, run, sgd
from torch.optim.swa_utils import update_bn

from gfm_accel.lab.methods import ScheduleFree


def test_counterpart_of_the_base_optimizer_and_its_lr_grid():
    sf = ScheduleFree(lr_scale=4.0).attach(
        mlp(), lambda p: torch.optim.AdamW(p, lr=1e-3, betas=(0.8, 0.99), weight_decay=0.05), total_steps=20,
        schedule="warmup_cosine", warmup=0.1)
    opt = sf.optimizer
    assert isinstance(opt, schedulefree.AdamWScheduleFree) and sf.scheduler is None
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["weight_decay"], g["warmup_steps"], g["train_mode"]) == (4e-3, (0.8, 0.99), 0.05, 2, True)
    sgd_sf = ScheduleFree(lr_scale=2.0, warmup=0.25).attach(mlp(), sgd(lr=0.1), total_steps=8).optimizer
    assert isinstance(sgd_sf, schedulefree.SGDScheduleFree)
    assert (sgd_sf.param_groups[0]["momentum"], sgd_sf.param_groups[0]["lr"], sgd_sf.param_groups[0]["warmup_steps"]) == (0.9, 0.2, 2)
    assert ScheduleFree.grid() == [{"lr_scale": s} for s in (0.5, 1.0, 2.0, 4.0)]
    with pytest.raises(ValueError, match="no counterpart for RMSprop"):
        ScheduleFree().attach(mlp(), lambda p: torch.optim.RMSprop(p, lr=1e-3), total_steps=4)


def test_eval_weights_are_the_x_sequence_and_train_weights_come_back():
    model = mlp()
    sf = ScheduleFree().attach(model, lambda p: torch.optim.AdamW(p, lr=1e-2), total_steps=10)
    y_live = run(sf, model, 5)[-1]
    beta1 = sf.optimizer.param_groups[0]["betas"][0]
    z = torch.cat([sf.optimizer.state[p]["z"].reshape(-1) for p in model.parameters()])
    # y = (1 - beta1) z + beta1 x, so x = (y - (1 - beta1) z) / beta1 (the library's eval())
    x = (y_live - (1 - beta1) * z) / beta1
    torch.testing.assert_close(evaluated(sf), x, rtol=0, atol=1e-6)
    assert (evaluated(sf) - y_live).abs().max() > 1e-4
    assert torch.equal(flat(model), y_live)  # bit for bit after the switch back
    assert sf.optimizer.param_groups[0]["train_mode"] is True
    run(sf, model, 1, start=5)  # the library raises if a step is taken outside train mode


def test_batchnorm_needs_batches_and_gets_statistics_at_x():
    x, _ = data()
    with pytest.raises(ValueError, match="needs bn_batches"):
        ScheduleFree().attach(mlp(bn=True), sgd(), total_steps=4)
    model = mlp(bn=True)
    batches = [x[:16], x[16:]]
    sf = ScheduleFree().attach(model, sgd(), total_steps=6, bn_batches=batches)
    run(sf, model, 6)
    live_mean = model[1].running_mean.clone()
    with sf.evaluating() as m:
        got = m[1].running_mean.clone()
        # by hand: the same x weights, statistics recomputed from the batches
        ref = mlp(bn=True)
        with torch.no_grad():
            for p, q in zip(ref.parameters(), m.parameters()):
                p.copy_(q)
        update_bn(batches, ref)
    torch.testing.assert_close(got, ref[1].running_mean, rtol=0, atol=1e-6)
    assert not torch.allclose(got, live_mean)
    assert torch.equal(model[1].running_mean, live_mean)  # the live buffers are put back
