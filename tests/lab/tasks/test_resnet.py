"""The residual CNN workload: size, BatchNorm, splits, determinism, learning."""

import pytest
import torch
from torch import nn

from gfm_accel.lab.tasks.resnet import ResNet, ResNetTask, load_images
from gfm_accel.lab.tasks.workload import num_parameters


def test_default_model_size_and_batchnorm_residual_blocks():
    model = ResNetTask().make_model()
    assert num_parameters(model) == 603_498
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 11  # stem 1, 4 blocks x 2, 2 projections
    assert ResNet(in_channels=3).stem[0].in_channels == 3
    task = ResNetTask()
    assert (task.optimizer, task.schedule, task.total_steps, task.batch_size) == ("sgdm", "warmup_cosine", 300, 64)


def test_digits_splits_are_disjoint_and_standardized():
    s = load_images("digits")
    assert (len(s.x_train), len(s.x_val), len(s.x_guard)) == (1197, 400, 200)
    assert tuple(s.x_train.shape[1:]) == (1, 8, 8)
    assert s.x_train.mean().abs() < 1e-5 and (s.x_train.std() - 1).abs() < 1e-3
    # disjoint: the splits are cut from one permutation of the 1797 images; compare the images
    # themselves (a few digits images repeat exactly in the raw data, hence the small allowance)
    key = lambda x, y: {(tuple(r.flatten().tolist()), int(c)) for r, c in zip(x, y)}  # noqa: E731
    train, val, guard = key(s.x_train, s.y_train), key(s.x_val, s.y_val), key(s.x_guard, s.y_guard)
    assert len(val & guard) == 0 and len(val & train) <= 2 and len(guard & train) <= 2


def test_cifar10_needs_a_data_dir_and_never_downloads(tmp_path):
    with pytest.raises(ValueError, match="needs data_dir"):
        ResNetTask(dataset="cifar10")
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found in"):
        load_images("cifar10", str(tmp_path))  # lab.datasets' error: the files are not there
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="unknown dataset"):
        ResNetTask(dataset="mnist")
    with pytest.raises(ValueError, match="blocks must be positive integers"):
        ResNetTask(blocks=(1, 0))
    task = ResNetTask(width=16, blocks=(2, 2))
    assert ResNetTask.from_json(task.to_json()) == task and task.to_dict()["blocks"] == [2, 2]


def test_batches_are_deterministic_per_seed_and_leave_the_global_rng_alone():
    task = ResNetTask(width=8)
    state = torch.get_rng_state()
    a, b, c = task.build(3), task.build(3), task.build(4)
    assert torch.equal(torch.get_rng_state(), state)
    seen = []
    for _ in range(18):  # 1197 // 64 = 18 batches per epoch: one epoch, each image once
        (xa, ya), (xb, yb), (xc, _) = next(a.batches), next(b.batches), next(c.batches)
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and not torch.equal(xa, xc)
        seen.append(xa)
    assert len(torch.unique(torch.cat(seen).flatten(1), dim=0)) >= 18 * 64 - 10
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert len(a.bn_batches) == 4 and tuple(a.bn_batches[0].shape) == (64, 1, 8, 8)


def test_a_few_steps_reduce_the_val_loss():
    run = ResNetTask(width=8).build(0)
    opt = torch.optim.SGD(run.model.parameters(), lr=0.05, momentum=0.9)
    before = run.evaluate(run.model)
    for _ in range(20):
        opt.zero_grad()
        run.loss(run.model, next(run.batches)).backward()
        opt.step()
    after = run.evaluate(run.model)
    assert after.loss < 0.6 * before.loss and after.accuracy > 0.6 > before.accuracy
    assert run.guard(run.model) < 0.6 * before.loss


def test_augment_flips_and_crops_from_the_generator():
    from gfm_accel.lab.tasks.resnet import _augment

    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    out1 = _augment(x, torch.Generator().manual_seed(0), pad=1)
    out2 = _augment(x, torch.Generator().manual_seed(0), pad=1)
    assert torch.equal(out1, out2) and out1.shape == x.shape
    assert not torch.equal(out1, x)
