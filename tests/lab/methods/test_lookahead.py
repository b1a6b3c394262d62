"""Lookahead (pytorch_optimizer): slow weights after k steps, fast weights pulled back, slow weights evaluated."""

import pytest
import torch
from _method_helpers import clone, evaluated, flat, mlp, run, sgd

from gfm_accel.lab.methods import Lookahead, Plain


def test_slow_weights_after_k_steps_and_evaluation_of_the_slow_weights():
    k, alpha = 3, 0.6
    model = mlp()
    init = flat(model)
    plain_model = clone(model)
    la = Lookahead(k=k, alpha=alpha).attach(model, sgd(momentum=0.9), total_steps=5)
    fast = run(la, model, 2)
    ref = run(Plain().attach(plain_model, sgd(momentum=0.9), total_steps=5), plain_model, 3)
    assert torch.equal(fast[1], ref[1])  # before the sync: the base optimizer alone
    assert torch.equal(evaluated(la), init)  # mid-cycle: the slow weights (still w_0)
    assert torch.equal(flat(model), fast[1])  # and the fast weights are back
    synced = run(la, model, 1, start=2)[0]
    torch.testing.assert_close(synced, init + alpha * (ref[2] - init), rtol=0, atol=1e-6)
    torch.testing.assert_close(evaluated(la), synced, rtol=0, atol=0)


def test_the_scheduler_drives_the_base_optimizer():
    model = mlp()
    la = Lookahead(k=2, alpha=0.5).attach(model, sgd(lr=0.4), total_steps=4, schedule="warmup_cosine", warmup=0.5)
    lrs = []
    for i in range(4):
        lrs.append(la.base.param_groups[0]["lr"])
        run(la, model, 1, start=i)
    assert lrs == pytest.approx([0.2, 0.4, 0.4, 0.2])


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        Lookahead(k=0)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\]"):
        Lookahead(alpha=1.5)
