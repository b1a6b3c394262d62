"""The GFM objective: weights, reductions and the consistency term, by hand."""

import pytest
import torch

from gfm_accel.flow import gfm_loss

PREFIX = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [3.0, 3.0]]]).repeat(2, 1, 1)
W_M = torch.tensor([[10.0, 20.0]]).repeat(2, 1)
T = torch.tensor([0.3, 0.6])


def zero_field(w, t):
    return torch.zeros_like(w)


def test_zero_field_by_hand():
    out = gfm_loss(zero_field, PREFIX, W_M, 5, T, beta=2.0, gamma=0.5, zeta=10.0)
    # targets (2,1) [weight 2] and (7,17) [weight 0.5]; mean over D: 2*2.5 and 0.5*169 -> batch mean
    cfm = (2.0 * 2.5 + 0.5 * 169.0) / 2
    # w_hat_m = w_n = (3, 3); error (7, 17): mean over D = 169
    assert out.cfm.item() == pytest.approx(cfm)
    assert out.pred.item() == pytest.approx(169.0)
    assert out.total.item() == pytest.approx(cfm + 10.0 * 169.0)
    s = gfm_loss(zero_field, PREFIX, W_M, 5, T, beta=2.0, gamma=0.5, zeta=10.0, reduction="sum")
    assert s.total.item() == pytest.approx(2 * out.total.item())


def test_perfect_from_last_field_has_zero_loss():
    # On the consistent path, v = (w_m - w_n)/(1 - t_n) beyond the prefix is exact for the midpoint too.
    v = (W_M[0] - PREFIX[0, 2]) / 0.6
    out = gfm_loss(lambda w, t: v.expand_as(w), PREFIX, W_M, 5, torch.tensor([0.5, 0.9]), path="from_last")
    assert out.total.item() == pytest.approx(0.0, abs=1e-8)


def test_gradients_reach_the_field():
    net = torch.nn.Linear(3, 2)
    field = lambda w, t: net(torch.cat([w, t[:, None]], -1))  # noqa: E731
    out = gfm_loss(field, PREFIX, W_M, 5, T)
    out.total.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0
    assert out.w_hat_m.shape == (2, 2)


def test_zeta_zero_skips_consistency_and_bad_reduction():
    out = gfm_loss(zero_field, PREFIX, W_M, 5, T, zeta=0.0)
    assert out.pred.item() == 0.0 and out.total.item() == pytest.approx(out.cfm.item())
    with pytest.raises(ValueError, match="reduction"):
        gfm_loss(zero_field, PREFIX, W_M, 5, T, reduction="max")


def test_per_sample_weights():
    """weights=None is the plain mean; weights multiply each sample's terms before the batch mean."""
    g = torch.Generator().manual_seed(0)
    prefix, w_m, t = torch.randn(3, 3, 4, generator=g), torch.randn(3, 4, generator=g), torch.rand(3, generator=g)

    def field(w, tt):
        return 0.3 * w + tt.unsqueeze(-1)

    plain = gfm_loss(field, prefix, w_m, 9, t, zeta=2.0)
    ones = gfm_loss(field, prefix, w_m, 9, t, zeta=2.0, weights=torch.ones(3))
    assert torch.equal(plain.total, ones.total)
    wts = torch.tensor([2.0, 0.0, 1.0])
    weighted = gfm_loss(field, prefix, w_m, 9, t, zeta=2.0, weights=wts)
    per_sample = [gfm_loss(field, prefix[i : i + 1], w_m[i : i + 1], 9, t[i : i + 1], zeta=2.0) for i in range(3)]
    expect_cfm = sum(float(wts[i]) * float(per_sample[i].cfm) for i in range(3)) / 3
    expect_pred = sum(float(wts[i]) * float(per_sample[i].pred) for i in range(3)) / 3
    assert float(weighted.cfm) == pytest.approx(expect_cfm, rel=1e-6)
    assert float(weighted.pred) == pytest.approx(expect_pred, rel=1e-6)
    assert float(weighted.total) == pytest.approx(expect_cfm + 2.0 * expect_pred, rel=1e-6)
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\)"):
        gfm_loss(field, prefix, w_m, 9, t, weights=torch.ones(2))
