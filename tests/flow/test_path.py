"""Path construction (Eq. 5, Algorithm 1) against small examples computed by hand."""

import pytest
import torch

from gfm_accel.flow import interpolate, midpoint_forecast, sample_path, time_of

# One trajectory, n = 2, D = 2: w0=(0,0), w1=(1,2), w2=(3,3); target w_m=(10,20) at m=5 (t_n = 0.4).
PREFIX = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [3.0, 3.0]]])
W_M = torch.tensor([[10.0, 20.0]])


def _two(prefix=PREFIX, w_m=W_M):
    return prefix.repeat(2, 1, 1), w_m.repeat(2, 1)


def test_time_of():
    assert time_of(4, 199) == pytest.approx(4 / 199)
    assert torch.allclose(time_of(torch.tensor([0, 2]), 5), torch.tensor([0.0, 0.4]))
    with pytest.raises(ValueError):
        time_of(1, 0)


def test_interpolate_eq5():
    t = torch.tensor([0.0, 0.1, 0.3, 0.4])  # tm = 0, 0.5, 1.5, 2 (=n: exactly w_n)
    out = interpolate(PREFIX.repeat(4, 1, 1), t, 5)
    expected = torch.tensor([[0.0, 0.0], [0.5, 1.0], [2.0, 2.5], [3.0, 3.0]])
    assert torch.allclose(out, expected, atol=1e-6)


def test_sample_path_paper_by_hand():
    prefix, w_m = _two()
    s = sample_path(prefix, w_m, 5, torch.tensor([0.3, 0.6]), beta=2.0, gamma=0.5)
    assert s.z.tolist() == [1.0, 0.0]
    assert s.weight.tolist() == [2.0, 0.5]
    # t=0.3: k=1, omega=0.5 -> w = (2, 2.5), target = w2 - w1 = (2, 1) (a one-step difference)
    # t=0.6: beyond the prefix -> w = 0.6 w_m + 0.4 w_0 = (6, 12), target = w_m - w_n = (7, 17)
    assert torch.allclose(s.w_t, torch.tensor([[2.0, 2.5], [6.0, 12.0]]), atol=1e-5)
    assert torch.allclose(s.target, torch.tensor([[2.0, 1.0], [7.0, 17.0]]), atol=1e-5)


def test_sample_path_from_last_by_hand():
    prefix, w_m = _two()
    s = sample_path(prefix, w_m, 5, torch.tensor([0.3, 0.6]), path="from_last")
    # inside: same point, velocity per unit t = m (w2 - w1) = (10, 5)
    # beyond: line from w_n at 0.4 to w_m at 1: velocity (7, 17) / 0.6, point w_n + (0.2/0.6) (7, 17)
    assert torch.allclose(s.w_t, torch.tensor([[2.0, 2.5], [3 + 7 / 3, 3 + 17 / 3]]), atol=1e-5)
    assert torch.allclose(s.target, torch.tensor([[10.0, 5.0], [7 / 0.6, 17 / 0.6]]), atol=1e-4)


def test_from_last_path_integrates_to_w_m_paper_undershoots():
    prefix, w_m = _two()
    t_n = 0.4
    # The target beyond the prefix is constant in t, so integrating it exactly from w_n is w_n + (1-t_n) v.
    for path, expected in (("from_last", W_M[0]), ("paper", PREFIX[0, 2] + 0.6 * (W_M[0] - PREFIX[0, 2]))):
        v = sample_path(prefix, w_m, 5, torch.tensor([0.5, 0.9]), path=path).target
        assert torch.allclose(v[0], v[1])
        assert torch.allclose(PREFIX[0, 2] + (1 - t_n) * v[0], expected, atol=1e-5)
    # paper: w_n + 0.6 (w_m - w_n) = (3 + 4.2, 3 + 10.2): short of w_m by t_n (w_m - w_n)
    assert torch.allclose(PREFIX[0, 2] + 0.6 * (W_M[0] - PREFIX[0, 2]), torch.tensor([7.2, 13.2]))


def test_n_zero_only_w0_observed():
    prefix = torch.tensor([[[1.0, -1.0]]]).repeat(3, 1, 1)
    w_m = torch.tensor([[3.0, 1.0]]).repeat(3, 1)
    t = torch.tensor([0.0, 0.25, 1.0])
    for path in ("paper", "from_last"):
        s = sample_path(prefix, w_m, 199, t, path=path)
        assert s.z.tolist() == [0.0, 0.0, 0.0]
        assert torch.allclose(s.target, torch.tensor([[2.0, 2.0]]).repeat(3, 1))
        assert torch.allclose(s.w_t[1], torch.tensor([1.5, -0.5]))


def test_per_sample_horizons():
    prefix, w_m = _two()
    s = sample_path(prefix, w_m, torch.tensor([5, 10]), torch.tensor([0.3, 0.3]))
    # m=5: t_n=0.4 -> inside; m=10: t_n=0.2 -> beyond
    assert s.z.tolist() == [1.0, 0.0]
    assert torch.allclose(s.w_t[1], 0.3 * W_M[0])


def test_midpoint_forecast_by_hand():
    # v(w, t) = -w, from t_n = 0.5: dt = 0.5, w_mid = 0.75 w, w_hat = w - 0.5 * 0.75 w = 0.625 w
    w = torch.tensor([[2.0, -4.0]])
    out = midpoint_forecast(lambda x, t: -x, w, torch.tensor([0.5]))
    assert torch.allclose(out, torch.tensor([[1.25, -2.5]]))
    # the time argument: v = t, from 0.2: w_hat = w + 0.8 * (0.2 + 0.4) = w + 0.48
    out = midpoint_forecast(lambda x, t: t.unsqueeze(-1).expand_as(x), torch.zeros(1, 1), 0.2)
    assert out.item() == pytest.approx(0.48)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(path="nope"), "unknown path"),
        (dict(m=2), "larger than n"),
        (dict(w_m=torch.zeros(2, 3)), "w_m must have shape"),
    ],
)
def test_sample_path_errors(kwargs, message):
    prefix, w_m = _two()
    args = dict(prefix=prefix, w_m=w_m, m=5, t=torch.rand(2)) | kwargs
    with pytest.raises(ValueError, match=message):
        sample_path(**args)
