"""The shared per-coordinate velocity network of the coordinate forecaster."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...params import LAYER_KINDS
from .._modules import build_module
from .config import CoordinateConfig
from .features import NUM_TENSOR_STATS, num_lr_inputs
from .pooled import pool_width

__all__ = ["CoordinateField", "new_field"]

_ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


class CoordinateField(nn.Module):
    """The shared per-coordinate velocity network ``v(x, t | coordinate, tensor, window)``.

    Equivalent to an MLP over the concatenation ``[coord inputs, tensor stats, kind
    embedding, window inputs, x, t, (t - t_n)/(1 - t_n)]`` with ``depth`` hidden layers of
    width ``hidden``; its first layer is split by how often each part changes.

    Opt-in parts (absent from the module, hence from its state dict, when off; created after
    every default part, so the default parts draw the same initial weights either way):
    ``pool_in`` (``pooled >= 1``: the pooled inputs of :mod:`.pooled` into the first layer),
    ``pool2_in`` (``pooled = 2``: the pooled static activations, a second round) and
    ``lr_in`` (``schedule_aware``: the window's learning-rate inputs, per window). They start
    at zero, so a fresh field with them computes what the same field without them does,
    and training grows them from there.

    Example:
        >>> f = CoordinateField(CoordinateConfig(hidden=8))
        >>> ctx = f.tensor_context(torch.zeros(1, 2, 4), torch.tensor([0, 1]), torch.zeros(1, 6))
        >>> base = f.context(torch.zeros(1, 5, 5), ctx, torch.tensor([[0, 0, 1, 1, 1]]))
        >>> f.velocity(base, torch.zeros(1, 5), torch.tensor([0.5]), torch.tensor([0.1])).shape
        torch.Size([1, 5])
    """

    def __init__(self, config: CoordinateConfig):
        super().__init__()
        h = config.hidden
        self.clip = float(config.clip)
        self.use_prefix = config.condition == "prefix"
        self.kind_emb = nn.Embedding(len(LAYER_KINDS), config.kind_dim)
        self.coord_in = nn.Linear(config.history + 1, h, bias=False)
        self.tensor_in = nn.Linear(NUM_TENSOR_STATS + config.kind_dim + 2 + config.history, h)
        self.x_in = nn.Parameter(torch.randn(h) * 0.5)
        self.t_in = nn.Linear(2, h, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(h, h) for _ in range(config.depth))
        self.act = _ACTIVATIONS[config.activation]()
        self.out = nn.Linear(h, 1)
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()
        self.pooled = int(config.pooled)
        if self.pooled >= 1:
            self.pool_in = nn.Linear(pool_width(config.history + 1), h, bias=False)
        if self.pooled >= 2:
            self.pool2_in = nn.Linear(pool_width(h), h, bias=False)
        if config.schedule_aware:
            self.lr_in = nn.Linear(num_lr_inputs(config.history), h, bias=False)
        with torch.no_grad():
            for name in ("pool_in", "pool2_in", "lr_in"):
                if hasattr(self, name):
                    getattr(self, name).weight.zero_()

    def tensor_context(self, stats: Tensor, kinds: Tensor, window: Tensor, lr: Tensor | None = None) -> Tensor:
        """Per-tensor part of the first layer.

        Args:
            stats: ``(B, K, NUM_TENSOR_STATS)`` tensor statistics.
            kinds: ``(K,)`` layer-kind ids.
            window: ``(B, 2 + history)`` window inputs.
            lr: ``(B, num_lr_inputs)`` learning-rate inputs (``schedule_aware`` fields only;
                None there means a constant schedule, all zeros).

        Returns:
            ``(B, K, H)``.
        """
        b, k, _ = stats.shape
        emb = self.kind_emb(kinds).unsqueeze(0).expand(b, k, -1)
        win = window.unsqueeze(1).expand(b, k, -1)
        out = self.tensor_in(torch.cat([stats, emb, win], dim=-1))
        if lr is not None and hasattr(self, "lr_in"):
            out = out + self.lr_in(lr).unsqueeze(1)
        return out

    def pool_activation(self, static: Tensor) -> Tensor:
        """What round 2 pools: the activation of the static pre-activation, ``(B, C, H)``."""
        return self.act(static)

    def second_round(self, static: Tensor, pooled: Tensor) -> Tensor:
        """Add round 2 (``pooled=2``): ``static + pool2_in(pooled)``, pooled ``(B, C, 5 H + 2)``."""
        return static + self.pool2_in(pooled)

    def context(self, coord: Tensor, tensor_ctx: Tensor, tid: Tensor) -> Tensor:
        """Static (x- and t-independent) pre-activation of C coordinates.

        Args:
            coord: ``(B, C, history + 1)`` coordinate inputs; for ``pooled >= 1`` fields
                ``(B, C, 6 (history + 1) + 2)``: those followed by their round-1 pooled inputs
                (:func:`.pooled.gather` with ``lead=True``).
            tensor_ctx: ``(B, K, H)`` from :meth:`tensor_context`.
            tid: ``(C,)`` or ``(B, C)`` tensor index of each coordinate.

        Returns:
            ``(B, C, H)``.
        """
        b, c, _ = coord.shape
        if tid.dim() == 1 and c > 0 and int(tid[0]) == int(tid[-1]):
            gathered = tensor_ctx[:, int(tid[0])].unsqueeze(1)  # chunk inside one tensor: broadcast
        elif tid.dim() == 1:
            gathered = tensor_ctx[:, tid]
        else:
            gathered = torch.gather(tensor_ctx, 1, tid.unsqueeze(-1).expand(b, c, tensor_ctx.shape[-1]))
        if not self.use_prefix:
            return gathered.expand(b, c, -1)
        if self.pooled == 0:
            return self.coord_in(coord) + gathered
        width = self.coord_in.in_features + self.pool_in.in_features
        if coord.shape[-1] != width:
            raise ValueError(f"this field has pooled={self.pooled} and reads {width} inputs per coordinate (its own "
                             f"and their pooled terms), got {coord.shape[-1]}")
        joint = torch.cat([self.coord_in.weight, self.pool_in.weight], dim=1)  # one product for both parts
        return nn.functional.linear(coord, joint) + gathered

    def velocity(self, base: Tensor, x: Tensor, t: Tensor, t_n: Tensor) -> Tensor:
        """Normalized velocity ``dx/dt`` of C coordinates.

        Args:
            base: ``(B, C, H)`` from :meth:`context`.
            x: ``(B, C)`` normalized current values.
            t: ``(B,)`` times.
            t_n: ``(B,)`` start times ``n / m`` of the windows.

        Returns:
            ``(B, C)``.
        """
        frac = (t - t_n) / (1.0 - t_n).clamp(min=1e-6)
        tpart = self.t_in(torch.stack([t, frac], dim=-1)).unsqueeze(1)
        h = torch.addcmul(tpart, x.clamp(-self.clip, self.clip).unsqueeze(-1), self.x_in)
        h += base
        inplace = not torch.is_grad_enabled()  # inference: in-place activations save memory traffic
        h = self._act(h, inplace)
        for layer in self.hidden:
            h = self._act(layer(h), inplace)
        return self.out(h).squeeze(-1)

    def _act(self, h: Tensor, inplace: bool) -> Tensor:
        if not inplace:
            return self.act(h)
        if isinstance(self.act, nn.ELU):
            return nn.functional.elu_(h)
        if isinstance(self.act, nn.ReLU):
            return h.relu_()
        return self.act(h)



def new_field(config: CoordinateConfig, seed: int | None = 0) -> CoordinateField:
    """A :class:`CoordinateField` initialised from ``seed`` (``None``: not initialised, for loading).

    The global RNG is left untouched (see :func:`gfm_accel.forecast._modules.build_module`).
    """
    return build_module(lambda: CoordinateField(config), seed)
