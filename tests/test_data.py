"""Data modules: the IDX reader, MNIST sources (synthetic files and the real test split), digits."""

from __future__ import annotations

import gzip
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ibkit.data import (
    MNIST_MEAN,
    MNIST_STD,
    DigitsDataModule,
    MNISTDataModule,
    make_datamodule,
    read_idx,
    read_mnist_split,
)

REAL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in .gz)."""
    header = bytes([0, 0, TYPE_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)
    return path


def write_mnist(directory: Path, split: str, n: int, seed: int, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Random 28×28 uint8 images and 0..9 labels as MNIST IDX files of ``split``."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


# ---------------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("name", ["data.idx", "data.idx.gz"])
@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([-5, 0, 70000], dtype=np.int32),
    np.array([[1.5, -2.25], [1e-3, 3e4]], dtype=np.float32),
])
def test_read_idx_round_trips_raw_and_gz(tmp_path, name, array):
    result = read_idx(write_idx(tmp_path / name, array))
    assert result.shape == array.shape and result.dtype == array.dtype
    np.testing.assert_array_equal(result, array)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x1f\x00\x08\x01" + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(ValueError, match="magic"):
        read_idx(path)


def test_read_idx_rejects_unknown_type_code(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(ValueError, match="type code"):
        read_idx(path)


@pytest.mark.parametrize("extra", [-1, 1])
def test_read_idx_rejects_size_mismatch(tmp_path, extra):
    path = tmp_path / "short.idx.gz"
    write_idx(path, np.zeros((3, 4), dtype=np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:extra] if extra < 0 else raw + b"\x00"))
    with pytest.raises(ValueError, match="shape"):
        read_idx(path)


def test_read_mnist_split_checks_files(tmp_path):
    images, labels = write_mnist(tmp_path, "test", 12, seed=0, gz=False)
    got_images, got_labels = read_mnist_split(str(tmp_path), "test")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert read_mnist_split(str(tmp_path), "train") is None
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(ValueError, match="incomplete"):
        read_mnist_split(str(tmp_path), "test")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8))
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        read_mnist_split(str(tmp_path), "test")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((11, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="28, 28"):
        read_mnist_split(str(tmp_path), "test")


# ------------------------------------------------------------------------------------- MNIST
def test_mnist_full_idx_directory(tmp_path):
    train_images, train_labels = write_mnist(tmp_path, "train", 50, seed=1)
    test_images, _ = write_mnist(tmp_path, "test", 20, seed=2)
    module = MNISTDataModule(tmp_path, batch_size=8, val_fraction=0.2, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full data set must not warn
        module.setup("fit")
    assert module.source == "idx"
    assert [len(s) for s in (module.train_set, module.val_set, module.test_set)] == [40, 10, 20]
    expected = (torch.as_tensor(test_images, dtype=torch.float32) / 255 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(module.test_set.tensors[0][:, 0], expected)
    labels = torch.cat([module.train_set.tensors[1], module.val_set.tensors[1]])
    assert torch.equal(labels.bincount(minlength=10), torch.as_tensor(train_labels).long().bincount(minlength=10))
    x, y = next(iter(module.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    # the probe is the test split, topped up with validation samples
    probe_x, probe_y = module.probe_tensors(25)
    assert probe_x.shape == (25, 1, 28, 28)
    assert torch.equal(probe_x[:20], module.test_set.tensors[0])
    assert module.probe_tensors(10)[0].shape[0] == 10


def test_mnist_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist(raw, "train", 30, seed=1, gz=False)
    test_images, _ = write_mnist(raw, "test", 10, seed=2, gz=False)
    module = MNISTDataModule(tmp_path, seed=0)
    module.setup()
    assert module.source == "torchvision"
    assert len(module.test_set) == 10 and len(module.train_set) + len(module.val_set) == 30


def test_mnist_test_only_directory_warns_and_splits(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", "test", 100, seed=0)  # gz files: not torchvision's layout
    module = MNISTDataModule(tmp_path, val_fraction=0.1, test_fraction=0.2, seed=0)
    with pytest.warns(UserWarning, match="only the 100-image test split"):
        module.setup()
    assert module.source == "idx-test-only"
    assert [len(s) for s in (module.train_set, module.val_set, module.test_set)] == [70, 10, 20]


def test_mnist_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        MNISTDataModule(tmp_path / "nowhere").setup()


@pytest.mark.skipif(not (REAL_MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="real MNIST test split not present")
def test_real_mnist_test_split():
    module = make_datamodule("mnist", REAL_MNIST, seed=0)
    with pytest.warns(UserWarning, match="only the 10000-image test split"):
        module.setup("fit")
    splits = (module.train_set, module.val_set, module.test_set)
    assert [len(s) for s in splits] == [7000, 1000, 2000]
    images, labels = read_mnist_split(str(REAL_MNIST), "test")
    all_labels = torch.cat([s.tensors[1] for s in splits])
    assert torch.equal(all_labels.bincount(), torch.as_tensor(labels).long().bincount())
    x = torch.cat([s.tensors[0] for s in splits])
    assert x.shape == (10_000, 1, 28, 28)
    assert float(x.min()) == pytest.approx(-MNIST_MEAN / MNIST_STD, abs=1e-6)
    assert float(x.sum()) == pytest.approx(float(((images / 255.0 - MNIST_MEAN) / MNIST_STD).sum()), rel=1e-4)
    probe_x, probe_y = module.probe_tensors()
    assert probe_x.shape == (3000, 1, 28, 28) and probe_y.shape == (3000,)


# ------------------------------------------------------------------------------------ digits
def test_digits_shapes_splits_and_normalisation():
    module = DigitsDataModule(batch_size=16, seed=0)
    assert module.input_shape == (1, 8, 8) and module.num_classes == 10
    module.setup("fit")
    sizes = [len(s) for s in (module.train_set, module.val_set, module.test_set)]
    assert sizes == [1258, 180, 359] and sum(sizes) == 1797
    train_x = module.train_set.tensors[0]
    assert train_x.dtype == torch.float32 and train_x.shape == (1258, 1, 8, 8)
    assert float(train_x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(train_x.std()) == pytest.approx(1.0, abs=1e-4)
    x, y = next(iter(module.val_dataloader()))
    assert x.shape == (16, 1, 8, 8) and y.dtype == torch.int64
    probe_x, probe_y = module.probe_tensors()
    assert probe_x.shape == (359 + 180, 1, 8, 8) and probe_y.shape == (539,)
    assert module.probe_tensors(100)[0].shape == (100, 1, 8, 8)


def test_digits_is_deterministic_given_seed():
    first, again, other = DigitsDataModule(seed=0), DigitsDataModule(seed=0), DigitsDataModule(seed=1)
    for module in (first, again, other):
        module.setup()
    assert torch.equal(first.train_set.tensors[0], again.train_set.tensors[0])
    assert torch.equal(first.test_set.tensors[1], again.test_set.tensors[1])
    assert not torch.equal(first.test_set.tensors[1], other.test_set.tensors[1])
    assert torch.equal(next(iter(first.train_dataloader()))[1], next(iter(again.train_dataloader()))[1])
    assert torch.equal(first.probe_tensors(50)[0], again.probe_tensors(50)[0])


def test_factory_and_argument_checks():
    assert isinstance(make_datamodule("digits", batch_size=8), DigitsDataModule)
    with pytest.raises(ValueError, match="digits, mnist"):
        make_datamodule("cifar")
    with pytest.raises(ValueError, match="no data_dir"):
        make_datamodule("digits", "/tmp")
    with pytest.raises(ValueError, match="val_fraction"):
        DigitsDataModule(val_fraction=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        MNISTDataModule(batch_size=0)
    with pytest.raises(ValueError, match="size"):
        DigitsDataModule().probe_tensors(0)
