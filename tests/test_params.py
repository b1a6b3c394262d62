"""ParamSpec, flatten_params and assign_params on MLP, CNN+BatchNorm and tied weights."""

import json

import pytest
import torch
from torch import nn

from gfm_accel.params import ParamLayoutError, ParamSpec, assign_params, flatten_params


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def cnn_bn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, x):
        return self.head(self.norm(self.emb(x)))


def test_spec_layout_mlp():
    spec = ParamSpec.from_model(mlp())
    assert spec.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [e.offset for e in spec] == [0, 32, 40, 64]
    assert spec.numel == 4 * 8 + 8 + 8 * 3 + 3 == 67
    assert [e.kind for e in spec] == ["weight", "bias", "weight", "bias"]


def test_spec_equality_and_json_roundtrip():
    a, b = ParamSpec.from_model(cnn_bn()), ParamSpec.from_model(cnn_bn())
    assert a == b
    back = ParamSpec.from_json(a.to_json())
    assert back == a and json.loads(a.to_json())["entries"][0]["name"] == "0.weight"
    assert ParamSpec.from_model(mlp()) != a
    assert [e.kind for e in a] == ["conv", "bias", "norm", "norm", "weight", "bias"]


@pytest.mark.parametrize("factory", [mlp, cnn_bn, Tied])
def test_flatten_assign_roundtrip(factory):
    model = factory()
    spec = ParamSpec.from_model(model)
    vec = flatten_params(model, spec)
    assert vec.dtype == torch.float32 and vec.shape == (spec.numel,)
    new = torch.randn_like(vec)
    ids_before = [id(p) for p in model.parameters()]
    data_ptrs = [p.data_ptr() for p in model.parameters()]
    assign_params(model, new, spec)
    assert torch.equal(flatten_params(model, spec), new)
    # written in place: same tensors, same storage
    assert [id(p) for p in model.parameters()] == ids_before
    assert [p.data_ptr() for p in model.parameters()] == data_ptrs


def test_tied_parameters_counted_once():
    model = Tied()
    spec = ParamSpec.from_model(model)
    assert spec.names == ["emb.weight", "norm.weight", "norm.bias"]
    assert spec.numel == 60 + 6 + 6
    vec = flatten_params(model, spec)
    vec[:60] = 7.0
    assign_params(model, vec, spec)
    assert torch.all(model.head.weight == 7.0)  # the tie survives


def test_frozen_excluded_by_default_and_configurable():
    model = mlp()
    model[0].weight.requires_grad_(False)
    assert ParamSpec.from_model(model).names == ["0.bias", "2.weight", "2.bias"]
    assert ParamSpec.from_model(model, include_frozen=True).numel == 67


def test_buffers_untouched_by_assign():
    model = cnn_bn()
    model.train()
    model(torch.randn(8, 1, 8, 8))
    mean = model[1].running_mean.clone()
    spec = ParamSpec.from_model(model)
    assign_params(model, torch.zeros(spec.numel), spec)
    assert torch.equal(model[1].running_mean, mean)


def test_wrong_length_names_sizes_and_leaves_model_untouched():
    model = mlp()
    before = flatten_params(model)
    with pytest.raises(ParamLayoutError, match=r"66 entries .* expects 67"):
        assign_params(model, torch.zeros(66))
    with pytest.raises(ParamLayoutError, match="1-D"):
        assign_params(model, torch.zeros(1, 67))
    assert torch.equal(flatten_params(model), before)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_rejected_and_model_untouched(bad):
    model = mlp()
    before = flatten_params(model)
    vec = torch.zeros(67)
    vec[5] = bad
    with pytest.raises(ParamLayoutError, match=r"first bad indices: \[5\]"):
        assign_params(model, vec)
    assert torch.equal(flatten_params(model), before)


def test_layout_mismatch_is_named():
    spec = ParamSpec.from_model(mlp())
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    with pytest.raises(ParamLayoutError, match=r"2.weight.*shape \(4, 8\).*\(3, 8\)"):
        flatten_params(other, spec)


def test_half_precision_model_roundtrip():
    model = mlp().to(torch.bfloat16)
    vec = flatten_params(model)
    assert vec.dtype == torch.float32
    assign_params(model, vec + 1)
    assert model[0].weight.dtype == torch.bfloat16
    assert torch.allclose(flatten_params(model), (vec + 1).bfloat16().float())


def test_spec_restricted_to_given_parameters_keeps_model_order():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    spec = ParamSpec.from_model(net, only=[net[1].bias, net[0].weight])  # order of the model, not of `only`
    assert spec.names == ["0.weight", "1.bias"] and spec.numel == 6 + 1
    assert [e.offset for e in spec.entries] == [0, 6]
    assert ParamSpec.from_model(net, only=[]).numel == 0
