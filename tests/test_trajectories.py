"""Trajectory files: round trips, files from other tools, and every bad input."""

import json

import pytest
import torch
from safetensors.torch import save_file

from gfm_accel.params import ParamSpec
from gfm_accel.trajectories import load_trajectories, save_trajectories
from gfm_accel.trajectories import TrajectoryFormatError


def test_roundtrip_with_metadata(tmp_path):
    w = torch.randn(3, 5, 4)
    loss = torch.rand(3, 5)
    spec = ParamSpec.flat(4)
    p = save_trajectories(
        tmp_path / "a.safetensors", w, loss=loss, val_loss=loss * 2, extra={"arch_id": torch.tensor([0, 1, 1])},
        steps=[0, 2, 4, 6, 8], spec=spec, task="linreg", optimizer={"name": "adam", "lr": 0.01}, seed=3,
    )
    tr = load_trajectories(p)
    assert torch.equal(tr.weights, w) and torch.equal(tr.loss, loss) and torch.equal(tr.val_loss, loss * 2)
    assert tr.extra["arch_id"].tolist() == [0, 1, 1]
    assert (tr.N, tr.T, tr.D) == (3, 5, 4)
    assert tr.steps == [0, 2, 4, 6, 8]
    assert tr.spec == spec
    assert tr.metadata["optimizer"] == {"name": "adam", "lr": 0.01} and tr.metadata["seed"] == 3
    assert tr.metadata["format"] == "gfm_accel.trajectories" and tr.metadata["version"] == "1"
    sub = tr.subset(slice(1, 3))
    assert sub.N == 2 and sub.extra["arch_id"].tolist() == [1, 1]


def test_foreign_minimal_file_loads(tmp_path):
    p = tmp_path / "foreign.safetensors"
    save_file({"weights": torch.ones(2, 3, 1, dtype=torch.float64)}, str(p),
              metadata={"format": "gfm_accel.trajectories", "version": "1", "note": "not json"})
    tr = load_trajectories(p)
    assert tr.weights.dtype == torch.float32 and tr.weights.shape == (2, 3, 1)
    assert tr.steps == [0, 1, 2] and tr.spec is None and tr.metadata["note"] == "not json"


def test_atomic_write_leaves_no_temp_and_keeps_old_on_failure(tmp_path):
    p = tmp_path / "t.safetensors"
    save_trajectories(p, torch.zeros(1, 2, 3))
    with pytest.raises(TrajectoryFormatError):
        save_trajectories(p, torch.full((1, 2, 3), float("nan")))
    assert torch.equal(load_trajectories(p).weights, torch.zeros(1, 2, 3))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["t.safetensors"]


@pytest.mark.parametrize(
    "weights, match",
    [
        (torch.zeros(2, 3), "rank 3"),
        (torch.zeros(2, 3, 4, dtype=torch.int32), "floating point"),
        (torch.tensor([[[0.0, float("inf")]]]), "NaN/Inf"),
    ],
)
def test_save_rejects_bad_weights(tmp_path, weights, match):
    with pytest.raises(TrajectoryFormatError, match=match):
        save_trajectories(tmp_path / "x.safetensors", weights)


def test_save_rejects_inconsistent_optional(tmp_path):
    with pytest.raises(TrajectoryFormatError, match="'loss' must have shape"):
        save_trajectories(tmp_path / "x.safetensors", torch.zeros(2, 3, 1), loss=torch.zeros(2, 4))
    with pytest.raises(TrajectoryFormatError, match="'steps' has 2 entries"):
        save_trajectories(tmp_path / "x.safetensors", torch.zeros(2, 3, 1), steps=[0, 1])


def _write_raw(path, tensors, meta):
    save_file(tensors, str(path), metadata=meta)
    return path


OK_META = {"format": "gfm_accel.trajectories", "version": "1"}


@pytest.mark.parametrize(
    "tensors, meta, match",
    [
        ({"w": torch.zeros(1, 2, 3)}, OK_META, "missing tensor 'weights'"),
        ({"weights": torch.zeros(2, 3)}, OK_META, "rank 3"),
        ({"weights": torch.zeros(1, 2, 3, dtype=torch.int64)}, OK_META, "float dtype"),
        ({"weights": torch.tensor([[[float("nan")]]])}, OK_META, "NaN/Inf"),
        ({"weights": torch.zeros(1, 2, 3)}, {"format": "other", "version": "1"}, "expected 'gfm_accel.trajectories'"),
        ({"weights": torch.zeros(1, 2, 3)}, {"format": "gfm_accel.trajectories", "version": "9"}, "unsupported version"),
        ({"weights": torch.zeros(1, 2, 3), "loss": torch.zeros(1, 5)}, OK_META, "'loss' must have shape"),
    ],
)
def test_load_rejects_bad_files(tmp_path, tensors, meta, match):
    p = _write_raw(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(TrajectoryFormatError, match=match):
        load_trajectories(p)


def test_load_rejects_truncated_corrupt_and_missing(tmp_path):
    p = save_trajectories(tmp_path / "t.safetensors", torch.randn(2, 10, 10))
    data = p.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[:-17])
    with pytest.raises(TrajectoryFormatError, match="truncated"):
        load_trajectories(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(TrajectoryFormatError, match="corrupt"):
        load_trajectories(tmp_path / "junk.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(b"abc")
    with pytest.raises(TrajectoryFormatError, match="truncated or not a safetensors"):
        load_trajectories(tmp_path / "tiny.safetensors")
    with pytest.raises(TrajectoryFormatError, match="no such file"):
        load_trajectories(tmp_path / "absent.safetensors")


def test_metadata_values_are_json(tmp_path):
    from safetensors import safe_open

    p = save_trajectories(tmp_path / "m.safetensors", torch.zeros(1, 2, 1), lr=0.01, task="mlp")
    with safe_open(str(p), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["lr"]) == 0.01 and json.loads(meta["task"]) == "mlp"


def test_same_content_same_bytes(tmp_path):
    import hashlib

    digests = set()
    for i in range(4):
        p = save_trajectories(tmp_path / f"d{i}.safetensors", torch.arange(24.0).view(2, 3, 4), task="t", seed=1,
                              optimizer={"name": "adam", "betas": [0.9, 0.999]}, steps=[0, 1, 2])
        digests.add(hashlib.sha256(p.read_bytes()).hexdigest())
    assert len(digests) == 1
