"""WeightRecorder on real training runs, memory bounds and resume."""

import pytest
import torch
from torch import nn

from gfm_accel import WeightRecorder
from gfm_accel.params import flatten_params
from gfm_accel.trajectories import load_trajectories


def tiny_run(epochs=3, rec_kwargs=None, seed=0):
    """Train a tiny regression MLP for `epochs` epochs of 4 steps, recording."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    rec = WeightRecorder(model, **(rec_kwargs or {}))
    seen, losses = [flatten_params(model)], []
    for _ in range(epochs):
        for i in range(4):
            loss = nn.functional.mse_loss(model(x[i * 16:(i + 1) * 16]), y[i * 16:(i + 1) * 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.on_step()
        rec.on_epoch_end()
        seen.append(flatten_params(model))
        losses.append(nn.functional.mse_loss(model(x), y).item())
    return model, rec, torch.stack(seen), losses


def test_records_real_three_epoch_run(tmp_path):
    model, rec, seen, losses = tiny_run(3)
    assert rec.steps == [0, 1, 2, 3]
    assert torch.equal(rec.weights(), seen)
    assert losses[-1] < losses[0]  # it really trained
    assert not torch.equal(seen[0], seen[-1])
    path = rec.save(tmp_path / "run.safetensors", task="tiny")
    tr = load_trajectories(path)
    assert tr.weights.shape == (1, 4, rec.spec.numel)
    assert tr.steps == [0, 1, 2, 3] and tr.spec == rec.spec and tr.metadata["task"] == "tiny"


def test_every_k_steps():
    _, rec, _, _ = tiny_run(3, {"every": 5})
    assert rec.steps == [0, 5, 10]


def test_keep_last_k_bounds_memory():
    _, rec, seen, _ = tiny_run(5, {"keep": 2})
    assert len(rec) == 2 and rec.steps == [4, 5]
    assert torch.equal(rec.weights(), seen[-2:])
    assert torch.equal(rec.last(1)[0], seen[-1])
    with pytest.raises(ValueError, match="only 2 are kept"):
        rec.last(3)


def test_spill_to_disk(tmp_path):
    _, rec, seen, _ = tiny_run(4, {"spill_dir": tmp_path / "spill", "keep": 3})
    files = sorted(p.name for p in (tmp_path / "spill").iterdir())
    assert files == ["snap_000000002.safetensors", "snap_000000003.safetensors", "snap_000000004.safetensors"]
    assert all(isinstance(v, type(tmp_path)) for _, _, v in rec._items)  # only paths in RAM
    assert torch.equal(rec.weights(), seen[-3:])


def test_half_precision_storage():
    _, rec, seen, _ = tiny_run(2, {"dtype": "bfloat16"})
    assert rec._items[0][2].dtype == torch.bfloat16
    assert torch.allclose(rec.weights(), seen, atol=1e-2, rtol=1e-2)


def test_state_dict_resume_no_lost_or_duplicate_snapshot(tmp_path):
    # Uninterrupted reference.
    _, ref, _, _ = tiny_run(4)
    # Interrupted after 2 epochs, resumed in fresh objects.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    rec = WeightRecorder(model)

    def epoch(model, opt, rec):
        for i in range(4):
            loss = nn.functional.mse_loss(model(x[i * 16:(i + 1) * 16]), y[i * 16:(i + 1) * 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.on_step()
        rec.on_epoch_end()

    for _ in range(2):
        epoch(model, opt, rec)
    rec.save_state(tmp_path / "rec.safetensors")
    ckpt = ({k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict())

    model2 = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    model2.load_state_dict(ckpt[0])
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.05)
    opt2.load_state_dict(ckpt[1])
    rec2 = WeightRecorder(model2, record_initial=False)
    rec2.load_state(tmp_path / "rec.safetensors")
    for _ in range(2):
        epoch(model2, opt2, rec2)
    assert rec2.steps == ref.steps == [0, 1, 2, 3, 4]
    assert torch.allclose(rec2.weights(), ref.weights())


def test_state_from_other_model_refused():
    _, rec, _, _ = tiny_run(1)
    other = WeightRecorder(nn.Linear(3, 1))
    with pytest.raises(ValueError, match="different parameter layout"):
        other.load_state_dict(rec.state_dict())


@pytest.mark.parametrize("kwargs, match", [({"every": 0}, "every"), ({"keep": -1}, "keep"), ({"dtype": "int8"}, "dtype")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightRecorder(nn.Linear(2, 2), **kwargs)


def test_non_increasing_step_refused():
    rec = WeightRecorder(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="not after the last recorded step"):
        rec.record(0)
