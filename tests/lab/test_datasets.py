"""Image dataset loading."""

import pytest
import torch

from gfm_accel.lab.datasets import load_image_dataset


def test_digits():
    ds = load_image_dataset("digits")
    assert ds.train_x.shape == (1438, 1, 8, 8) and ds.val_x.shape == (359, 1, 8, 8)
    assert ds.num_classes == 10 and ds.input_shape == (1, 8, 8) and ds.name == "digits"
    assert abs(float(ds.train_x.mean())) < 1e-4 and abs(float(ds.train_x.std()) - 1) < 1e-3
    assert set(ds.train_y.tolist()) == set(range(10))
    train_x, train_y, val_x, val_y, k, shape = ds
    assert torch.equal(train_x, ds.train_x) and k == 10
    # fixed split
    assert torch.equal(load_image_dataset("digits").val_y, ds.val_y)
    sub = ds.subset(100, 20)
    assert len(sub.train_y) == 100 and len(sub.val_y) == 20


def test_cifar_missing_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        load_image_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        load_image_dataset("cifar10")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        load_image_dataset("mnist")


def test_fake_data_is_deterministic_and_cifar_shaped():
    a = load_image_dataset("fake")
    b = load_image_dataset("fake")
    assert a.train_x.shape == (512, 3, 32, 32) and a.val_x.shape == (128, 3, 32, 32)
    assert a.num_classes == 10 and a.input_shape == (3, 32, 32)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.train_x[:128], a.val_x)  # different offsets, different images
    assert int(a.train_y.min()) >= 0 and int(a.train_y.max()) <= 9


def test_train_guard_val_splits():
    from gfm_accel.lab.datasets import load_split, zoo_digits

    d = load_split("digits")
    assert (len(d.x_train), len(d.x_guard), len(d.x_val), d.shape) == (1197, 200, 400, (8, 8))
    assert abs(float(d.x_train.mean())) < 1e-4 and abs(float(d.x_train.std()) - 1) < 1e-3
    img = load_split("digits", 300).as_images()
    assert img.x_train.shape == (300, 1, 8, 8) and img.shape == (1, 8, 8)
    assert torch.equal(img.x_val.flatten(1), load_split("digits", 300).x_val.flatten(1))
    m = load_split("mnist1d")
    assert (len(m.x_train), len(m.x_guard), len(m.x_val), m.shape) == (2800, 400, 800, (40,))
    xtr, ytr, xva, yva = zoo_digits(image=True)
    assert xtr.shape == (1400, 1, 8, 8) and len(yva) == 397
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_split("mnist")
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        load_split("cifar10")
