"""The model-agnostic ("coordinate") GFM forecaster: one small field shared by every scalar.

The dense GFM field of the paper maps ``R^D x [0, 1] -> R^D`` and is therefore tied to one D.
This variant keeps the paper's flow objective (Eq. 9 + the zeta midpoint-consistency term,
Algorithm 1, via :func:`gfm_accel.flow.loss.gfm_loss`) but solves D independent 1-D flows,
one per coordinate, with a single network ``v(x, t | features)`` shared by all of them.

What the network sees for one coordinate (all in the per-tensor frame of
:mod:`.features`: centred on ``w_n``, divided by the tensor's scale ``s``
of the observed movement, hence scale-free):

* its current normalized value ``x`` on the path and the time ``t`` (also
  ``(t - t_n) / (1 - t_n)``, the fraction of the forecast interval covered);
* its own observed prefix: the last ``history`` normalized steps and ``x_0``;
* per-tensor statistics (relative movement, last-step ratio, step cosine, log size);
* a learned embedding of the tensor's layer kind (:data:`gfm_accel.params.LAYER_KINDS`);
* the window geometry (``t_n = n/m``, ``log(m - n)``, which history steps exist);
* opt-in, off by default (``docs/neuron_interaction.md``): with ``pooled=1`` or ``2`` the row,
  column, tensor and adjacent-layer means of those inputs (NFN-style neuron interaction,
  :mod:`.pooled`); with ``schedule_aware=True`` the learning-rate profile of the window and
  the horizon (:func:`.features.lr_inputs`).

The first layer is linear in the concatenation of these inputs, so it is evaluated in parts:
the per-tensor part once per tensor, the per-coordinate part once per chunk, and only the
``(x, t)`` part at every ODE evaluation. This is the same network as one MLP over the
concatenated inputs, just cheaper (10M coordinates in a few seconds on one CPU thread).

Design choices (and where the paper is ambiguous):

* ``path="from_last"`` is the default here. The paper's path (``"paper"``) runs from ``w_0``
  to ``w_m`` beyond the prefix while inference starts at ``w_n``; in the per-tensor frame
  ``w_n`` is the origin, so the consistent straight path from ``0`` at ``t_n`` to ``y`` at 1
  (velocity ``y / (1 - t_n)``) is the natural one. ``path="paper"`` is supported and tested.
* Inference defaults to **one explicit-midpoint step** (``solver="midpoint"``,
  ``num_steps=1``): this is exactly the map the zeta-weighted consistency term trains
  (zeta = 100 makes it the dominant term), it is 2 field evaluations per coordinate, and
  on the from_last path the target velocity is constant along the path, so more steps
  change little. Euler with a step ``h`` and early stop on ``||h v|| < tau`` (the paper's
  Sec. 4.4) is available with ``solver="euler", step=h``.
* Early stopping is decided per chunk of coordinates (the l2 norm of the chunk's update,
  in weight units). Coordinates are independent 1-D ODEs, so each chunk is a complete
  sub-system; a chunk stops no later than the whole vector would.
* Losses are averaged over coordinates (not summed), so the scale does not depend on D;
  targets in the normalized frame are clipped to ``[-clip, clip]`` for robustness.
* ``condition="none"`` is an ablation that zeroes the coordinate's own-prefix inputs (the
  field then sees only ``x, t``, the tensor statistics, the kind and the window geometry).
* Training samples random **windows** (``windows=True``): a trajectory, a stride (snapshot
  subsampling), an ``n`` from ``n_choices``, a horizon ``m - n`` and a start index, then a
  random subset of coordinates per window. So one forecaster serves any ``(n, m)``. At
  inference the window frame is ``t_i = i / m`` with the prefix's first snapshot as ``w_0``.
  ``windows=False`` trains on the paper's fixed ``(w_0..w_n -> w_m)`` only.
* ``prior="line"`` (not the paper's; default ``"last"``) makes the flow a **correction of the
  least-squares line**: per coordinate, the line ``L(j) = a + b j`` fitted to the normalized
  prefix ``x_0..x_n`` is extended to ``m``, and the field learns the residual flow from 0 at
  ``t_n`` to ``y - L(m)`` at 1; the forecast is ``L(m)`` plus the integrated residual. A field
  that outputs 0 is then exactly :class:`~gfm_accel.forecast.simple.LineFitForecaster`, so
  whatever it adds over the line is what GFM learned. On the prefix part of the path the
  state is the detrended prefix ``x_j - L(j)``, shifted to be 0 at ``n``. The relative loss
  weighting still divides by the last-value error ``E_c[y^2]``.

Layout of this subpackage: :mod:`.config` (:class:`CoordinateConfig`), :mod:`.features` (the
per-tensor frame and the network inputs), :mod:`.field` (:class:`CoordinateField`),
:mod:`.pooled` (the pooled context of ``pooled >= 1``), :mod:`.windows` (training-window sampling), :mod:`.train` (loss and the DDP training loop),
:mod:`.infer` (chunked inference) and :mod:`.backend` (:class:`CoordinateBackend`, what
:class:`~gfm_accel.forecast.forecaster.GFMForecaster` talks to).

Example:
    >>> import torch
    >>> backend = CoordinateBackend(hidden=8)
    >>> backend.forecast(torch.randn(5, 30), m=20).final.shape
    torch.Size([1, 30])
"""

from .backend import CoordinateBackend
from .config import NORMALIZATION, CoordinateConfig
from .field import CoordinateField
from .windows import WindowBatch

__all__ = ["NORMALIZATION", "CoordinateConfig", "CoordinateField", "WindowBatch", "CoordinateBackend"]
