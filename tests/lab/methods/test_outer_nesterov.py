"""Outer Nesterov: the update equals the formula on a 2-parameter example; eta=1, mu=0 is plain."""

import pytest
import torch
from _method_helpers import flat, mlp, run, sgd
from torch import nn

from gfm_accel.lab.methods import OuterNesterov, Plain


def test_two_parameter_example_matches_the_formula():
    # loss = g . w with a constant gradient g: plain SGD moves w by -lr * g every step.
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    g = torch.tensor([0.5, 1.0])
    lr, k, eta, mu = 0.1, 2, 0.7, 0.9
    on = OuterNesterov(k=k, outer_lr=eta, momentum=mu).attach(model, sgd(lr=lr), total_steps=6)
    phi, b, after = torch.tensor([1.0, -2.0]), torch.zeros(2), []
    for outer in range(3):
        for inner in range(k):
            on.zero_grad()
            (model.weight.view(-1) * g).sum().backward()
            on.step()
            if inner < k - 1:  # mid-round: plain inner steps from the anchor
                torch.testing.assert_close(model.weight.view(-1), phi - (inner + 1) * lr * g)
        d = -k * lr * g  # the round's displacement, by hand
        b = mu * b + d
        phi = phi + eta * (d + mu * b)
        torch.testing.assert_close(model.weight.detach().view(-1), phi, rtol=0, atol=1e-5)
        after.append(model.weight.detach().view(-1).tolist())
    # written out: d = -0.2 g = (-0.1, -0.2), b = d, phi = w0 + 0.7 * (1 + 0.9) * d
    assert after[0] == pytest.approx([0.867, -2.266])
    # second round: d is the same, b = 1.9 d, phi += 0.7 * (1 + 0.9 * 1.9) d = 1.897 d
    assert after[1] == pytest.approx([0.867 - 0.1897, -2.266 - 0.3794])


def test_unit_outer_lr_without_momentum_is_plain():
    a, b = mlp(), mlp()
    wa = run(OuterNesterov(k=3, outer_lr=1.0, momentum=0.0).attach(a, sgd(momentum=0.9), total_steps=7), a, 7)
    wb = run(Plain().attach(b, sgd(momentum=0.9), total_steps=7), b, 7)
    for x, y in zip(wa, wb):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-7)


def test_momentum_changes_the_run():
    a, b = mlp(), mlp()
    run(OuterNesterov(k=3, outer_lr=1.0, momentum=0.5).attach(a, sgd(), total_steps=6), a, 6)
    run(Plain().attach(b, sgd(), total_steps=6), b, 6)
    assert (flat(a) - flat(b)).abs().max() > 1e-3


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="k must be an integer"):
        OuterNesterov(k=1.5)
    with pytest.raises(ValueError, match="outer_lr must be > 0"):
        OuterNesterov(outer_lr=0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        OuterNesterov(momentum=1.0)
