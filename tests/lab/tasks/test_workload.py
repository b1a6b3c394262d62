"""The shared batch generators of the workloads: the same batches as the per-task copies they replaced.

The expected numbers were produced by the generators as they stood before the refactor (the copies
in ``tasks/fresh.py`` and ``tasks/char_gpt.py``); they can be checked by hand: ``torch.randint(0, 15,
(3,), generator=torch.Generator().manual_seed(0))`` is ``[14, 9, 8]``, and windows of ``arange``
are runs of consecutive numbers.
"""

import doctest
import itertools

import torch

from gfm_accel.lab.tasks import workload
from gfm_accel.lab.tasks.workload import shuffled_batches, spaced_window_batches, text_windows, window_batches


def test_doctests_and_names():
    assert doctest.testmod(workload).failed == 0
    assert all(isinstance(n, str) and hasattr(workload, n) for n in workload.__all__)


def test_window_batches_reproduce_the_previous_generator_and_leave_the_global_rng_alone():
    stream = torch.arange(20, dtype=torch.uint8)
    state = torch.get_rng_state()
    got = list(itertools.islice(window_batches(stream, batch_size=3, context=4, seed=0), 2))
    assert torch.equal(torch.get_rng_state(), state)
    starts = [[x[0] for x in xb.tolist()] for xb, _ in got]
    assert starts == [[14, 9, 8], [0, 13, 9]]  # torch.randint(0, 20 - 4 - 1, (3,)) twice, seed 0
    for (x, y), s in zip(got, starts):
        assert x.dtype == y.dtype == torch.long and tuple(x.shape) == tuple(y.shape) == (3, 4)
        assert x.tolist() == [list(range(o, o + 4)) for o in s]
        assert torch.equal(y, x + 1)  # the next-token shift
    assert torch.equal(got[0][0], next(window_batches(stream, 3, 4, seed=0))[0])
    assert not torch.equal(got[0][0], next(window_batches(stream, 3, 4, seed=1))[0])


def test_shuffled_batches_reproduce_the_previous_generator_and_leave_the_global_rng_alone():
    x, y = torch.arange(5), 10 * torch.arange(5)
    state = torch.get_rng_state()
    got = [(a.tolist(), b.tolist()) for a, b in itertools.islice(shuffled_batches(x, y, batch_size=2, seed=0), 5)]
    assert torch.equal(torch.get_rng_state(), state)
    # epoch 1: randperm(5) = [4, 0, 1, 3, 2], the partial batch [2] dropped; epoch 2 starts [3, 4, 0, 1, ...]
    assert got == [([4, 0], [40, 0]), ([1, 3], [10, 30]), ([3, 4], [30, 40]), ([0, 1], [0, 10]), ([2, 4], [20, 40])]
    # a transform sees each batch and the same generator, after the epoch's permutation
    seen = []
    t = lambda xb, g: seen.append(xb.tolist()) or xb + 100  # noqa: E731
    first = next(shuffled_batches(x, y, 2, 0, transform=t))
    assert first[0].tolist() == [104, 100] and first[1].tolist() == [40, 0] and seen == [[4, 0]]


def test_spaced_window_batches_cover_the_stream_evenly():
    got = spaced_window_batches(torch.arange(20), n=2, batch_size=2, context=4)
    assert [(a.tolist(), b.tolist()) for a, b in got] == [
        ([[0, 1, 2, 3], [5, 6, 7, 8]], [[1, 2, 3, 4], [6, 7, 8, 9]]),
        ([[10, 11, 12, 13], [15, 16, 17, 18]], [[11, 12, 13, 14], [16, 17, 18, 19]]),
    ]
    x, y = text_windows(torch.arange(20), torch.tensor([15]), context=4)
    assert x.tolist() == [[15, 16, 17, 18]] and y.tolist() == [[16, 17, 18, 19]]
