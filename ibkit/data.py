"""Lightning data modules for the bundled experiments: scikit-learn's 8×8 digits and MNIST.

Both work offline and share one interface, used by the information-plane callback, the MNIST
classifier and the noise-injected Deep InfoMax model:

* ``num_classes`` and ``input_shape`` ``(C, H, W)``, known before any data is loaded;
* ``setup(stage)``, ``train_dataloader()``, ``val_dataloader()``, ``test_dataloader()``;
* ``probe_tensors(size)``: a fixed held-out probe set ``(x, y)`` for MI estimation — the test
  split, topped up with validation samples when it has fewer than ``size`` samples, a seeded
  subset of it when it has more.

Images are float32 ``(N, C, H, W)``, labels int64 ``(N,)``. Every split is a deterministic
function of ``seed`` (and of the data), so two modules with the same arguments hold the same
samples in the same order; the training loader's shuffling is seeded as well.

MNIST is read from, in order of preference: torchvision's folder layout (``<dir>/MNIST/raw``,
or a download with ``download=True``); a directory of the original IDX files (gzip-compressed
or raw), read by :func:`read_idx`; or a directory holding only the 10k test split, which is then
split into train/validation/test with a ``UserWarning`` saying so.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, random_split

from ibkit.validation import check_number, check_positive_int

#: MNIST pixel statistics of the 60k training images (after scaling to [0, 1]), as used by
#: torchvision's examples and the ICLR 2024 paper's code.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: Default MNIST directory when ``data_dir`` is not given.
DEFAULT_MNIST_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ibkit", "mnist")

#: MNIST IDX file stems per split.
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ---------------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the format of the original MNIST files), gzip-compressed or raw.

    Parsing is torchvision's (``read_sn3_pascalvincent_tensor``, strict sizes); a ``.gz`` file is
    first decompressed into a temporary directory with ``torchvision.datasets.utils.extract_archive``.

    Returns:
        An array of the stored shape.

    Raises:
        ValueError: the file is not a valid IDX file (magic number, type code, or a data size
            that does not match its header), naming the file.
    """
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor
    from torchvision.datasets.utils import extract_archive

    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as scratch:
        raw = extract_archive(path, scratch) if path.endswith(".gz") else path
        try:
            return read_sn3_pascalvincent_tensor(raw, strict=True).numpy()
        except (AssertionError, KeyError, RuntimeError, ValueError) as error:
            raise ValueError(f"{path}: not a valid IDX file (bad magic number, type code, or data size for "
                             f"its header shape): {error or type(error).__name__}") from error


def _find_idx(directory: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def read_mnist_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The images ``(N, 28, 28)`` uint8 and labels ``(N,)`` of an MNIST split from IDX files.

    Args:
        directory: folder holding ``<split>-images-idx3-ubyte[.gz]`` and the labels file.
        split: ``"train"`` or ``"test"`` (the ``t10k`` files).

    Returns:
        ``(images, labels)``, or ``None`` when neither file of the split is present.

    Raises:
        ValueError: only one of the two files is present, or the files are not MNIST
            (wrong type, dimensions, image size, labels outside 0..9, or mismatched counts).
    """
    image_stem, label_stem = MNIST_FILES[split]
    image_path, label_path = _find_idx(directory, image_stem), _find_idx(directory, label_stem)
    if image_path is None and label_path is None:
        return None
    if image_path is None or label_path is None:
        missing = image_stem if image_path is None else label_stem
        raise ValueError(f"{directory}: MNIST {split} split is incomplete, {missing}[.gz] is missing")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{label_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{directory}: {images.shape[0]} images but {labels.shape[0]} labels in the {split} split")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_path}: labels must be digits 0..9, found {int(labels.max())}")
    return images, labels


# ------------------------------------------------------------------------------ data modules
class SplitDataModule(L.LightningDataModule):
    """Base for in-memory image data modules with seeded train/validation/test splits.

    Subclasses implement :meth:`load_splits`, returning normalised float32 images
    ``(N, *input_shape)`` and int64 labels per split. Loading happens once, in the first
    :meth:`setup` call (or :meth:`probe_tensors`).

    Args:
        batch_size: samples per training batch (evaluation loaders use the same size).
        num_workers: ``DataLoader`` worker processes.
        seed: seeds the splits, the probe subset and the training loader's shuffling.
        val_fraction: share of the training data held out for validation.
        drop_last: drop the last, incomplete training batch (for losses whose scale depends on
            the batch size, such as InfoNCE).
    """

    num_classes: int = 10
    input_shape: tuple[int, int, int]

    def __init__(self, batch_size: int = 128, num_workers: int = 0, seed: int = 0, val_fraction: float = 0.1,
                 drop_last: bool = False):
        super().__init__()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_workers = check_positive_int(num_workers, "num_workers", minimum=0)
        self.seed = check_positive_int(seed, "seed", minimum=0)
        self.val_fraction = check_number(val_fraction, "val_fraction", 0.0, 1.0, open_interval=True)
        self.drop_last = bool(drop_last)
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{"train", "val", "test"} -> (x (N, C, H, W) float32, y (N,) int64)``."""
        raise NotImplementedError

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded with ``seed + offset`` (one offset per random decision)."""
        return torch.Generator().manual_seed(self.seed + offset)

    def test_val_train_indices(self, n: int, test_fraction: float) -> dict[str, torch.Tensor]:
        """A seeded partition of ``range(n)`` into ``"test"``, ``"val"`` and ``"train"`` index tensors.

        The test and validation parts get ``test_fraction`` and ``val_fraction`` of ``n`` (see
        :func:`split_sizes`), training the rest; indices are in the permutation's order.
        """
        parts = random_split(range(n), split_sizes(n, test_fraction, self.val_fraction), generator=self.generator())
        return {name: torch.as_tensor(part.indices) for name, part in zip(("test", "val", "train"), parts)}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        splits = self.load_splits()
        for name, (x, y) in splits.items():
            if x.shape[1:] != self.input_shape or x.dtype != torch.float32 or y.dtype != torch.int64:
                raise ValueError(f"{type(self).__name__}: bad {name} split {tuple(x.shape)} {x.dtype} / {y.dtype}")
        self.train_set, self.val_set, self.test_set = (TensorDataset(*splits[name]) for name in ("train", "val", "test"))

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._make_loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._make_loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        self.setup()
        return self._make_loader(self.test_set, shuffle=False)

    def _make_loader(self, dataset: TensorDataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          generator=self.generator(1) if shuffle else None, drop_last=shuffle and self.drop_last,
                          persistent_workers=self.num_workers > 0)

    def probe_tensors(self, size: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed held-out probe set for information-plane estimates.

        The test split when it has at least ``size`` samples (a seeded random subset of it,
        kept in split order, when it has more); otherwise the whole test split followed by a
        seeded subset of the validation split filling it up to ``size`` where possible.

        Returns:
            ``x (N, C, H, W)`` float32 and ``y (N,)`` int64 with ``N = min(size, n_test + n_val)``.
        """
        size = check_positive_int(size, "size")
        self.setup()
        test_x, test_y = self.test_set.tensors
        if test_x.shape[0] >= size:
            index = torch.randperm(test_x.shape[0], generator=self.generator(2))[:size].sort().values
            return test_x[index], test_y[index]
        val_x, val_y = self.val_set.tensors
        extra = min(size - test_x.shape[0], val_x.shape[0])
        index = torch.randperm(val_x.shape[0], generator=self.generator(3))[:extra].sort().values
        return torch.cat([test_x, val_x[index]]), torch.cat([test_y, val_y[index]])


def split_sizes(n: int, *fractions: float) -> list[int]:
    """Sizes of held-out parts (``round(f·n)`` each, at least 1) and, last, the remainder.

    Raises:
        ValueError: the held-out parts leave fewer than one sample for the remainder.
    """
    held_out = [max(1, round(f * n)) for f in fractions]
    rest = n - sum(held_out)
    if rest < 1:
        raise ValueError(f"fractions {fractions} of {n} samples leave no training data")
    return held_out + [rest]


def _standardise(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return ((x - mean) / std).to(torch.float32)


class DigitsDataModule(SplitDataModule):
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes); no download.

    Pixels (0..16) are scaled to [0, 1], then standardised with the scalar pixel mean and
    standard deviation of the training split. A seeded permutation splits the images into test
    (``test_fraction``), validation (``val_fraction``) and training (the rest) parts.

    Shapes: ``x (N, 1, 8, 8)`` float32, ``y (N,)`` int64.

    Args:
        batch_size, num_workers, seed, val_fraction, drop_last: see :class:`SplitDataModule`.
        test_fraction: share of the images held out as the test split (also the probe set).
    """

    input_shape = (1, 8, 8)

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, drop_last: bool = False):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_fraction=val_fraction,
                         drop_last=drop_last)
        self.test_fraction = check_number(test_fraction, "test_fraction", 0.0, 1.0, open_interval=True)

    def load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.images, dtype=torch.float64).unsqueeze(1) / 16.0
        y = torch.as_tensor(digits.target, dtype=torch.int64)
        parts = self.test_val_train_indices(x.shape[0], self.test_fraction)
        train_pixels = x[parts["train"]]
        mean, std = float(train_pixels.mean()), float(train_pixels.std())
        return {name: (_standardise(x[index], mean, std), y[index]) for name, index in parts.items()}


class MNISTDataModule(SplitDataModule):
    """MNIST digits (28×28), offline-capable.

    Sources, in order:

    1. ``download=True``: torchvision downloads MNIST into ``data_dir`` (needs internet) in
       :meth:`prepare_data`; also used without downloading when torchvision's layout
       ``<data_dir>/MNIST/raw`` holds all four files.
    2. The original IDX files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
       ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``) in ``data_dir`` or
       ``<data_dir>/MNIST/raw``, read with :func:`read_idx`. Training: the 60k train split
       minus a seeded ``val_fraction`` for validation; test: the 10k test split.
    3. Only the two ``t10k`` files: the 10k test images are split (seeded) into test
       (``test_fraction``), validation (``val_fraction``) and training parts, with a
       ``UserWarning`` saying so.

    Pixels are scaled to [0, 1] and normalised with mean 0.1307 and std 0.3081 (the 60k
    training set's statistics). Shapes: ``x (N, 1, 28, 28)`` float32, ``y (N,)`` int64.

    Args:
        data_dir: the MNIST folder; default ``~/.cache/ibkit/mnist``.
        download: let torchvision download MNIST into ``data_dir`` (needs internet).
        batch_size, num_workers, seed, val_fraction, drop_last: see :class:`SplitDataModule`.
        test_fraction: share of the 10k images held out for testing/probing when only the test
            split is available (ignored otherwise).
    """

    input_shape = (1, 28, 28)

    def __init__(self, data_dir: str | os.PathLike | None = None, download: bool = False, batch_size: int = 128,
                 num_workers: int = 0, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 drop_last: bool = False):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_fraction=val_fraction,
                         drop_last=drop_last)
        self.data_dir = os.fspath(data_dir) if data_dir is not None else DEFAULT_MNIST_DIR
        self.download = bool(download)
        self.test_fraction = check_number(test_fraction, "test_fraction", 0.0, 1.0, open_interval=True)
        #: Which source was loaded: "torchvision", "idx" or "idx-test-only" (after setup).
        self.source: str | None = None

    def prepare_data(self) -> None:
        if self.download:
            from torchvision.datasets import MNIST

            for train in (True, False):
                MNIST(self.data_dir, train=train, download=True)

    def _read_torchvision(self) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
        from torchvision.datasets import MNIST

        try:
            splits = {split: MNIST(self.data_dir, train=split == "train", download=False) for split in MNIST_FILES}
        except RuntimeError:  # torchvision's "Dataset not found": fall back to the IDX reader
            if self.download:
                raise
            return None
        return {split: (data.data.numpy(), data.targets.numpy()) for split, data in splits.items()}

    def _read_idx_files(self) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
        searched = [self.data_dir, os.path.join(self.data_dir, "MNIST", "raw")]
        for directory in searched:
            if not os.path.isdir(directory):
                continue
            test = read_mnist_split(directory, "test")
            if test is not None:
                return {"train": read_mnist_split(directory, "train"), "test": test}
        raise ValueError(
            f"no MNIST found: none of {searched} holds t10k-images-idx3-ubyte[.gz] and "
            "t10k-labels-idx1-ubyte[.gz]; pass data_dir=<folder with the IDX files> or download=True"
        )

    def load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raw = self._read_torchvision()
        self.source = "torchvision"
        if raw is None:
            raw = self._read_idx_files()
            self.source = "idx" if raw["train"] is not None else "idx-test-only"

        def tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
            return _standardise(x, MNIST_MEAN, MNIST_STD), torch.as_tensor(labels, dtype=torch.int64)

        test_x, test_y = tensors(*raw["test"])
        if raw["train"] is not None:
            train_x, train_y = tensors(*raw["train"])
            parts = random_split(range(train_x.shape[0]), split_sizes(train_x.shape[0], self.val_fraction),
                                 generator=self.generator())
            val, train = (torch.as_tensor(part.indices).sort().values for part in parts)
            return {"train": (train_x[train], train_y[train]), "val": (train_x[val], train_y[val]),
                    "test": (test_x, test_y)}

        parts = self.test_val_train_indices(test_x.shape[0], self.test_fraction)
        warnings.warn(
            f"MNIST in {self.data_dir} has only the {test_x.shape[0]}-image test split (no "
            f"train-images-idx3-ubyte); splitting it into {len(parts['train'])} training, "
            f"{len(parts['val'])} validation and {len(parts['test'])} test/probe images (seed {self.seed}). "
            "Accuracies are not comparable with models trained on the 60k training set.",
            UserWarning,
            stacklevel=2,
        )
        return {name: (test_x[index.sort().values], test_y[index.sort().values]) for name, index in parts.items()}


DATAMODULES: dict[str, type[SplitDataModule]] = {
    "digits": DigitsDataModule,
    "mnist": MNISTDataModule,
}


def make_datamodule(name: str, data_dir: str | os.PathLike | None = None, **kwargs) -> SplitDataModule:
    """Build a bundled data module by name.

    Args:
        name: ``"digits"`` (scikit-learn, no files needed) or ``"mnist"``.
        data_dir: the MNIST folder (see :class:`MNISTDataModule`); must be ``None`` for digits.
        **kwargs: passed to the data module (``batch_size``, ``seed``, ``val_fraction``, ...).

    Raises:
        ValueError: an unknown name (the message lists the valid ones), or ``data_dir`` given
            for the bundled digits.
    """
    if name not in DATAMODULES:
        raise ValueError(f"unknown data set {name!r}; valid names are {', '.join(DATAMODULES)}")
    if name == "digits":
        if data_dir is not None:
            raise ValueError("the digits data set is bundled with scikit-learn and takes no data_dir")
        return DigitsDataModule(**kwargs)
    return MNISTDataModule(data_dir=data_dir, **kwargs)
