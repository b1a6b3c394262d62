"""Dense (paper) GFM backend: architecture, training data, fitting, inference, state."""

import pytest
import torch

from gfm_accel.forecast.dense import DenseBackend, DenseConfig, DenseField, stack_pairs
from gfm_accel.trajectories import Trajectories


def linreg_trajectories(n_traj=24, steps=40, lr=0.05, seed=0):
    """Batched SGD runs of y = a x + b (a ~ N(2, .1), b ~ N(1, .1)) from w_0 ~ N(0, I): (N, steps+1, 2)."""
    g = torch.Generator().manual_seed(seed)
    a = 2 + 0.1 * torch.randn(n_traj, 1, generator=g)
    b = 1 + 0.1 * torch.randn(n_traj, 1, generator=g)
    x = torch.rand(n_traj, 64, generator=g) * 2 - 1
    y = a * x + b
    w = torch.randn(n_traj, 2, generator=g).requires_grad_()
    opt = torch.optim.SGD([w], lr=lr)
    out = [w.detach().clone()]
    for _ in range(steps):
        loss = ((w[:, :1] * x + w[:, 1:] - y) ** 2).mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(w.detach().clone())
    return torch.stack(out, 1)


def test_field_matches_table5():
    d = 5
    f = DenseField(d)
    linears = [m for m in f.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4 and sum(isinstance(m, torch.nn.ELU) for m in f.modules()) == 3
    weights = sum(m.weight.numel() for m in linears)
    assert weights == (d + 1) * 64 + 64 * 64 * 2 + 64 * d  # Table 5's count (biases aside)
    assert DenseField(d, cond_dim=3 * d).net[0].in_features == d + 1 + 3 * d


def test_stack_pairs_indexes_the_T_axis():
    w = torch.arange(2 * 6 * 1, dtype=torch.float32).view(2, 6, 1)
    prefix, w_m, m = stack_pairs([Trajectories(weights=w)], n=2, m=None)
    assert m == 5 and prefix.shape == (2, 3, 1)
    assert prefix[1, :, 0].tolist() == [6.0, 7.0, 8.0] and w_m[:, 0].tolist() == [5.0, 11.0]
    with pytest.raises(ValueError, match="need more than m=6"):
        stack_pairs([Trajectories(weights=w)], n=2, m=6)
    with pytest.raises(ValueError, match="one D"):
        stack_pairs([Trajectories(weights=w), Trajectories(weights=torch.zeros(1, 6, 2))], n=2, m=5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"condition": "both"}, "unknown condition"),
        ({"path": "curved"}, "unknown path"),
        ({"n": 4, "m": 4}, "larger than n"),
        ({"normalization": "minmax"}, "unknown normalization"),
        ({"hiden": 8}, "unknown DenseConfig option"),
        ({"t_per_traj": 0}, "t_per_traj"),
    ],
)
def test_config_errors(options, message):
    with pytest.raises(ValueError, match=message):
        DenseBackend.from_config(options)


def test_training_beats_last_value_and_is_deterministic():
    w = linreg_trajectories()
    train, test = Trajectories(weights=w[:16]), w[16:]
    cfg = {"n": 4, "m": 40, "hidden": 32}
    b = DenseBackend.from_config(cfg)
    hist = b.fit([train], epochs=150, batch_size=8, lr=3e-3, seed=1, progress=False)
    assert len(hist) == 150 and hist[-1] < 0.2 * hist[0]
    pred = b.forecast(test[:, :5], 40).final
    mse = ((pred - test[:, 40]) ** 2).mean().item()
    last = ((test[:, 4] - test[:, 40]) ** 2).mean().item()
    assert mse < 0.25 * last, (mse, last)
    b2 = DenseBackend.from_config(cfg)
    assert b2.fit([train], epochs=150, batch_size=8, lr=3e-3, seed=1, progress=False) == hist


def test_from_last_learns_a_constant_velocity_exactly():
    # w_i = w_0 + i c with one c for all: the from_last velocity is the constant m c everywhere.
    g = torch.Generator().manual_seed(0)
    c = torch.tensor([0.05, -0.02])
    w = torch.randn(20, 1, 2, generator=g) + torch.arange(21.0).view(1, 21, 1) * c
    b = DenseBackend.from_config({"n": 3, "m": 20, "path": "from_last", "hidden": 16})
    b.fit([Trajectories(weights=w)], epochs=300, batch_size=10, lr=3e-3, seed=0, progress=False)
    pred = b.forecast(w[:, :4], 20).final
    assert ((pred - w[:, 20]) ** 2).mean().item() < 1e-3
    assert ((w[:, 3] - w[:, 20]) ** 2).mean().item() > 0.3


def test_n_zero_and_prefix_condition():
    w = linreg_trajectories(n_traj=8, steps=10)
    b = DenseBackend.from_config({"n": 0, "m": 10, "hidden": 8})
    b.fit([Trajectories(weights=w)], epochs=3, batch_size=4, lr=1e-3, seed=0, progress=False)
    assert b.forecast(w[:, :1], 10).final.shape == (8, 2)
    bp = DenseBackend.from_config({"n": 2, "m": 10, "hidden": 8, "condition": "prefix"})
    bp.fit([Trajectories(weights=w)], epochs=3, batch_size=4, lr=1e-3, seed=0, progress=False)
    assert bp.field.net[0].in_features == 2 + 1 + 3 * 2
    assert bp.forecast(w[:, :3], 10).final.shape == (8, 2)
    with pytest.raises(ValueError, match="conditioned on n\\+1=3 snapshots, got n\\+1=2"):
        bp.forecast(w[:, :2], 10)


def test_states_standardize_and_state_round_trip():
    w = linreg_trajectories(n_traj=8, steps=10)
    b = DenseBackend.from_config({"n": 2, "m": 10, "hidden": 8, "normalization": "standardize", "t_per_traj": 3,
                                  "skip": "none"})
    b.fit([Trajectories(weights=w)], epochs=2, batch_size=4, lr=1e-3, seed=0, progress=False)
    assert torch.allclose(b.mean, w.reshape(-1, 2).mean(0), atol=1e-5)
    res = b.forecast(w[:, :3], 10, return_states=True)
    # step 1/m from t_n = 2/10: 8 Euler steps, 9 states, first is w_n in weight units
    assert res.states.shape == (9, 8, 2) and res.steps == 8
    assert torch.allclose(res.states[0], w[:, 2], atol=1e-5)
    assert torch.allclose(res.times[-1], torch.tensor(1.0))
    clone = DenseBackend.from_config(b.config_dict())
    clone.load_state_tensors(b.state_tensors())
    assert torch.equal(clone.forecast(w[:, :3], 10).final, res.final)
    bad = b.state_tensors()
    bad.pop("norm.std")
    with pytest.raises(ValueError, match="missing \\['norm.std'\\]"):
        clone.load_state_tensors(bad)


def test_wrong_dimension_names_both_sizes():
    b = DenseBackend.from_config({"n": 1, "m": 5, "hidden": 4, "dim": 3})
    with pytest.raises(ValueError, match="D=3 .*D=2"):
        b.forecast(torch.zeros(1, 2, 2), 5)
