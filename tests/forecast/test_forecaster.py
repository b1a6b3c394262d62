"""GFMForecaster facade: config, fit sources, forecast contract, save/load and file errors."""

import json

import pytest
import torch
from safetensors import safe_open

import gfm_accel
from gfm_accel._io import FileFormatError
from gfm_accel.forecast import Forecaster, ForecasterBackend, GFMConfig, GFMForecaster
from gfm_accel.forecast.dense import DenseBackend
from gfm_accel.trajectories import Trajectories, save_trajectories


def trajectories(n_traj=10, steps=12, d=2, seed=0):
    """Noisy geometric approach to a random optimum: w_i = w* + (w_0 - w*) 0.8^i, (N, steps+1, d)."""
    g = torch.Generator().manual_seed(seed)
    w_star = 1 + 0.1 * torch.randn(n_traj, 1, d, generator=g)
    w0 = torch.randn(n_traj, 1, d, generator=g)
    decay = 0.8 ** torch.arange(steps + 1.0).view(1, -1, 1)
    return w_star + (w0 - w_star) * decay


@pytest.fixture(scope="module")
def fitted():
    w = trajectories()
    return GFMForecaster(n=2, m=12, hidden=16).fit(w, epochs=5, batch_size=4, progress=False), w


def test_config_validation_and_round_trip():
    cfg = GFMConfig(n=0, m=None, path="from_last", variant_options={"normalization": "standardize"})
    assert GFMConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.backend_config()["normalization"] == "standardize" and "variant" not in cfg.backend_config()
    for bad, msg in [({"variant": "sparse"}, "unknown variant"), ({"n": -1}, "n must be"), ({"n": 4, "m": 3}, "m must"),
                     ({"condition": "full"}, "unknown condition"), ({"zeta": -1.0}, "zeta"), ({"solver": "dopri"}, "solver"),
                     ({"step": 2.0}, "step")]:
        with pytest.raises(ValueError, match=msg):
            GFMConfig(**bad)
    with pytest.raises(ValueError, match="clash"):
        GFMConfig(variant_options={"n": 3}).backend_config()
    with pytest.raises(ValueError, match="unknown DenseConfig option"):
        GFMForecaster(normalisation="standardize")


def test_public_and_protocols(fitted):
    f, _ = fitted
    assert gfm_accel.GFMForecaster is GFMForecaster
    assert isinstance(f, Forecaster) and isinstance(f.backend, ForecasterBackend)
    assert f.expected_dim == 2 and f.n == 2 and f.m == 12 and f.variant == "dense"
    assert len(f.history) == 5 and f.provenance["num_trajectories"] == 10


def test_forecast_shapes_defaults_and_errors(fitted):
    f, w = fitted
    batched = f.forecast(w[:, :3])
    assert batched.shape == (10, 2) and batched.dtype == torch.float32
    assert torch.allclose(f.forecast(w[3, :3]), batched[3], atol=1e-6)
    assert torch.allclose(f.forecast(w[:, :3], 12), batched)
    assert not torch.equal(f.forecast(w[:, :3], 40), batched)  # another horizon, another t_n
    with pytest.raises(ValueError, match="trained for D=2 parameters, but the prefix has D=3"):
        f.forecast(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="m=2 must be larger than n=2"):
        f.forecast(w[:, :3], 2)
    bad = w[:, :3].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        f.forecast(bad)


def test_lr_profile_is_validated_ignored_by_dense_and_read_by_a_schedule_aware_field(fitted):
    f, w = fitted
    prefix = w[:, :3]
    plain = f.forecast(prefix)
    decay = torch.linspace(1.0, 0.1, 13)
    assert f.schedule_aware is False
    assert torch.equal(f.forecast(prefix, lr_profile=decay), plain)  # dense: accepted and ignored
    assert torch.equal(f.forecast(prefix, lr_profile=decay.expand(10, 13)), plain)
    with pytest.raises(ValueError, match=r"lr_profile must have shape \(m\+1,\) or \(B, m\+1\) = \(13,\) or "
                                         r"\(10, 13\).*got \(12,\)"):
        f.forecast(prefix, lr_profile=torch.ones(12))
    with pytest.raises(ValueError, match="non-negative"):
        f.forecast(prefix, lr_profile=-decay)
    # A schedule-aware coordinate field: the profile reaches the backend and changes the forecast.
    lr_sum = torch.stack([torch.linspace(1.0, 0.1 + 0.2 * i, 13) for i in range(10)])
    lr_sum[:, 0] = 0.0
    moving = w[:, :1] + (w[:, -1:] - w[:, :1]) * torch.cumsum(lr_sum, 1).unsqueeze(-1) / lr_sum.sum(1).view(-1, 1, 1)
    aware = GFMForecaster("coordinate", n=2, m=12, hidden=8, schedule_aware=True, coords_per_window=2,
                          steps_per_epoch=2, n_choices=(2,), strides=(1,))
    aware.fit([Trajectories(weights=moving, extra={"lr_sum": lr_sum})], epochs=20, batch_size=4, lr=1e-2,
              progress=False)
    assert aware.schedule_aware and not GFMForecaster("coordinate", hidden=8).schedule_aware
    got = aware.forecast(moving[:, :3], lr_profile=decay)
    assert torch.equal(got, aware.backend.forecast(moving[:, :3], 12, lr_profile=decay).final)
    const = aware.forecast(moving[:, :3])
    assert torch.equal(aware.forecast(moving[:, :3], lr_profile=torch.ones(13)), const)  # None = constant
    assert (got - const).abs().max() > 1e-5


def test_trajectory_states(fitted):
    f, w = fitted
    res = f.trajectory(w[0, :3])
    assert res.states.shape[1:] == (1, 2) and res.times[0].item() == pytest.approx(2 / 12)
    assert torch.allclose(res.final[0], f.forecast(w[0, :3]))
    torch.testing.assert_close(res.states[0, 0], w[0, 2])  # starts at w_n
    # Algorithm 1's field (no skip, tau = 0: no early stop): h = 1/12 from t_n = 2/12, 10 steps
    g = GFMForecaster(n=2, m=12, hidden=16, condition="none", tau=0.0).fit(w, epochs=2, batch_size=4, progress=False)
    res = g.trajectory(w[0, :3])
    assert res.states.shape == (11, 1, 2)
    assert res.times[0].item() == pytest.approx(2 / 12) and res.times[-1].item() == pytest.approx(1.0)
    assert torch.allclose(res.final[0], g.forecast(w[0, :3]))


def test_fit_from_files_records_provenance(tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"t{i}.safetensors")
        save_trajectories(paths[-1], trajectories(n_traj=4, seed=i))
    f = GFMForecaster(n=1, m=None, hidden=8).fit([str(p) for p in paths], epochs=2, progress=False, command="x")
    assert f.m == 12  # T - 1
    assert f.provenance["data"] == [str(p) for p in paths] and f.provenance["num_trajectories"] == 8
    assert f.provenance["command"] == "x"
    with pytest.raises(ValueError, match="not been fitted"):
        GFMForecaster(n=1, m=None).save(tmp_path / "x.safetensors")


def test_save_load_round_trip(fitted, tmp_path):
    f, w = fitted
    path = f.save(tmp_path / "gfm.safetensors")
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    assert meta["format"] == "gfm_accel.forecaster" and meta["version"] == "1"
    assert json.loads(meta["variant"]) == "dense" and json.loads(meta["D"]) == 2
    assert json.loads(meta["n"]) == 2 and json.loads(meta["m"]) == 12
    assert json.loads(meta["normalization"]) == "none"
    assert json.loads(meta["config"])["hidden"] == 16
    g = GFMForecaster.load(path)
    assert torch.equal(g.forecast(w[:, :3]), f.forecast(w[:, :3]))
    assert g.expected_dim == 2 and g.provenance["epochs"] == 5 and g.config.hidden == 16
    with pytest.raises(ValueError, match="D=2 parameters, but the prefix has D=5"):
        g.forecast(torch.zeros(3, 5))


def test_corrupt_and_foreign_files(fitted, tmp_path):
    f, _ = fitted
    good = f.save(tmp_path / "gfm.safetensors").read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good[: len(good) - 100])
    with pytest.raises(FileFormatError, match="truncated or corrupt"):
        GFMForecaster.load(trunc)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(FileFormatError, match="corrupt"):
        GFMForecaster.load(junk)
    with pytest.raises(FileFormatError, match="no such file"):
        GFMForecaster.load(tmp_path / "missing.safetensors")
    traj = save_trajectories(tmp_path / "traj.safetensors", torch.zeros(1, 3, 2))
    with pytest.raises(FileFormatError, match="'format' is 'gfm_accel.trajectories', expected 'gfm_accel.forecaster'"):
        GFMForecaster.load(traj)
    # Right format key, but tensors that do not fit the stored config.
    from gfm_accel._io import atomic_save_file, read_header

    meta, _ = read_header(tmp_path / "gfm.safetensors")
    tensors = f.backend.state_tensors()
    tensors["field.net.0.weight"] = torch.zeros(3, 3)
    atomic_save_file(tensors, tmp_path / "bad.safetensors", meta)
    with pytest.raises(FileFormatError, match="bad.safetensors: the tensor data does not match .*tensors_sha256"):
        GFMForecaster.load(tmp_path / "bad.safetensors")
    del meta["tensors_sha256"]  # a file without a checksum: the shape check names the tensor
    atomic_save_file(tensors, tmp_path / "bad.safetensors", meta)
    with pytest.raises(FileFormatError, match="cannot rebuild the dense forecaster.*field.net.0.weight"):
        GFMForecaster.load(tmp_path / "bad.safetensors")


def _overwrite_tensor_bytes(path, name, fill: bytes):
    """Overwrite tensor ``name``'s data in place with ``fill`` repeated (the header stays valid)."""
    import json

    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    start, end = json.loads(raw[8 : 8 + n])[name]["data_offsets"]
    raw[8 + n + start : 8 + n + end] = (fill * (end - start))[: end - start]
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("with_checksum", [True, False])
def test_corrupted_tensor_bytes_fail_at_load_naming_the_file(fitted, tmp_path, with_checksum):
    from gfm_accel._io import atomic_save_file, load_tensors, read_header

    f, _ = fitted
    path = f.save(tmp_path / "gfm.safetensors")
    if not with_checksum:  # as a file written before checksums were stored
        meta, _ = read_header(path)
        del meta["tensors_sha256"]
        atomic_save_file(load_tensors(path), path, meta)
    GFMForecaster.load(path)  # intact: loads
    _overwrite_tensor_bytes(path, "field.net.0.weight", b"\xff")  # float32 0xffffffff is NaN
    match = "tensors_sha256 checksum" if with_checksum else "'field.net.0.weight' holds NaN/Inf"
    with pytest.raises(FileFormatError, match=f"{path}: .*{match}"):
        GFMForecaster.load(path)
    if with_checksum:  # wrong but finite data is caught by the checksum
        _overwrite_tensor_bytes(path, "field.net.0.weight", b"\x00")
        with pytest.raises(FileFormatError, match=f"{path}: the tensor data does not match"):
            GFMForecaster.load(path)


def test_from_backend_and_unknown_variant():
    b = DenseBackend.from_config({"n": 1, "m": 7, "hidden": 4, "dim": 3, "normalization": "standardize"})
    f = GFMForecaster.from_backend(b, note="hand-built")
    assert f.expected_dim == 3 and f.m == 7 and f.config.variant_options["normalization"] == "standardize"
    assert f.forecast(torch.zeros(2, 3)).shape == (3,)
    with pytest.raises(ValueError, match="unknown variant"):
        GFMForecaster("sparse")
