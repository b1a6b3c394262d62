"""The guard on its own: exact backup/restore, the acceptance rule, the candidate search, eval_fn checks."""

import math

import numpy as np
import pytest
import torch

from gfm_accel.jump.config import JumpConfig
from gfm_accel.jump.guard import Backup, accepts, batches_eval_fn, check_eval_fn, evaluate, fixed_batches, search
from gfm_accel.jump.outcome import Outcome


def test_backup_restores_params_and_buffers_bit_for_bit():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    before = [t.clone() for t in list(net.parameters()) + list(net.buffers())]
    b = Backup(list(net.parameters()), list(net.buffers()))
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            t.add_(1 if not t.is_floating_point() else 0.123)
    b.restore()
    after = list(net.parameters()) + list(net.buffers())
    assert all(torch.equal(x, y) for x, y in zip(before, after))


def test_accepts_is_relative_and_needs_finite_losses():
    assert accepts(2.0, 2.02, 0.01) and not accepts(2.0, 2.0201, 0.01)
    assert accepts(-1.0, -0.99, 0.01)  # |loss_before| for negative losses
    assert not accepts(float("nan"), 1.0, 0.3) and not accepts(1.0, float("inf"), 0.3)


def test_negative_tolerance_is_a_required_margin():
    # -0.05: the jump must lower the guard loss by at least 5 % of |loss_before|
    assert accepts(2.0, 1.9, -0.05) and not accepts(2.0, 1.9001, -0.05)
    assert not accepts(2.0, 2.0, -0.05) and accepts(2.0, 2.0, 0.0)
    cfg = JumpConfig(tolerance=-0.05)
    assert cfg.tolerance == -0.05 and JumpConfig.from_json(cfg.to_json()) == cfg


def test_search_stops_at_the_first_accepted_candidate():
    written = []
    losses = {1.0: 5.0, 0.5: 1.1, 0.25: 0.9}
    res = search([1.0, 0.5, 0.25], written.append, lambda: losses[written[-1]], 1.0, 0.2)
    assert (res.outcome, res.alpha, res.alphas_tried, res.losses_after) == (Outcome.ACCEPTED, 0.5, [1.0, 0.5], [5.0, 1.1])
    res = search([1.0, 0.5], written.append, lambda: 9.0, 1.0, 0.2)
    assert res.outcome is Outcome.REJECTED and res.alpha is None and res.losses_after == [9.0, 9.0]
    res = search([1.0, 0.5], written.append, None, None, 0.2)
    assert res.outcome is Outcome.ACCEPTED_NO_GUARD and res.alphas_tried == [1.0]
    res = search([1.0], written.append, lambda: 1.0, float("nan"), 0.2)
    assert res.outcome is Outcome.REJECTED_BAD_BEFORE


def test_outcome_reasons_are_the_history_strings():
    assert [o.reason for o in Outcome if o is not Outcome.OK] == [
        "skipped: forecast NaN/Inf",
        "skipped: forecast has wrong size",
        "skipped: forecaster failed",
        "accepted",
        "accepted (no guard)",
        "rejected by the guard",
        "rejected: guard loss before the jump is not finite",
    ]
    assert Outcome.ACCEPTED.accepted and not Outcome.REJECTED.accepted and Outcome.FAILED.skipped
    assert Outcome.from_reason("rejected by the guard") is Outcome.REJECTED
    assert Outcome.from_reason("rejected: loss rose") is Outcome.REJECTED  # written by earlier versions
    with pytest.raises(ValueError, match="unknown jump reason"):
        Outcome.from_reason("rejected: maybe")


def test_batches_eval_fn_is_a_mean_over_fixed_batches_and_restores_the_mode():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.zero_()
    batches = [torch.ones(3, 2), 2 * torch.ones(3, 2)]
    fn = batches_eval_fn(batches, lambda model, batch, i: model(batch).mean())
    net.train()
    assert fn(net) == pytest.approx((2.0 + 4.0) / 2) and net.training
    with pytest.raises(ValueError, match="at least one held-out batch"):
        batches_eval_fn([], lambda m, b, i: 0.0)


def test_check_eval_fn_needs_a_finite_number():
    net = torch.nn.Linear(2, 1)
    dev = torch.device("cpu")
    assert check_eval_fn(lambda m: np.float32(0.5), net, dev) == 0.5
    with pytest.raises(ValueError, match="must return a float loss.*NoneType"):
        check_eval_fn(lambda m: None, net, dev)
    with pytest.raises(ValueError, match="returned nan"):
        check_eval_fn(lambda m: float("nan"), net, dev)
    with pytest.raises(ValueError, match="must return a float loss.*shape"):
        check_eval_fn(lambda m: torch.ones(3), net, dev)


def test_check_eval_fn_leaves_batchnorm_statistics_alone():
    bn = torch.nn.BatchNorm1d(3)
    bn.train()
    before = bn.running_mean.clone()
    check_eval_fn(lambda m: float(m.train()(torch.randn(8, 3) + 5).mean()), bn, torch.device("cpu"))
    assert torch.equal(bn.running_mean, before) and bn.training


def test_guard_calls_leave_the_global_rng_alone():
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(10.0)), batch_size=2)
    net = torch.nn.Linear(1, 1)
    state = torch.get_rng_state()
    batches = fixed_batches(loader, 2)
    value = evaluate(lambda m: float(torch.rand(())), net, torch.device("cpu"))
    assert len(batches) == 2 and math.isfinite(value)
    assert torch.equal(state, torch.get_rng_state())
