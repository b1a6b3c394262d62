"""The char-level GPT workload: size, corpus and splits, determinism, learning."""

import sysconfig
from pathlib import Path

import pytest
import torch

from gfm_accel.lab.tasks.char_gpt import GPT, CharGPT, split_text, stdlib_text
from gfm_accel.lab.tasks.workload import num_parameters

TINY = dict(total_steps=5, batch_size=4, context=32, dim=32, depth=1, heads=2, val_batches=2, guard_batches=1)


def test_default_model_has_over_a_million_parameters():
    assert num_parameters(CharGPT().make_model()) == 1_263_616
    task = CharGPT()
    assert (task.optimizer, task.schedule, task.total_steps) == ("adamw", "warmup_cosine", 300)


def test_corpus_is_the_sorted_stdlib_source_and_multi_megabyte():
    text = stdlib_text()
    assert len(text) > 2_000_000
    first = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[0]
    assert text.startswith(first.read_bytes())


def test_split_is_disjoint_and_covers_the_corpus():
    data = b"".join(bytes([i]) * 256 for i in range(40))  # chunk i holds only the byte i
    s = split_text(data, chunk=256)
    assert set(s.val.tolist()) == {0, 20} and set(s.guard.tolist()) == {10, 30}
    assert set(s.train.tolist()) == set(range(40)) - {0, 10, 20, 30}
    assert (len(s.train), len(s.val), len(s.guard)) == (36 * 256, 2 * 256, 2 * 256)
    assert s.train[:257].tolist() == [1] * 256 + [2]  # train chunks in corpus order
    real = CharGPT().splits()
    assert len(real.train) + len(real.val) + len(real.guard) == len(stdlib_text())
    assert len(real.val) > 200_000 and len(real.guard) > 200_000
    with pytest.raises(ValueError, match="at least 21"):
        split_text(b"x" * 100, chunk=10)


def test_batches_are_deterministic_per_seed_and_leave_the_global_rng_alone():
    task = CharGPT(**TINY)
    state = torch.get_rng_state()
    a, b, c = task.build(1), task.build(1), task.build(2)
    assert torch.equal(torch.get_rng_state(), state)
    for _ in range(3):
        (xa, ya), (xb, yb), (xc, _) = next(a.batches), next(b.batches), next(c.batches)
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and not torch.equal(xa, xc)
        assert torch.equal(xa[:, 1:], ya[:, :-1])  # labels are the next bytes
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert not torch.equal(next(a.model.parameters()), next(c.model.parameters()))


def test_a_few_steps_reduce_the_val_loss():
    task = CharGPT(**TINY)
    run = task.build(0)
    opt = torch.optim.AdamW(run.model.parameters(), lr=1e-2)
    before = run.evaluate(run.model)
    assert before.loss == pytest.approx(torch.log(torch.tensor(256.0)).item(), abs=0.1)  # uniform at init
    for _ in range(15):
        opt.zero_grad()
        run.loss(run.model, next(run.batches)).backward()
        opt.step()
    after = run.evaluate(run.model)
    assert after.loss < before.loss - 1.0 and after.accuracy > before.accuracy
    assert run.guard(run.model) < before.loss - 1.0
    assert run.model.training


def test_bad_config_and_causality():
    with pytest.raises(ValueError, match="multiple of heads"):
        CharGPT(dim=30, heads=4)
    with pytest.raises(ValueError, match="unknown schedule"):
        CharGPT(schedule="step")
    m = GPT(context=8, dim=16, depth=1, heads=2)
    x = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 256
    assert torch.equal(m(x)[:, :-1], m(y)[:, :-1])  # changing the last byte leaves earlier logits alone
    with pytest.raises(ValueError, match="exceeds the context"):
        m(torch.zeros(1, 9, dtype=torch.long))
    assert CharGPT.from_json(CharGPT(**TINY).to_json()) == CharGPT(**TINY)


def test_positive_integer_fields_are_checked_by_name():
    with pytest.raises(ValueError, match="CharGPT: depth must be a positive integer, got 0"):
        CharGPT(depth=0)
    with pytest.raises(ValueError, match="CharGPT: batch_size must be a positive integer, got 2.0"):
        CharGPT(batch_size=2.0)
