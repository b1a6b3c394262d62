"""WeightRecorder: snapshot a live model's flattened parameters during training.

Snapshots are detached copies kept off the training device (CPU), float32 by default,
with a bound on memory:

* ``keep="all"``: every snapshot in RAM;
* ``keep=K``: only the last K (a sliding window, what periodic jumps need);
* ``spill_dir=DIR``: each snapshot goes to its own safetensors file as it is taken, so RAM
  stays O(D) whatever the run length (files are written atomically).

Indexing: with ``record_initial=True`` the weights at construction are snapshot ``step 0``
(``w_0``). In epoch mode the snapshot after epoch ``e`` (0-based) has step ``e + 1``; in
step mode (``every=k``) the step is the optimizer step count, recorded whenever it is a
multiple of k.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> rec = WeightRecorder(model)            # records w_0
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> for epoch in range(3):
    ...     model(torch.randn(8, 3)).pow(2).mean().backward(); opt.step(); opt.zero_grad()
    ...     rec.on_epoch_end()
    True
    True
    True
    >>> rec.steps, tuple(rec.weights().shape)
    ([0, 1, 2, 3], (4, 4))
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._io import FileFormatError, atomic_save_file, decode_metadata, encode_metadata, load_tensors, read_header
from .params import ParamSpec, flatten_params
from .trajectories import Trajectories, save_trajectories

__all__ = ["WeightRecorder"]

logger = logging.getLogger(__name__)

_STATE_FORMAT = "gfm_accel.recorder_state"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class WeightRecorder:
    """Record flattened parameter snapshots of a live model.

    Args:
        model: the model being trained.
        every: ``"epoch"`` (record on :meth:`on_epoch_end`) or an int k (record on every
            k-th :meth:`on_step`).
        keep: ``"all"`` or an int K, the number of most recent snapshots kept.
        spill_dir: if given, each snapshot is written to ``spill_dir/snap_<step>.safetensors``
            and only its path is kept in memory.
        dtype: storage dtype (float32, float16 or bfloat16). Weights are returned as float32.
        include_frozen: also record parameters with ``requires_grad=False``.
        record_initial: snapshot the weights at construction as step 0.
        spec: an explicit parameter layout (defaults to ``ParamSpec.from_model(model)``).

    Example:
        >>> rec = WeightRecorder(torch.nn.Linear(2, 2), every=5, keep=3)
        >>> [rec.on_step() for _ in range(10)].count(True)
        2
        >>> rec.steps
        [0, 5, 10]
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: str | int = "epoch",
        keep: str | int = "all",
        spill_dir: str | os.PathLike | None = None,
        dtype: torch.dtype | str = torch.float32,
        include_frozen: bool = False,
        record_initial: bool = True,
        spec: ParamSpec | None = None,
    ) -> None:
        if every != "epoch" and not (isinstance(every, int) and every > 0):
            raise ValueError(f"every must be 'epoch' or a positive int (optimizer steps), got {every!r}")
        if keep != "all" and not (isinstance(keep, int) and keep > 0):
            raise ValueError(f"keep must be 'all' or a positive int, got {keep!r}")
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
            dtype = _DTYPES[dtype]
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
        self.model = model
        self.every = every
        self.keep = keep
        self.dtype = dtype
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self.spec = spec or ParamSpec.from_model(model, include_frozen=include_frozen)
        self.spec.check_model(model)
        maxlen = None if keep == "all" else keep
        # Each item: (step, loss or None, tensor or Path)
        self._items: deque[tuple[int, float | None, Any]] = deque(maxlen=maxlen)
        self.optimizer_steps = 0
        self.epochs = 0
        if self.spill_dir is not None:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
        if record_initial:
            self.record(0)

    # ---------------------------------------------------------------- hooks
    def on_step(self) -> bool:
        """Call after each optimizer step. Returns True when a snapshot was taken."""
        self.optimizer_steps += 1
        if isinstance(self.every, int) and self.optimizer_steps % self.every == 0:
            self.record(self.optimizer_steps)
            return True
        return False

    def on_epoch_end(self) -> bool:
        """Call at each epoch end. Returns True when a snapshot was taken."""
        self.epochs += 1
        if self.every == "epoch":
            self.record(self.epochs)
            return True
        return False

    @torch.no_grad()
    def record(self, step: int | None = None, loss: float | None = None) -> None:
        """Take a snapshot now.

        Args:
            step: its index; defaults to the recorder's epoch or step counter.
            loss: an optional task loss stored beside it.
        """
        if step is None:
            step = self.epochs if self.every == "epoch" else self.optimizer_steps
        if self._items and step <= self._items[-1][0]:
            raise ValueError(f"snapshot step {step} is not after the last recorded step {self._items[-1][0]}")
        if self.spill_dir is not None:
            vec = flatten_params(self.model, self.spec, dtype=self.dtype)
            path = self.spill_dir / f"snap_{step:09d}.safetensors"
            atomic_save_file({"w": vec}, path, {"format": "gfm_accel.snapshot", "step": str(step)})
            value: Any = path
            if self.keep != "all" and len(self._items) == self._items.maxlen:
                old = self._items[0][2]
                if isinstance(old, Path):
                    old.unlink(missing_ok=True)
        else:
            value = flatten_params(self.model, self.spec, dtype=self.dtype)
        self._items.append((int(step), None if loss is None else float(loss), value))

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._items)

    @property
    def steps(self) -> list[int]:
        return [s for s, _, _ in self._items]

    @property
    def losses(self) -> list[float | None]:
        return [loss for _, loss, _ in self._items]

    def _load(self, value: Any) -> torch.Tensor:
        if isinstance(value, Path):
            return load_tensors(value, ["w"])["w"].float()
        return value.float()

    def last(self, k: int) -> torch.Tensor:
        """The most recent ``k`` snapshots, oldest first: ``(k, D)`` float32."""
        if k > len(self._items):
            raise ValueError(f"asked for the last {k} snapshots but only {len(self._items)} are kept")
        items = list(self._items)[len(self._items) - k :]
        return torch.stack([self._load(v) for _, _, v in items])

    def weights(self) -> torch.Tensor:
        """All kept snapshots, oldest first: ``(T, D)`` float32."""
        if not self._items:
            return torch.empty(0, self.spec.numel)
        return torch.stack([self._load(v) for _, _, v in self._items])

    def to_trajectory(self, **metadata: Any) -> Trajectories:
        """The kept snapshots as a one-trajectory :class:`Trajectories` (N = 1)."""
        losses = self.losses
        loss = None
        if losses and all(v is not None for v in losses):
            loss = torch.tensor([losses], dtype=torch.float32)
        meta = {"steps": self.steps, "spec": self.spec.to_dict(), "unit": "epoch" if self.every == "epoch" else f"{self.every} steps"}
        meta.update(metadata)
        return Trajectories(weights=self.weights().unsqueeze(0), loss=loss, metadata=meta)

    def save(self, path: str | os.PathLike, **metadata: Any) -> Path:
        """Write the kept snapshots as a trajectory file (N = 1)."""
        tr = self.to_trajectory(**metadata)
        meta = dict(tr.metadata)
        return save_trajectories(path, tr.weights, loss=tr.loss, **meta)

    def clear(self) -> None:
        """Forget every snapshot (spilled files are deleted); counters are kept."""
        for _, _, v in self._items:
            if isinstance(v, Path):
                v.unlink(missing_ok=True)
        self._items.clear()

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs. Snapshots are a ``(T, D)`` tensor under ``"weights"``."""
        return {
            "steps": self.steps,
            "losses": self.losses,
            "optimizer_steps": self.optimizer_steps,
            "epochs": self.epochs,
            "spec": self.spec.to_dict(),
            "weights": self.weights().to(self.dtype),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore snapshots and counters saved by :meth:`state_dict`.

        Raises:
            ValueError: the saved layout differs from this recorder's model.
        """
        spec = ParamSpec.from_dict(state["spec"]) if isinstance(state["spec"], dict) else state["spec"]
        if spec != self.spec:
            raise ValueError(
                f"recorder state was saved for a different parameter layout ({spec.describe_difference(self.spec)})"
            )
        weights = state["weights"]
        steps = list(state["steps"])
        if weights.shape != (len(steps), self.spec.numel):
            raise ValueError(f"recorder state weights have shape {tuple(weights.shape)}, expected ({len(steps)}, {self.spec.numel})")
        losses = list(state.get("losses") or [None] * len(steps))
        self.clear()
        self.optimizer_steps = int(state["optimizer_steps"])
        self.epochs = int(state["epochs"])
        for step, loss, w in zip(steps, losses, weights):
            if self.spill_dir is not None:
                path = self.spill_dir / f"snap_{step:09d}.safetensors"
                atomic_save_file({"w": w.to(self.dtype).clone()}, path, {"format": "gfm_accel.snapshot", "step": str(step)})
                self._items.append((int(step), loss, path))
            else:
                self._items.append((int(step), loss, w.to(self.dtype).clone()))

    def save_state(self, path: str | os.PathLike) -> Path:
        """Write :meth:`state_dict` as one safetensors file (atomically)."""
        state = self.state_dict()
        meta = encode_metadata({k: v for k, v in state.items() if k != "weights"})
        meta["format"] = _STATE_FORMAT
        meta["version"] = "1"
        return atomic_save_file({"weights": state["weights"]}, path, meta)

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore from a file written by :meth:`save_state`."""
        meta, _ = read_header(path)
        if meta.get("format") != _STATE_FORMAT:
            raise FileFormatError(f"{path}: not a recorder state file (format {meta.get('format')!r})")
        state = decode_metadata(meta, raw_keys=("format", "version"))
        state["weights"] = load_tensors(path, ["weights"])["weights"]
        self.load_state_dict(state)
