"""Tests of gfm_accel.forecast.coordinate.pooled (neuron interaction, ``pooled=1, 2``)."""

from __future__ import annotations

import pytest
import torch
from coord_helpers import decay_trajectories, other_spec, small_spec
from torch import nn

from gfm_accel.forecast.coordinate import CoordinateBackend, CoordinateConfig
from gfm_accel.forecast.coordinate.pooled import PoolLayout, accumulate, chunked, gather
from gfm_accel.params import ParamSpec
from gfm_accel.trajectories import Trajectories


def _randomize_pool_weights(backend: CoordinateBackend, seed: int = 0) -> None:
    """Fresh pooled fields start with zero pool weights; give them values so the terms count."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("pool_in", "pool2_in"):
            if hasattr(backend.net, name):
                w = getattr(backend.net, name).weight
                w.copy_(torch.randn(w.shape, generator=g) * 0.5)


def _mlp_permutation(spec: ParamSpec, perm: torch.Tensor, *, second: bool = True) -> torch.Tensor:
    """Flat index map ``P`` with ``vec[P]`` = the MLP with its hidden neurons permuted by ``perm``.

    ``second=False`` permutes only the first layer (rows of W1 and b1): not a symmetry.
    """
    w1, b1, w2, b2 = spec.entries
    idx = torch.arange(spec.numel)
    out = idx.clone()
    out[w1.offset : w1.end] = idx[w1.offset : w1.end].view(w1.shape)[perm].reshape(-1)
    out[b1.offset : b1.end] = idx[b1.offset : b1.end][perm]
    if second:
        out[w2.offset : w2.end] = idx[w2.offset : w2.end].view(w2.shape)[:, perm].reshape(-1)
    return out


@pytest.mark.parametrize("pooled", [1, 2])
def test_permuting_hidden_neurons_permutes_the_forecast(pooled):
    spec = ParamSpec.from_model(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)))
    b = CoordinateBackend(hidden=16, pooled=pooled)
    _randomize_pool_weights(b)
    prefix = decay_trajectories(spec, 2, 5, seed=4)
    perm = torch.tensor([3, 0, 4, 1, 2])
    p = _mlp_permutation(spec, perm)
    base = b.forecast(prefix, 12, spec).final
    moved = b.forecast(prefix[:, :, p], 12, spec).final
    torch.testing.assert_close(moved, base[:, p], rtol=1e-5, atol=1e-6)
    # Not vacuous: the pooled terms change the forecast, and a permutation that is not a
    # symmetry of the network (first layer only) does not commute with the forecast.
    plain = CoordinateBackend(hidden=16).forecast(prefix, 12, spec).final
    assert (plain - base).abs().max() > 1e-3
    q = _mlp_permutation(spec, perm, second=False)
    broken = b.forecast(prefix[:, :, q], 12, spec).final
    assert (broken - base[:, q]).abs().max() > 1e-4


def test_fresh_pooled_field_starts_as_the_default_field():
    """Zero-initialised pool weights, created after the default parts: same init, same numbers."""
    spec = other_spec()
    prefix = decay_trajectories(spec, 2, 6, seed=2)
    ref = CoordinateBackend(hidden=8).forecast(prefix, 20, spec).final
    for pooled in (1, 2):
        got = CoordinateBackend(hidden=8, pooled=pooled).forecast(prefix, 20, spec).final
        assert torch.equal(got, ref)


def _brute_force(spec: ParamSpec, feats: torch.Tensor, prev: dict, nxt: dict) -> torch.Tensor:
    """Pooled inputs from the definitions, coordinate by coordinate (tiny specs only).

    The expected adjacency is written out by hand: ``prev[k] = (p, stat, axis)`` says that
    tensor k's previous-layer term is tensor p's ``stat`` (``"row"`` / ``"col"`` means, or
    ``"self"``: a vector's entries) read at k's row (``axis="r"``) or column (``"c"``);
    ``nxt`` likewise for the next-layer term.
    """
    b, d, f = feats.shape
    out = torch.zeros(b, d, 5 * f + 2)

    def shaped(k):
        e = spec.entries[k]
        x = feats[:, e.offset : e.end]
        if len(e.shape) >= 2:
            return x.reshape(b, e.shape[0], e.shape[1], -1, f)
        return x.reshape(b, e.numel, 1, 1, f)

    def stat(k, kind):
        x = shaped(k)
        if kind == "row":
            return x.mean(dim=(2, 3))  # (B, R, F)
        if kind == "col":
            return x.mean(dim=(1, 3))  # (B, C, F)
        return x[:, :, 0, 0]  # "self": a vector's entries

    for k, e in enumerate(spec.entries):
        x = shaped(k)
        _, rows, cols, inner, _ = x.shape
        row_m, col_m, t_m = x.mean(dim=(2, 3)), x.mean(dim=(1, 3)), x.mean(dim=(1, 2, 3))
        for j in range(e.numel):
            r, c = j // (cols * inner), (j // inner) % cols
            i = e.offset + j
            parts = [row_m[:, r], col_m[:, c], t_m, torch.zeros(b, f), torch.zeros(b, f)]
            flags = [0.0, 0.0]
            if k in prev:
                p, kind, axis = prev[k]
                parts[3] = stat(p, kind)[:, r if axis == "r" else c]
                flags[0] = 1.0
            if k in nxt:
                q, kind, axis = nxt[k]
                parts[4] = stat(q, kind)[:, r if axis == "r" else c]
                flags[1] = 1.0
            out[:, i] = torch.cat(parts + [torch.tensor(flags).expand(b, 2)], dim=-1)
    return out


class _Block(nn.Module):
    """An embedding, a norm, self-attention and an MLP: every layer kind of the mapping."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 4)
        self.ln = nn.LayerNorm(4)
        self.attn = nn.MultiheadAttention(4, 2)
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 4)
        self.conv = nn.Conv1d(4, 3, 2)
        self.conv2 = nn.Conv1d(3, 2, 3, bias=False)
        self.tail = nn.ParameterDict({"scale": nn.Parameter(torch.ones(5))})  # after conv2


CASES = {
    # Linear(3, 4), Linear(4, 2): weight, bias, weight, bias.
    "mlp": (small_spec, {2: (0, "row", "c")}, {0: (2, "col", "r"), 1: (2, "col", "r")}),
    # Conv2d(1, 2, 3) [+bias], LayerNorm(8) [w, b], Linear(8, 3) [+bias], Embedding(5, 2).
    "other": (other_spec, {4: (2, "self", "c")}, {2: (4, "col", "r"), 3: (4, "col", "r")}),
    # emb(7,4) | ln w,b (attached to emb: its 4 output features) | in_proj (12,4), in_proj_bias (12)
    # | out_proj (4,4), bias | fc1 (6,4), bias | fc2 (4,6), bias | conv (3,4,2), bias | conv2 (2,3,3)
    # | scale (5)
    "block": (
        lambda: ParamSpec.from_model(_Block()),
        {3: (0, "col", "c"), 7: (5, "row", "c"), 9: (7, "row", "c"), 11: (9, "row", "c"), 13: (11, "row", "c")},
        {0: (3, "col", "c"), 1: (3, "col", "r"), 2: (3, "col", "r"), 5: (7, "col", "r"), 6: (7, "col", "r"),
         7: (9, "col", "r"), 8: (9, "col", "r"), 9: (11, "col", "r"), 10: (11, "col", "r"),
         11: (13, "col", "r"), 12: (13, "col", "r")},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pooled_inputs_match_their_definition(case):
    make, prev, nxt = CASES[case]
    spec = make()
    if case == "block":
        assert [e.name for e in spec.entries] == [
            "emb.weight", "ln.weight", "ln.bias", "attn.in_proj_weight", "attn.in_proj_bias",
            "attn.out_proj.weight", "attn.out_proj.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
            "conv.weight", "conv.bias", "conv2.weight", "tail.scale"]
    feats = torch.randn(2, spec.numel, 3, generator=torch.Generator().manual_seed(1))
    layout = PoolLayout.from_spec(spec)
    for chunk in (spec.numel, 5):
        stats = accumulate(layout, chunked(layout, spec.numel, chunk, lambda a, z, i: feats[:, a:z]), 2, 3)
        got = torch.cat([gather(stats, layout.index_range(a, min(a + chunk, spec.numel)),
                                feats[:, a : min(a + chunk, spec.numel)])
                         for a in range(0, spec.numel, chunk)], dim=1)
        torch.testing.assert_close(got, _brute_force(spec, feats, prev, nxt), rtol=1e-5, atol=1e-6)
    # Per-window sampled coordinates ((B, C) indices, as in training) read the same numbers.
    coords = torch.randint(0, spec.numel, (2, 9), generator=torch.Generator().manual_seed(2))
    own = torch.gather(feats, 1, coords.unsqueeze(-1).expand(-1, -1, 3))
    stats = accumulate(layout, [(layout.index(coords.new_tensor(range(spec.numel))), feats)], 2, 3)
    full = _brute_force(spec, feats, prev, nxt)
    torch.testing.assert_close(gather(stats, layout.index(coords), own),
                               torch.gather(full, 1, coords.unsqueeze(-1).expand(-1, -1, full.shape[-1])))


def test_a_long_vector_needs_no_slots():
    """A flat spec pools into its tensor mean alone: memory O(1), not O(D)."""
    layout = PoolLayout.from_spec(ParamSpec.flat(100_000))
    assert layout.num_slots == 1
    assert PoolLayout.from_spec(small_spec()).num_slots == 4 + 3 + 1 + 2 + 4 + 1


@pytest.mark.parametrize("pooled", [1, 2])
def test_chunked_equals_unchunked(pooled):
    spec = ParamSpec.from_model(_Block())
    b = CoordinateBackend(hidden=8, pooled=pooled, chunk_size=100_000)
    _randomize_pool_weights(b, seed=3)
    prefix = decay_trajectories(spec, 2, 5, seed=5)
    whole = b.forecast(prefix, 15, spec).final
    b.config.chunk_size = 26  # 13 per window: chunks straddle tensors
    torch.testing.assert_close(b.forecast(prefix, 15, spec).final, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooled", [1, 2])
def test_fit_save_load_round_trip(tmp_path, pooled):
    from gfm_accel.forecast.forecaster import GFMForecaster

    spec = small_spec()
    w = torch.cumsum(torch.randn(3, 12, spec.numel, generator=torch.Generator().manual_seed(0)) * 0.1, dim=1)
    f = GFMForecaster("coordinate", n=4, m=None, hidden=8, pooled=pooled, steps_per_epoch=3, coords_per_window=16)
    f.fit(Trajectories(weights=w, metadata={"spec": spec.to_dict()}), epochs=2, progress=False)
    assert len(f.history) == 2 and all(torch.isfinite(torch.tensor(f.history)))
    assert bool(f.backend.net.pool_in.weight.abs().sum() > 0)  # the pooled map was trained
    path = f.save(tmp_path / "pooled.safetensors")
    g = GFMForecaster.load(path)
    assert g.config.variant_options["pooled"] == pooled
    other = other_spec()
    p = decay_trajectories(other, 2, 5, seed=9)
    assert torch.equal(g.forecast(p, 20, spec=other), f.forecast(p, 20, spec=other))
    # The weights belong to their option: a default forecaster refuses them.
    with pytest.raises(ValueError, match="unexpected.*pool_in"):
        CoordinateBackend(hidden=8).load_state_tensors(f.backend.state_tensors())


def test_spec_mismatch_and_bad_options_are_clear_errors():
    b = CoordinateBackend(hidden=8, pooled=1)
    spec = small_spec()
    with pytest.raises(ValueError, match=f"describes D={spec.numel} but the prefix has D=30"):
        b.forecast(torch.randn(1, 5, 30), 10, spec)
    with pytest.raises(ValueError, match="spec describes D=26 but weights have D=30"):
        b.fit([Trajectories(weights=torch.randn(2, 10, 30), metadata={"spec": spec.to_dict()})], epochs=1,
              progress=False)
    with pytest.raises(ValueError, match="pooled must be 0, 1 or 2"):
        CoordinateConfig(pooled=3)
    with pytest.raises(ValueError, match="needs condition='prefix'"):
        CoordinateConfig(pooled=1, condition="none")
    assert CoordinateConfig.from_dict(CoordinateConfig(pooled=2).to_dict()).pooled == 2
